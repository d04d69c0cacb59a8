"""Occupancy ground truth for a whole recorded sequence: every frame, skipping what is done or broken.

:func:`generate_sequence` reads a sequence folder in the recorder's layout
(:mod:`vlwm.io.recording`: ``poses/NNNNNN.json``, ``lidar/NNNNNN_LIDAR.npy``, optional
``images/NNNNNN_<CAM>_depth.png``) and writes ``NNNNNN_occupancy.vlo`` and ``grid.json``
(:mod:`vlwm.gt.frame_gt`) into ``out_dir``:

* frames whose file exists are skipped unless ``overwrite`` (files are written atomically, so an
  existing file is a finished one);
* a frame whose pose or lidar file is missing or unreadable is reported — file, frame, reason —
  and skipped; the other frames complete (with the lidar source its sweep also drops out of its
  neighbours' windows);
* ``workers > 1`` splits the frames into contiguous runs, one forked process each (the prepared
  scene is shared copy-on-write, never pickled).

What the sequence's ``sequence.json`` says about sensors, scene and traffic is resolved by the
caller into :class:`SequenceInputs`.  Ground height per frame: the pose file's ``ground_z``, else
the scene's terrain under the vehicle, else an estimate from the frame's lidar
(:func:`vlwm.gt.ego_frame.estimate_ground_z`).  Actors (scene source) are the traffic's boxes at the
pose's ``timestamp`` — the recording clock is the traffic clock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vlwm.gt.ego_frame import GridFrame, estimate_ground_z
from vlwm.gt.frame_gt import GTConfig, grid_document, occupancy_for_frame, occupancy_path, write_grid_json, \
    write_occupancy
from vlwm.gt.lidar_source import LidarSweep
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer
from vlwm.gt.visibility import PinholeCamera, camera_rays
from vlwm.io import occupancy_file
from vlwm.io.frames import Pose
from vlwm.io.image_io import image_paths, load_depth_png
from vlwm.io.manifest import read_manifest
from vlwm.io.recording import (IMAGES_DIR, LIDAR_COLUMNS, POSES_DIR, is_sequence_dir, lidar_path, pose_frames,
                               pose_path)
from vlwm.labels import GROUND_LABEL_NAMES, OCC3D_CLASS_NAMES
from vlwm.sim.traffic import Traffic

WORKER_POLL_S = 1.0  #: how often (s) the parent checks that its workers are still alive


class FrameInputError(Exception):
    """A frame's input file is missing or unreadable."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


@dataclass(frozen=True)
class FrameFailure:
    """A frame that could not be made: which, which file, why."""

    frame: int
    file: str
    reason: str

    def __str__(self) -> str:
        return f"frame {self.frame}: {self.file}: {self.reason}"


@dataclass
class SequenceReport:
    """What :func:`generate_sequence` did: frame numbers written, skipped as done, and failures."""

    sequence: Path
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[FrameFailure] = field(default_factory=list)
    error: str | None = None
    """Why the whole sequence could not be processed (then no frame was)."""

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.sequence}: not processed: {self.error}"
        lines = [f"{self.sequence}: {len(self.written)} frames written, {len(self.skipped)} already done, "
                 f"{len(self.failed)} failed"]
        lines += [f"  {f}" for f in self.failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class SequenceInputs:
    """Everything besides the frame files that making a sequence's ground truth needs."""

    T_body_lidar: np.ndarray
    """(4, 4) float64: lidar frame -> vehicle body (``sequence.json`` sensors.LIDAR.T_body_sensor)."""
    lidar_columns: tuple[str, ...] = LIDAR_COLUMNS
    """Names of the lidar files' columns (``sequence.json`` lidar_columns)."""
    scene: SceneVoxelizer | None = None
    """The prepared scene (scene source; also the ground height when pose files lack it)."""
    traffic: Traffic | None = None
    """The recording's traffic (scene source): actors at each pose's timestamp."""
    cameras: tuple[PinholeCamera, ...] = ()
    """Cameras for ``mask_camera``; their depth images limit the rays when present."""
    label_names: tuple[str, ...] = OCC3D_CLASS_NAMES
    """Label space of the lidar labels (lidar source; the scene's own for the scene source)."""
    first_dynamic_instance: int | None = None
    """Lidar source: instance ids from this one up are moving actors (the traffic's first instance)."""


def list_frames(seq_dir: Path) -> tuple[list[int], list[FrameFailure]]:
    """Frame numbers of a sequence (pose files, and frames its manifest lists) and the missing pose files."""
    poses = set(pose_frames(seq_dir))
    manifest = read_manifest(seq_dir)            # a damaged manifest is an error naming it
    listed = {f.index for f in manifest.frames} if manifest is not None else set()
    missing = [FrameFailure(i, str(pose_path(seq_dir, i)), "missing pose file") for i in sorted(listed - poses)]
    return sorted(poses), missing


def load_pose(seq_dir: Path, index: int) -> tuple[Pose, float | None]:
    """The pose of frame ``index`` and its ``ground_z`` (None when absent)."""
    path = pose_path(seq_dir, index)
    try:
        d = json.loads(path.read_text())
        pose = Pose.from_json(d)
        if not (np.all(np.isfinite(pose.position)) and np.all(np.isfinite(pose.orientation))
                and np.linalg.norm(pose.orientation) > 0):
            raise ValueError("non-finite position or orientation")
        ground = d.get("ground_z")
        return pose, None if ground is None else float(ground)
    except FileNotFoundError:
        raise FrameInputError(path, "missing pose file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise FrameInputError(path, f"unreadable pose ({exc})") from None


def load_sweep(seq_dir: Path, index: int, pose: Pose, inputs: SequenceInputs) -> LidarSweep:
    """The lidar sweep of frame ``index``, checked: a 2-D float array with the recorded columns."""
    path = lidar_path(seq_dir, index)
    try:
        pts = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FrameInputError(path, "missing lidar file") from None
    except Exception as exc:
        raise FrameInputError(path, f"unreadable lidar file ({exc})") from None
    ncol = len(inputs.lidar_columns)
    if pts.ndim != 2 or pts.shape[1] != ncol or not np.issubdtype(pts.dtype, np.floating):
        raise FrameInputError(path, f"expected a float array [N, {ncol}] ({', '.join(inputs.lidar_columns)}), "
                                    f"got {pts.dtype} {pts.shape}")
    if not np.all(np.isfinite(pts[:, :3])):
        raise FrameInputError(path, "non-finite point coordinates")
    return LidarSweep(pose, pts.astype(np.float32, copy=False), inputs.T_body_lidar, inputs.lidar_columns)


def load_depths(seq_dir: Path, index: int, cameras) -> dict[str, np.ndarray]:
    """Depth images of frame ``index`` of the cameras that have one (the others' rays go to their range)."""
    out = {}
    for cam in cameras:
        path = image_paths(seq_dir / IMAGES_DIR, index, cam.name)[1]
        if path.is_file():
            try:
                out[cam.name] = load_depth_png(path)
            except (OSError, ValueError) as exc:
                raise FrameInputError(path, f"unreadable depth image ({exc})") from None
    return out


class _FrameReader:
    """Loads (and caches) the frames one worker needs; remembers which ones fail."""

    def __init__(self, seq_dir: Path, inputs: SequenceInputs):
        self.seq_dir, self.inputs = seq_dir, inputs
        self._cache: dict[int, tuple[Pose, float | None, LidarSweep] | FrameInputError] = {}

    def get(self, index: int):
        if index not in self._cache:
            try:
                pose, ground = load_pose(self.seq_dir, index)
                self._cache[index] = (pose, ground, load_sweep(self.seq_dir, index, pose, self.inputs))
            except FrameInputError as exc:
                self._cache[index] = exc
        got = self._cache[index]
        if isinstance(got, FrameInputError):
            raise got
        return got

    def forget_before(self, index: int) -> None:
        for k in [k for k in self._cache if k < index]:
            del self._cache[k]


def _make_frame(index: int, frames: list[int], reader: _FrameReader, config: GTConfig, out_dir: Path) -> Path:
    """Build and write frame ``index``; raises :class:`FrameInputError` on bad inputs."""
    inputs = reader.inputs
    pose, ground_z, sweep = reader.get(index)
    if ground_z is None and inputs.scene is not None:
        ground_z = float(inputs.scene.scene.ground_height(pose.position[0], pose.position[1]))
    if ground_z is None:
        names = list(inputs.label_names)
        ground = np.isin(sweep.labels(len(names) - 1, len(names) - 1),
                         [names.index(n) for n in GROUND_LABEL_NAMES if n in names])
        ground_z = estimate_ground_z(sweep.world_points(), pose.position[:2], ground)
        if ground_z is None:
            raise FrameInputError(lidar_path(reader.seq_dir, index),
                                  "no ground_z in the pose file, no scene and no lidar point to estimate it")
    frame = GridFrame.from_pose(pose, ground_z)
    sweeps, current = [sweep], 0
    if config.source == "lidar":
        pos = frames.index(index)
        window = frames[max(0, pos - config.lidar_window):pos + config.lidar_window + 1]
        sweeps = []
        for i in window:
            if i == index:
                current = len(sweeps)
            try:
                sweeps.append(reader.get(i)[2])
            except FrameInputError:
                continue  # reported as that frame's own failure
    actors = None
    if config.source == "scene" and inputs.traffic is not None:
        actors = ActorBoxes.from_traffic(inputs.traffic, pose.timestamp)
    rays = None
    if inputs.cameras and config.camera_mask:
        rays = camera_rays(pose, inputs.cameras, config.camera_subsample,
                           load_depths(reader.seq_dir, index, inputs.cameras))
    occ = occupancy_for_frame(frame, config, scene=inputs.scene, actors=actors, sweeps=sweeps, current=current,
                              first_dynamic_instance=inputs.first_dynamic_instance, cameras=rays,
                              label_names=inputs.label_names)
    return write_occupancy(occupancy_path(out_dir, index), occ)


def _run(todo: list[int], frames: list[int], seq_dir: Path, out_dir: Path, config: GTConfig,
         inputs: SequenceInputs, emit: Callable[[tuple], None]) -> None:
    """Make the frames ``todo`` in order, emitting ``("ok", index)`` or ``("failed", index, file, reason)``."""
    reader = _FrameReader(seq_dir, inputs)
    for index in todo:
        reader.forget_before(index - config.lidar_window if config.source == "lidar" else index)
        try:
            _make_frame(index, frames, reader, config, out_dir)
            emit(("ok", index))
        except FrameInputError as exc:
            emit(("failed", index, str(exc.path), exc.reason))
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the others
            emit(("failed", index, str(seq_dir), f"{type(exc).__name__}: {exc}"))


def generate_sequence(seq_dir: str | os.PathLike, out_dir: str | os.PathLike, config: GTConfig,
                      inputs: SequenceInputs, *, overwrite: bool = False, workers: int = 1,
                      log: Callable[[str], None] | None = None) -> SequenceReport:
    """Write the occupancy ground truth of every frame of one recorded sequence.

    Parameters
    ----------
    seq_dir : path
        The sequence folder (``poses/``, ``lidar/``, ``images/``, ``sequence.json``).
    out_dir : path
        Where ``NNNNNN_occupancy.vlo`` and ``grid.json`` go (e.g. ``<seq_dir>/occupancy``).
    config : GTConfig
        Grid, source and options.
    inputs : SequenceInputs
        Sensor calibration, scene, traffic, cameras.
    overwrite : bool
        Re-make frames that already have a file (and replace a ``grid.json`` of other settings).
    workers : int
        Processes (frames are split into contiguous runs).
    log : callable, optional
        Receives one line per frame written or failed.

    Returns
    -------
    SequenceReport
    """
    seq_dir, out_dir = Path(seq_dir), Path(out_dir)
    if not is_sequence_dir(seq_dir):
        raise FileNotFoundError(f"{seq_dir}: no {POSES_DIR}/ folder — not a recorded sequence")
    if config.source == "scene" and inputs.scene is None:
        raise ValueError(f"{seq_dir}: --source scene needs the recording's scene; use --source lidar without one")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    names = inputs.scene.scene.label_map.names if config.source == "scene" else inputs.label_names
    out_dir.mkdir(parents=True, exist_ok=True)
    write_grid_json(out_dir, grid_document(config, names), overwrite=overwrite)
    frames, missing = list_frames(seq_dir)
    report = SequenceReport(seq_dir, failed=list(missing))
    todo = [i for i in frames if overwrite or occupancy_file.find_frame(out_dir, i) is None]   # either format
    report.skipped = [i for i in frames if i not in set(todo)]

    def record(msg: tuple) -> None:
        if msg[0] == "ok":
            report.written.append(msg[1])
            if log:
                log(f"{occupancy_path(out_dir, msg[1])}")
        else:
            report.failed.append(FrameFailure(*msg[1:]))
            if log:
                log(f"skipped {report.failed[-1]}")

    workers = min(workers, max(len(todo), 1))
    if workers == 1:
        _run(todo, frames, seq_dir, out_dir, config, inputs, record)
    else:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        chunks = [list(c) for c in np.array_split(np.array(todo, dtype=int), workers) if len(c)]
        procs = [ctx.Process(target=_run_worker, args=(c, frames, seq_dir, out_dir, config, inputs, queue))
                 for c in chunks]
        for p in procs:
            p.start()
        pending = set(todo)
        while pending:
            try:
                msg = queue.get(timeout=WORKER_POLL_S)
            except queue_module.Empty:
                if any(p.is_alive() for p in procs):
                    continue
                for i in sorted(pending):                       # a worker died without reporting these
                    record(("failed", i, str(seq_dir), "worker process died"))
                break
            pending.discard(msg[1])
            record(msg)
        for p in procs:
            p.join()
    report.written.sort()
    report.failed.sort(key=lambda f: f.frame)
    return report


def _run_worker(todo, frames, seq_dir, out_dir, config, inputs, queue) -> None:
    """A forked worker: :func:`_run` with results sent through ``queue``."""
    _run([int(i) for i in todo], frames, seq_dir, out_dir, config, inputs, queue.put)
