"""``DatasetConfig``: what a :class:`~vlwm.data.dataset.GazeboOccWorldDataset` reads and returns.

The fields and defaults the training guide documents (§5.1: ``history_frames=4``,
``future_frames=6``, ``frame_skip=1``, ``agent_type='both'``, ``split='train'``, ratios
0.8 / 0.1 / 0.1, ``point_cloud_range`` and ``voxel_size``), plus what users need beyond the guide:
the split seed, optional masks / instances / images / lidar, the driving-command rule and the augmentation
(``transform``, the guide's §5.6 dict).  Unknown keys are errors (:meth:`DatasetConfig.from_dict`).

The default grid is the ``aerial`` preset (200 x 200 x 121 at 0.4 x 0.4 x 1.25 m, z in
[-2, 149.25] m), the grid the ground-truth stage writes by default.  The guide's own example,
z in [-2, 150] m at 1.25 m, is 121.6 voxels and is refused by :class:`~vlwm.gt.grid.GridSpec`
with the nearest valid ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from vlwm.data.augment import parse_transform
from vlwm.data.trajectory import COMMAND_HORIZON_S, COMMAND_THRESHOLD_M
from vlwm.gt.grid import AERIAL, GridSpec
from vlwm.io.recording import AGENT_TYPES

AGENT_CHOICES = (*AGENT_TYPES, "both")      #: values of ``DatasetConfig.agent_type``
SPLITS = ("train", "val", "test")
SPLIT_FALLBACKS = ("time", "error")
#: The six cameras of a rig (nuScenes names), in the recorder's order (``vlwm.sim.camera.CAMERA_NAMES``).
CAMERA_NAMES: tuple[str, ...] = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT",
                                 "CAM_BACK_RIGHT")
#: OccWorld's keyframe rate (nuScenes keyframes, 0.5 s apart; SPEC §1.4), assumed for recordings
#: that state no rate and carry no timestamps.
OCCWORLD_FRAME_RATE_HZ = 2.0
#: A step between two window frames longer than this many nominal frame intervals is a gap.
MAX_GAP_FACTOR = 1.5
DEFAULT_MAX_POINTS = 40_000


@dataclass(frozen=True)
class DatasetConfig:
    """How recordings become training samples (see the module docstring)."""

    history_frames: int = 4
    """Frames given as history (``history_occupancy``: T_h frames)."""
    future_frames: int = 6
    """Frames to predict (``future_occupancy``: T_f frames)."""
    frame_skip: int = 1
    """Windows advance by this many recorded frames (1 = every start frame)."""
    frame_stride: int = 1
    """Recorded frames between consecutive frames of a window (2 turns a 4 Hz recording into 2 Hz samples)."""
    agent_type: str = "both"
    """``'drone'``, ``'rover'`` or ``'both'``: which recordings are used."""
    split: str = "train"
    """``'train'``, ``'val'`` or ``'test'``."""
    train_ratio: float = 0.8
    """Share of sequences (per agent type) in the train split."""
    val_ratio: float = 0.1
    """Share of sequences (per agent type) in the val split."""
    test_ratio: float = 0.1
    """Share of sequences (per agent type) in the test split."""
    seed: int = 0
    """Seed of the sequence split (the same seed always gives the same split)."""
    split_fallback: str = "time"
    """With fewer sequences of an agent type than non-empty splits: ``'time'`` splits each of those
    sequences into contiguous time blocks (train first, then val, then test; a warning says so),
    ``'error'`` refuses."""
    point_cloud_range: tuple[float, ...] = AERIAL.point_cloud_range
    """Grid extent ``[x0, y0, z0, x1, y1, z1]``, metres, grid frame; the sequences' ``grid.json`` must match."""
    voxel_size: tuple[float, ...] = AERIAL.voxel_size
    """Voxel edges ``[dx, dy, dz]``, metres; the sequences' ``grid.json`` must match."""
    load_masks: bool = False
    """Return ``mask_lidar`` / ``mask_camera`` (bool).  OccWorld ignores them (SPEC §1.2); on, a
    10-frame aerial sample grows from 48 MB to 145 MB."""
    load_instances: bool = False
    """Return ``history_instances`` / ``future_instances`` (int32 per-voxel instance ids of the dynamic
    classes, 0 = none; the occupancy files' ``instances``) and ``instances_valid``; files written
    before instance ids existed give zeros (and a warning naming the sequence)."""
    load_images: bool = False
    """Return the six camera images (and their calibration) of every frame."""
    cameras: tuple[str, ...] = CAMERA_NAMES
    """Cameras read when ``load_images`` (each must exist for a frame to be usable)."""
    image_size: tuple[int, int] | None = None
    """``(width, height)`` images are resized to (bilinear); None keeps the recorded size."""
    load_lidar: bool = False
    """Return each frame's lidar points (x, y, z, intensity; lidar frame)."""
    max_points: int = DEFAULT_MAX_POINTS
    """Lidar points per frame: more are thinned evenly, fewer padded with zeros (``lidar_num_points`` counts)."""
    command_threshold_m: float = COMMAND_THRESHOLD_M
    """Lateral offset (m) of the position ``command_horizon_s`` ahead that makes a left/right command."""
    command_horizon_s: float = COMMAND_HORIZON_S
    """How far ahead (s) the driving command looks (VAD / OccWorld: 3 s = 6 keyframes)."""
    max_gap_factor: float = MAX_GAP_FACTOR
    """A window step longer than this many nominal frame intervals is a gap: the window is skipped."""
    frame_cache: int | None = None
    """Decoded frames of older ``.npz`` frame files kept per process (least recently used), so
    overlapping windows inflate each file once when visited in order; None = one window's frames,
    0 = off.  ``.vlo`` frame files are not cached: they decode as fast as a cached frame is copied."""
    transform: Mapping[str, Mapping[str, Any]] | None = None
    """Augmentation, the guide's dict: ``{'RandomFlip': {'prob': 0.5}, 'RandomRotate': {'angle': [-5, 5]},
    'PointCloudNoise': {'std': 0.02}}`` (:mod:`vlwm.data.augment`); applied whenever given."""

    def __post_init__(self):
        for name in ("history_frames", "future_frames", "frame_skip", "frame_stride", "max_points"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"DatasetConfig.{name} must be an int >= 1, got {v!r}")
        if self.agent_type not in AGENT_CHOICES:
            raise ValueError(f"DatasetConfig.agent_type must be one of {AGENT_CHOICES}, got {self.agent_type!r}")
        if self.split not in SPLITS:
            raise ValueError(f"DatasetConfig.split must be one of {SPLITS}, got {self.split!r}")
        if self.split_fallback not in SPLIT_FALLBACKS:
            raise ValueError(f"DatasetConfig.split_fallback must be one of {SPLIT_FALLBACKS}, "
                             f"got {self.split_fallback!r}")
        ratios = (self.train_ratio, self.val_ratio, self.test_ratio)
        if any(not (isinstance(r, (int, float)) and r >= 0) for r in ratios):
            raise ValueError(f"DatasetConfig: split ratios must be >= 0, got train/val/test = {ratios}")
        if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise ValueError(f"DatasetConfig: train_ratio + val_ratio + test_ratio must be 1, got "
                             f"{self.train_ratio} + {self.val_ratio} + {self.test_ratio} = {sum(ratios):g}")
        if self.frame_cache is not None and not (isinstance(self.frame_cache, int) and self.frame_cache >= 0):
            raise ValueError(f"DatasetConfig.frame_cache must be None or an int >= 0, got {self.frame_cache!r}")
        for name in ("command_threshold_m", "command_horizon_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DatasetConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not self.max_gap_factor > 1:
            raise ValueError(f"DatasetConfig.max_gap_factor must exceed 1, got {self.max_gap_factor!r}")
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown or not self.cameras:
            raise ValueError(f"DatasetConfig.cameras: unknown names {unknown} (or none given); known: {CAMERA_NAMES}")
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or not all(isinstance(v, int) and v >= 1 for v in size):
                raise ValueError(f"DatasetConfig.image_size must be (width, height) positive ints, got {size!r}")
            object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "point_cloud_range", tuple(float(v) for v in self.point_cloud_range))
        object.__setattr__(self, "voxel_size", tuple(float(v) for v in self.voxel_size))
        object.__setattr__(self, "cameras", tuple(self.cameras))
        grid = GridSpec(self.point_cloud_range, self.voxel_size)  # names an axis that does not divide
        parse_transform(self.transform, grid, command_threshold=self.command_threshold_m)  # validates it

    # ------------------------------------------------------------------ derived

    @property
    def grid(self) -> GridSpec:
        """The voxel grid every sequence must have been written with."""
        return GridSpec(self.point_cloud_range, self.voxel_size)

    @property
    def window_length(self) -> int:
        """Frames per sample: ``history_frames + future_frames``."""
        return self.history_frames + self.future_frames

    @property
    def ratios(self) -> dict[str, float]:
        return {"train": self.train_ratio, "val": self.val_ratio, "test": self.test_ratio}

    @property
    def cache_frames(self) -> int:
        """Frames the per-process cache holds (``frame_cache`` resolved)."""
        return self.window_length if self.frame_cache is None else self.frame_cache

    # ------------------------------------------------------------------ dict form

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DatasetConfig":
        """From a config file's dict (the guide's ``data.train.config``); unknown keys are errors."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"DatasetConfig: unknown keys {unknown}; known: {known}")
        kw = dict(d)
        for key in ("point_cloud_range", "voxel_size", "cameras"):
            if key in kw:
                kw[key] = tuple(kw[key])
        if kw.get("image_size") is not None:
            kw["image_size"] = tuple(kw["image_size"])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (JSON-able): the inverse of :meth:`from_dict`."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("point_cloud_range", "voxel_size", "cameras", "image_size"):
            if out[key] is not None:
                out[key] = list(out[key])
        if self.transform is not None:
            out["transform"] = {k: dict(v) for k, v in self.transform.items()}
        return out


__all__ = ["AGENT_CHOICES", "CAMERA_NAMES", "COMMAND_HORIZON_S", "COMMAND_THRESHOLD_M",
           "DatasetConfig", "MAX_GAP_FACTOR", "OCCWORLD_FRAME_RATE_HZ", "SPLITS"]
