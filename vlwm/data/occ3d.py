"""Occ3D-nuScenes in the layout the OccWorld code reads, as samples that mix with ours.

Layout (SPEC §1.2-1.3)::

    <data_root>/gts/<scene_name>/<sample_token>/labels.npz    semantics, mask_lidar, mask_camera (uint8 200x200x16)
    <info pickle>                                              {'infos': {scene_name: [info, ...]}} in time order

Per info dict the reader uses ``token`` (label path), ``gt_ego_fut_trajs`` (row 0 is the frame's
``rel_poses``, as the reference; the cumulative rows give ``future_offset``), ``gt_ego_fut_masks``
when present, ``pose_mode`` (``gt_mode``, as the reference), ``ego2global_translation`` /
``ego2global_rotation`` (w, x, y, z) for the 13-d poses and ``rel_motion``, and ``timestamp``
(microseconds; else keyframes 0.5 s apart).  Velocities in the poses are central finite
differences of the keyframe positions and yaws (nuScenes infos carry none).  Samples have the keys
of :class:`~vlwm.data.dataset.GazeboOccWorldDataset` (``agent_type='car'``, ``session`` = scene
name, ``ego_height`` = ego z), so the two mix in one batch when their grids agree.

**Info pickles are code.** Official OccWorld pickles can only be read with :mod:`pickle`, and
unpickling runs whatever the file says.  They are loaded only from the path the user configures,
through an unpickler that accepts plain containers and numpy arrays and refuses any other class
(naming it); ``trust_pickle=True`` lifts the restriction for files you trust.  Our exporter
(:mod:`vlwm.data.occworld_export`) writes only such plain types.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from vlwm.data import layout
from vlwm.data.augment import parse_transform
from vlwm.data.dataset import READ_ERRORS, FrameReadError, WindowDataset
from vlwm.data.trajectory import COMMAND_THRESHOLD_M, pose13_yaws, rel_motion
from vlwm.gt.grid import OCC3D, GridSpec
from vlwm.labels import FREE

NUSCENES_KEYFRAME_S = 0.5        #: nuScenes keyframes are 2 Hz (SPEC §1.4)
OCC3D_AGENT = "car"
#: (module, name) pairs a pickle of plain containers and numpy arrays needs (numpy 1 and 2 module paths).
SAFE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("builtins", "bytearray"),
})


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_GLOBALS or module == "numpy.dtypes":   # numpy 2 dtype classes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain containers and numpy arrays are "
                                     f"accepted (pass trust_pickle=True for a file you trust)")


def load_info_pickle(path: str | Path, trust_pickle: bool = False) -> dict:
    """An OccWorld info pickle (``{'infos': {scene: [info, ...]}, ...}``); see the module docstring."""
    path = Path(path)
    data = path.read_bytes()
    try:
        doc = pickle.loads(data) if trust_pickle else _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("infos"), dict):
        raise ValueError(f"{path}: expected {{'infos': {{scene_name: [info, ...]}}}} (OccWorld's *_temporal_v3_scene "
                         f"layout), got {type(doc).__name__} with keys {list(doc)[:5] if isinstance(doc, dict) else ''}")
    return doc


@dataclass(frozen=True)
class Occ3DConfig:
    """How Occ3D-nuScenes scenes become samples (the split is the pickle's)."""

    history_frames: int = 4
    """Frames given as history."""
    future_frames: int = 6
    """Frames to predict."""
    frame_skip: int = 1
    """Windows advance by this many keyframes."""
    load_masks: bool = False
    """Return the Occ3D ``mask_lidar`` / ``mask_camera`` (bool)."""
    point_cloud_range: tuple[float, ...] = OCC3D.point_cloud_range
    """Grid extent (Occ3D-nuScenes: [-40, -40, -1, 40, 40, 5.4] m); label files must have its shape."""
    voxel_size: tuple[float, ...] = OCC3D.voxel_size
    """Voxel edges (0.4 m)."""
    trust_pickle: bool = False
    """Unpickle the info file without restrictions (only for files you trust)."""
    command_threshold_m: float = COMMAND_THRESHOLD_M
    """Lateral offset for re-deriving commands after RandomRotate."""
    transform: Mapping[str, Mapping[str, Any]] | None = None
    """Augmentation, as ``DatasetConfig.transform``."""

    def __post_init__(self):
        for name in ("history_frames", "future_frames", "frame_skip"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"Occ3DConfig.{name} must be an int >= 1, got {v!r}")
        object.__setattr__(self, "point_cloud_range", tuple(float(v) for v in self.point_cloud_range))
        object.__setattr__(self, "voxel_size", tuple(float(v) for v in self.voxel_size))
        parse_transform(self.transform, self.grid)

    @property
    def grid(self) -> GridSpec:
        return GridSpec(self.point_cloud_range, self.voxel_size)

    @property
    def window_length(self) -> int:
        return self.history_frames + self.future_frames

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Occ3DConfig":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"Occ3DConfig: unknown keys {unknown}; known: {known}")
        return cls(**d)


def _poses13(infos: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 13) float64 poses of a scene's keyframes and (N,) timestamps (s)."""
    n = len(infos)
    poses = np.zeros((n, 13))
    ts = np.arange(n) * NUSCENES_KEYFRAME_S
    for i, info in enumerate(infos):
        poses[i, :3] = np.asarray(info.get("ego2global_translation", (0.0, 0.0, 0.0)), np.float64)
        q = np.asarray(info.get("ego2global_rotation", (1.0, 0.0, 0.0, 0.0)), np.float64)   # w, x, y, z
        poses[i, 3:7] = q / np.linalg.norm(q)
        if "timestamp" in info:
            ts[i] = float(info["timestamp"]) * 1e-6
    if n > 1:
        dt = np.gradient(ts)
        poses[:, 7:10] = np.gradient(poses[:, :3], axis=0) / dt[:, None]
        poses[:, 12] = np.gradient(np.unwrap(pose13_yaws(poses))) / dt
    return poses, ts


def _future(info: dict) -> tuple[np.ndarray, np.ndarray, bool]:
    """(rel_pose (2,), future_offset (2,), rel_pose valid) from VAD's per-step ``gt_ego_fut_trajs`` (x right, y forward)."""
    trajs = np.asarray(info.get("gt_ego_fut_trajs", np.zeros((1, 2))), np.float64).reshape(-1, 2)
    mask = np.asarray(info.get("gt_ego_fut_masks", np.ones(len(trajs))), np.float64).reshape(-1)[:len(trajs)]
    valid = np.cumprod(mask > 0).astype(bool)
    offset = trajs[valid].sum(axis=0) if valid.any() else np.zeros(2)
    return trajs[0], offset, bool(valid[0]) if len(valid) else False


class Occ3DNuScenesDataset(WindowDataset):
    """Windows of Occ3D-nuScenes scenes (see the module docstring).

    Parameters
    ----------
    data_root : path
        The folder holding ``gts/`` (OccWorld's ``data_path``, e.g. ``data/nuscenes/``).
    info_path : path
        The info pickle of the split (e.g. ``data/nuscenes_infos_train_temporal_v3_scene.pkl``).
    config : Occ3DConfig or dict, optional
    """

    def __init__(self, data_root: str | Path, info_path: str | Path,
                 config: Occ3DConfig | Mapping[str, Any] | None = None):
        if config is None:
            config = Occ3DConfig()
        elif not isinstance(config, Occ3DConfig):
            config = Occ3DConfig.from_dict(config)
        self.data_root, self.info_path, self.config = Path(data_root), Path(info_path), config
        self.grid = config.grid
        self.free = FREE
        infos = load_info_pickle(self.info_path, config.trust_pickle)["infos"]
        self.scenes: list[str] = []
        self.tokens: list[list[str]] = []
        self.poses: list[np.ndarray] = []
        self.timestamps: list[np.ndarray] = []
        self.traj: list[tuple[np.ndarray, ...]] = []
        windows = []
        length = config.window_length
        for scene, frames in infos.items():
            frames = list(frames)
            missing = [i for i, f in enumerate(frames) if not isinstance(f, dict) or "token" not in f]
            if missing:
                raise ValueError(f"{self.info_path}: scene {scene!r}: keyframes {missing[:5]} have no 'token'")
            poses, ts = _poses13(frames)
            fut = [_future(f) for f in frames]
            rel = np.array([f[0] for f in fut], np.float32).reshape(-1, 2)
            offset = np.array([f[1] for f in fut], np.float32).reshape(-1, 2)
            rel_ok = np.array([f[2] for f in fut], bool)
            mode = np.array([np.asarray(f.get("pose_mode", (0, 0, 1)), np.float32) for f in frames]).reshape(-1, 3)
            motion, _ = rel_motion(poses, np.ones(len(frames), bool))
            starts = np.arange(0, len(frames) - length + 1, config.frame_skip)
            windows.append(np.stack([np.full(len(starts), len(self.scenes)), starts], axis=1))
            self.scenes.append(str(scene))
            self.tokens.append([str(f["token"]) for f in frames])
            self.poses.append(poses.astype(np.float32))
            self.timestamps.append(ts)
            self.traj.append((rel, offset, mode, motion, rel_ok))
        self._windows = np.concatenate(windows) if windows else np.zeros((0, 2), np.int64)
        self._bad: dict[tuple[int, int], str] = {}
        self.transform = parse_transform(config.transform, self.grid, self.free, config.command_threshold_m)

    @property
    def sample_keys(self) -> frozenset[str]:
        keys = {"history_occupancy", "future_occupancy", "history_poses", "future_poses", "rel_poses", "gt_mode",
                "rel_motion", "rel_poses_valid", "future_offset", "ego_height", "agent_type", "session", "frames",
                "timestamps", "frame_rate_hz"}
        if self.config.load_masks:
            keys |= {f"{p}_mask_{m}" for p in ("history", "future") for m in ("lidar", "camera")}
        return frozenset(keys)

    def label_path(self, scene: int, position: int) -> Path:
        return self.data_root / "gts" / self.scenes[scene] / self.tokens[scene][position] / "labels.npz"

    def _positions(self, s: int, start: int) -> np.ndarray:
        return start + np.arange(self.config.window_length)

    def _frame_name(self, s: int, position: int) -> str:
        return f"{self.scenes[s]} keyframe {position} ({self.tokens[s][position]})"

    def _load(self, s: int, positions: np.ndarray) -> dict[str, Any]:
        cfg = self.config
        grids = np.empty((len(positions), *self.grid.shape), np.uint8)
        masks = np.empty((2, len(positions), *self.grid.shape), bool) if cfg.load_masks else None
        for t, pos in enumerate(positions):
            path = self.label_path(s, int(pos))
            try:
                sem, ml, mc = layout.read_occupancy(path, self.free, cfg.load_masks)
            except READ_ERRORS as exc:
                raise FrameReadError(int(pos), path, f"{type(exc).__name__}: {exc}") from None
            if sem.shape != self.grid.shape:
                raise FrameReadError(int(pos), path, f"grid shape {sem.shape}, the configured grid is {self.grid.shape}")
            grids[t] = sem
            if masks is not None:
                masks[0, t], masks[1, t] = ml, mc
        rel, offset, mode, motion, rel_ok = self.traj[s]
        h = cfg.history_frames
        poses = self.poses[s][positions]
        out_motion = motion[positions].copy()
        out_motion[:, :2] = rel[positions]          # the reference's rel_poses; dz, dyaw from ego2global
        sample: dict[str, Any] = {
            "history_occupancy": grids[:h].copy(), "future_occupancy": grids[h:].copy(),
            "history_poses": poses[:h].copy(), "future_poses": poses[h:].copy(),
            "rel_poses": rel[positions].copy(), "gt_mode": mode[positions].copy(), "rel_motion": out_motion,
            "rel_poses_valid": rel_ok[positions].copy(),
            "future_offset": offset[positions].copy(), "ego_height": poses[:, 2].copy(),
            "agent_type": OCC3D_AGENT, "session": self.scenes[s], "frames": positions.astype(np.int64),
            "timestamps": self.timestamps[s][positions].copy(),
            "frame_rate_hz": float(1.0 / NUSCENES_KEYFRAME_S),
        }
        if masks is not None:
            for i, m in enumerate(("lidar", "camera")):
                sample[f"history_mask_{m}"], sample[f"future_mask_{m}"] = masks[i, :h].copy(), masks[i, h:].copy()
        if len(self.transform):
            sample = self.transform(sample, np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,)).item())))
        return sample


__all__ = ["Occ3DConfig", "Occ3DNuScenesDataset", "load_info_pickle"]
