"""``vlwm data convert ROOT``: rewrite older ``*_occupancy.npz`` frame files as ``.vlo`` files, in place.

Each frame is converted on its own and atomically: the ``.vlo`` file is written beside the ``.npz``
(temporary file, then rename), read back and compared array by array with the ``.npz``, and only
then is the ``.npz`` removed.  A run killed at any point therefore leaves every frame readable —
as the old file, or as the new one, or (killed between the rename and the removal) as both, the
new one preferred by every reader — and running the command again finishes the job: a frame whose
``.npz`` is still there is converted again.  Leftover temporary files of a killed run are removed.

What is converted: the files the ground-truth stage wrote (``semantics``, both masks, ``occupancy``,
``T_world_grid``, optionally ``instances``).  The ``occupancy`` array is dropped (it is derived from
``semantics`` on read) after checking that it equals ``semantics != free`` (the free label from
the folder's ``grid.json``, else :data:`vlwm.labels.FREE`).  A file that cannot be read or would not
convert losslessly (a foreign layout: no ``semantics``, no ``T_world_grid``, other dtypes) is
reported and left as it is; it still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vlwm.io import occupancy_file as occ_file
from vlwm.labels import FREE


@dataclass
class ConvertReport:
    """What :func:`convert_tree` did."""

    root: Path
    converted: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    temp_removed: int = 0

    def summary(self) -> str:
        line = (f"{self.root}: converted {len(self.converted)} frame file(s) "
                f"({self.bytes_before / 1e6:.1f} MB npz -> {self.bytes_after / 1e6:.1f} MB vlo)")
        if self.temp_removed:
            line += f", removed {self.temp_removed} temporary file(s) of an interrupted run"
        if self.failed:
            line += f", {len(self.failed)} not converted (left as .npz):\n" + "\n".join(
                f"  {p}: {why}" for p, why in self.failed)
        return line


def _free_label(folder: Path, cache: dict[Path, int]) -> int:
    if folder not in cache:
        free = FREE
        grid = folder / "grid.json"
        if grid.is_file():
            try:
                free = int(json.loads(grid.read_text())["free_label"])
            except (OSError, ValueError, KeyError, TypeError):
                free = FREE
        cache[folder] = free
    return cache[folder]


def _arrays_for_writing(path: Path, arrays: dict[str, np.ndarray], free: int) -> dict:
    """Check that ``arrays`` (an npz frame) converts losslessly; the keyword arguments of ``write_frame``."""
    sem = arrays.get(occ_file.SEMANTICS)
    if sem is None or sem.dtype != np.uint8 or sem.ndim != 3:
        raise ValueError("no uint8 (X, Y, Z) 'semantics' array (a layout this command does not convert)")
    if occ_file.TRANSFORM not in arrays:
        raise ValueError("no 'T_world_grid' array")
    extra = sorted(set(arrays) - set(occ_file.ALL_ARRAYS))
    if extra:
        raise ValueError(f"arrays the frame format does not hold: {extra}")
    occ = arrays.get(occ_file.OCCUPANCY)
    if occ is not None and (occ.dtype != np.uint8 or occ.shape != sem.shape or int(occ.max(initial=0)) > 1
                            or not np.array_equal(occ != 0, sem != free)):
        raise ValueError(f"'occupancy' differs from semantics != {free} (the free label): it would not be derived "
                         f"back exactly")
    for key in (occ_file.MASK_LIDAR, occ_file.MASK_CAMERA):
        if key in arrays and arrays[key].dtype != np.uint8:
            raise ValueError(f"'{key}' is {arrays[key].dtype}, expected uint8")
    inst = arrays.get(occ_file.INSTANCES)
    if inst is not None and inst.dtype != np.int32:
        raise ValueError(f"'instances' is {inst.dtype}, expected int32")
    return dict(semantics=sem, free=free, T_world_grid=arrays[occ_file.TRANSFORM],
                mask_lidar=arrays.get(occ_file.MASK_LIDAR), mask_camera=arrays.get(occ_file.MASK_CAMERA),
                instances=inst)


def convert_frame(npz: Path, free: int) -> Path:
    """Convert one ``.npz`` frame file (see the module docstring); returns the ``.vlo`` path.

    Raises ValueError (or an error of :data:`vlwm.io.occupancy_file.READ_ERRORS`) with the reason when the
    file cannot be read or converted losslessly; the ``.npz`` is then left in place.
    """
    arrays = occ_file.read_frame(npz)
    kwargs = _arrays_for_writing(npz, arrays, free)
    target = npz.with_name(npz.name[:-len(occ_file.LEGACY_SUFFIX)] + occ_file.SUFFIX)
    occ_file.write_frame(target, **kwargs)
    back = occ_file.read_frame(target)
    for key, arr in arrays.items():
        if key not in back or back[key].dtype != arr.dtype or not np.array_equal(back[key], arr):
            target.unlink()
            raise ValueError(f"'{key}' did not read back equal from {target.name} (removed; the .npz is kept)")
    npz.unlink()
    return target


def convert_tree(root: str | Path, progress: bool = True) -> ConvertReport:
    """Convert every ``*_occupancy.npz`` under ``root`` (any depth) in place; resumable, see the module docstring."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    report = ConvertReport(root)
    folders = {p.parent for p in root.rglob(f"*{occ_file.SUFFIX}")} | {p.parent for p in root.rglob("*.npz")}
    for folder in sorted(folders):
        for tmp in folder.glob(f".*{occ_file.SUFFIX}.*.tmp"):
            tmp.unlink(missing_ok=True)
            report.temp_removed += 1
    files = sorted(p for p in root.rglob(f"*{occ_file.LEGACY_SUFFIX}") if p.is_file())
    free_labels: dict[Path, int] = {}
    for npz in tqdm(files, unit="frame", desc="convert", disable=not progress):
        size = npz.stat().st_size
        try:
            target = convert_frame(npz, _free_label(npz.parent, free_labels))
        except (ValueError, *occ_file.READ_ERRORS) as exc:
            report.failed.append((npz, str(exc).replace(f"{npz}: ", "")))
            continue
        report.converted.append(target)
        report.bytes_before += size
        report.bytes_after += target.stat().st_size
    return report
