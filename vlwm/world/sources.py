"""Where a scene comes from: the procedural city or CityGML files, built once and cached as ``.npz``.

Shared by ``vlwm city``, ``vlwm simulate`` and ``vlwm sim-server``: a source list is
``['procedural']`` or CityGML files/folders; :func:`world_scene_file` also accepts a ready scene file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

def _gml_files(sources: Sequence[str]) -> list[Path]:
    """Expand CityGML sources: files as given, folders searched recursively for ``*.gml``."""
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(p.rglob("*.gml"))
            if not found:
                raise FileNotFoundError(f"no .gml files under {p}")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder (give 'procedural' or CityGML files)")
    return files


def build_scene(sources: Sequence[str], seed: int = 0, size: float | None = None):
    """The scene for a source list: ``['procedural']`` (default) or CityGML files/folders."""
    if not sources or list(sources) == ["procedural"]:
        from vlwm.world.procedural import CityConfig, generate_city

        cfg = CityConfig(seed=seed) if size is None else CityConfig(seed=seed, size=size)
        return generate_city(cfg)
    if "procedural" in sources:
        raise ValueError("'procedural' cannot be mixed with CityGML files")
    from vlwm.world.citygml import load_plateau

    return load_plateau(_gml_files(sources))


def world_scene_file(world: Sequence[str], out_root: Path, seed: int, city_size: float | None) -> Path:
    """The scene file for ``--world``: an existing ``.npz`` as is, else built and cached under ``out_root/scenes``."""
    if len(world) == 1 and world[0].endswith(".npz"):
        return Path(world[0])
    if list(world) == ["procedural"]:
        name = f"procedural_seed{seed}_{int(city_size or 1000)}m.npz"
    else:
        name = "_".join(Path(w).stem for w in world)[:80] + ".npz"
    path = out_root / "scenes" / name
    if not path.exists():
        scene = build_scene(world, seed=seed, size=city_size)
        scene.save(path)
        print(f"world: wrote {path} ({scene.num_buildings} buildings, {scene.num_triangles} triangles)")
    return path
