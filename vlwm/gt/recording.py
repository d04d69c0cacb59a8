"""Turn recorded sequences into occupancy ground truth: resolve each recording's inputs, run, report.

:func:`sequence_inputs` reads what a sequence's ``sequence.json`` says (lidar mount and columns,
camera calibration, the scene file, the traffic) into :class:`~vlwm.gt.sequence.SequenceInputs`;
:func:`generate` runs :func:`~vlwm.gt.sequence.generate_sequence` over many sequences — the
guide's ``scripts/generate_occupancy_gt.py`` and ``vlwm gt``.

Output: ``<sequence>/occupancy/`` by default.  With ``output``, ``<output>/<sequence name>/occupancy/``
plus copies of ``sequence.json`` and ``poses/``, so the output folder is itself a dataset root the
loader can read (cameras and lidar stay in the recording).
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from vlwm.gt.frame_gt import GTConfig
from vlwm.gt.grid import grid_preset
from vlwm.gt.scene_source import SceneVoxelizer
from vlwm.gt.sequence import SequenceInputs, SequenceReport, generate_sequence
from vlwm.gt.visibility import PinholeCamera
from vlwm.io import recording
from vlwm.io.manifest import Manifest, load_manifest
from vlwm.io.recording import LIDAR_COLUMNS
from vlwm.sim.traffic import Traffic
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.scene import Scene

#: Grid presets chosen by ``grid='auto'``: the tall aerial grid for drones, Occ3D's for rovers.
AUTO_GRID = {"drone": "aerial", "rover": "occ3d"}


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Recordings named by ``inputs`` (folders, globs allowed): each one a recording, or a folder whose
    sub-folders are (:func:`vlwm.io.recording.is_sequence_dir`, the rule of every stage); a folder
    with none adds nothing, but no recording at all is an error.  Duplicates are dropped."""
    found: list[Path] = []
    for pattern in inputs:
        for m in sorted(glob.glob(os.path.expanduser(pattern))) or [pattern]:
            p = Path(m)
            if recording.is_sequence_dir(p):
                found.append(p)
            elif p.is_dir():
                found.extend(recording.sequences_in(p))
            else:
                raise FileNotFoundError(f"{p}: no such sequence folder")
    if not found:
        raise FileNotFoundError(f"no recorded sequences (folders with {recording.POSES_DIR}/) in {list(inputs)}")
    return list(dict.fromkeys(found))


def agent_type(seq_dir: Path, manifest: Manifest) -> str:
    """'drone' or 'rover': the manifest's agent_type, else the folder name prefix."""
    agent = manifest.agent_type or recording.agent_from_name(seq_dir.name)
    if agent is None:
        raise ValueError(f"{seq_dir}: cannot tell drone from rover (no agent_type in {recording.MANIFEST}, "
                         f"folder name not drone_*/rover_*): pass --grid")
    return agent


class SceneCache:
    """Loads each scene file once and prepares it for voxelisation (shared by a run's sequences)."""

    def __init__(self, solid_interiors: bool, solid_classes):
        self._scenes: dict[Path, tuple[Scene, SceneVoxelizer]] = {}
        self._solid = (solid_interiors, solid_classes)

    def get(self, path: Path) -> tuple[Scene, SceneVoxelizer]:
        path = path.resolve()
        if path not in self._scenes:
            scene = Scene.load(path)
            self._scenes[path] = (scene, SceneVoxelizer(scene, *self._solid))
        return self._scenes[path]


def sequence_inputs(seq_dir: Path, manifest: Manifest, config: GTConfig, scenes: SceneCache,
                    scene_override: Path | None = None) -> SequenceInputs:
    """What :func:`generate_sequence` needs besides frame files, from the manifest.

    The lidar mount (``sensors.LIDAR.T_body_sensor``) is required: a manifest without it is a
    :class:`~vlwm.io.manifest.ManifestError` naming the file, never an identity guess.
    """
    t_body_lidar = manifest.lidar_mount()
    columns = manifest.lidar_columns if manifest.lidar_columns is not None else LIDAR_COLUMNS
    calibrated = manifest.calibrated_cameras()
    cameras = tuple(PinholeCamera.from_calibration(name, calibrated[name].to_json())
                    for name in manifest.cameras or () if name in calibrated) if config.camera_mask else ()
    scene = voxelizer = traffic = None
    if config.source == "scene":
        scene_file = scene_override or _scene_file(seq_dir, manifest)
        if scene_file is None:
            raise ValueError(f"{seq_dir}: sequence.json names no scene file; pass --scene SCENE.npz or use "
                             f"--source lidar")
        scene, voxelizer = scenes.get(scene_file)
        if manifest.traffic is not None:
            traffic = Traffic(scene, TrafficConfig.from_dict(manifest.traffic))
    label_names = (manifest.scene.label_names if manifest.scene is not None else None) or (
        scene.label_map.names if scene is not None else SequenceInputs.__dataclass_fields__["label_names"].default)
    return SequenceInputs(T_body_lidar=t_body_lidar, lidar_columns=columns, scene=voxelizer, traffic=traffic,
                          cameras=cameras, label_names=label_names,
                          first_dynamic_instance=manifest.traffic_first_instance)


def _scene_file(seq_dir: Path, manifest: Manifest) -> Path | None:
    ref = manifest.scene.file if manifest.scene is not None else None
    if not ref:
        return None
    path = Path(ref)
    path = path if path.is_absolute() else (seq_dir / path)
    if not path.is_file():
        raise FileNotFoundError(f"{seq_dir}: its scene file {path} is missing (pass --scene SCENE.npz)")
    return path


def output_dir(seq_dir: Path, output: Path | None) -> Path:
    """Where a sequence's occupancy goes; with ``output``, the manifest and poses are copied there too."""
    if output is None:
        return seq_dir / recording.OCC_DIR
    target = output / seq_dir.name
    (target / recording.POSES_DIR).mkdir(parents=True, exist_ok=True)
    if (seq_dir / recording.MANIFEST).is_file():
        shutil.copy2(seq_dir / recording.MANIFEST, target / recording.MANIFEST)
    for p in (seq_dir / recording.POSES_DIR).glob("*.json"):
        shutil.copy2(p, target / recording.POSES_DIR / p.name)
    return target / recording.OCC_DIR


def generate(inputs: Sequence[str], output: str | os.PathLike | None = None, *, grid: str = "aerial",
             config: GTConfig = GTConfig(), scene: str | os.PathLike | None = None, overwrite: bool = False,
             workers: int = 1) -> list[SequenceReport]:
    """Ground truth for every sequence in ``inputs`` (folders/globs); returns one report per sequence.

    ``grid`` is a preset name (default ``'aerial'``, the grid :class:`~vlwm.data.DatasetConfig`
    expects by default, for every vehicle), ``'auto'`` (aerial for drones, occ3d for rovers) or
    ``'config'`` to keep ``config.grid``.  A sequence that cannot be processed at all is reported and the others go on.
    """
    sequences = expand_inputs(inputs)
    out_root = Path(output) if output is not None else None
    scenes = SceneCache(config.solid_interiors, config.solid_classes)
    reports = []
    for seq_dir in tqdm(sequences, unit="seq", desc="occupancy", disable=len(sequences) < 2):
        try:
            manifest = load_manifest(seq_dir)
            cfg = config
            if grid != "config":
                cfg = replace(config, grid=grid_preset(AUTO_GRID[agent_type(seq_dir, manifest)]
                                                       if grid == "auto" else grid))
            seq_inputs = sequence_inputs(seq_dir, manifest, cfg, scenes, Path(scene) if scene else None)
            report = generate_sequence(seq_dir, output_dir(seq_dir, out_root), cfg, seq_inputs,
                                       overwrite=overwrite, workers=workers, log=None)
        except (FileNotFoundError, ValueError) as exc:  # this sequence cannot be done; the others go on
            report = SequenceReport(seq_dir, error=str(exc))
        reports.append(report)
    return reports
