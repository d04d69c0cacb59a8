"""``GazeboOccWorldDataset``: windows of recorded occupancy for OccWorld-style world models.

A sample is one window of ``T = history_frames + future_frames`` frames of one sequence (frames
``frame_stride`` recorded frames apart; windows start every ``frame_skip`` frames), as a dict:

=========================== =============================== ===================================================
key                         shape, dtype                    meaning
=========================== =============================== ===================================================
``history_occupancy``       (T_h, X, Y, Z) uint8            class ids (17 = free), each frame in its own grid frame
``future_occupancy``        (T_f, X, Y, Z) uint8            the frames to predict
``history_poses``           (T_h, 13) float32               ``[x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]``, world
``future_poses``            (T_f, 13) float32               (positions m, velocity m/s world, rates rad/s body)
``rel_poses``               (T, 2) float32                  OccWorld input: displacement frame i -> i + 1, metres,
                                                            ego frame of i, x right, y forward
``gt_mode``                 (T, 3) float32                  one-hot command [right, left, straight] (VAD rule)
``rel_motion``              (T, 4) float32                  (dx right, dy forward, dz up, dyaw): drone pose input
``rel_poses_valid``         (T,) bool                       False where frame i + 1 is missing (rel_* are 0 there)
``future_offset``           (T, 2) float32                  position 3 s ahead, ego frame of i (x right, y forward)
``ego_height``              (T,) float32                    z above the ground under the vehicle (m; world z
                                                            when the pose file has no ``ground_z``)
``agent_type``, ``session`` str                             ``'drone'``/``'rover'``, sequence folder name
``frames``, ``timestamps``  (T,) int64, (T,) float64        recorded frame numbers, seconds
``frame_rate_hz``           float                           rate of the sample's frames (recorded rate / stride)
=========================== =============================== ===================================================

With ``load_masks``: ``history_mask_lidar``, ``history_mask_camera``, ``future_mask_lidar``,
``future_mask_camera`` (T_*, X, Y, Z) bool.  With ``load_instances``: ``history_instances``,
``future_instances`` (T_*, X, Y, Z) int32 (simulator instance id + 1 of the dynamic object in each
voxel, 0 = none, the same over a sequence; :mod:`vlwm.gt.instances`) and ``instances_valid`` (T,)
bool (False for frames whose file has no ``instances``: their grids are zeros).  With
``load_images``: ``images`` (T, C, H, W, 3) uint8, ``camera_names`` (C names), ``cam_intrinsics``
(C, 3, 3) float32 (pixels, for the returned size), ``cam_extrinsics`` (T, C, 4, 4) float32
(``T_body_cam``, OpenCV optical frame).  With
``load_lidar``: ``lidar`` (T, max_points, 4) float32 (x, y, z, intensity; lidar frame; zero
padded), ``lidar_num_points`` (T,) int64, ``T_body_lidar`` (4, 4) float32.

Grids are never float: a 10-frame ``aerial`` sample is 48 MB of uint8 (the float32 grids of the
tool this replaces: 194 MB); cast to int64 on the device (``occ.long()``).  Nothing but per-frame
poses, timestamps and flags stays in memory: each item reads its frames' files
(:mod:`vlwm.io.occupancy_file`), decoding each frame straight into the sample's arrays; older
``.npz`` frame files go through a small per-process cache of decoded frames
(``DatasetConfig.frame_cache``).  A DataLoader asks for whole batches (:meth:`__getitems__`): in a
worker they are decoded into shared memory the worker reuses, and :func:`collate_fn` stacks no
grid (:mod:`vlwm.data.shared_batch`).

Construction validates the selected sequences (:mod:`vlwm.data.validation`), reports problems once
per sequence (logger ``vlwm.data``) and counts the windows they cost; ``__getitem__`` never ends an
epoch on a bad file — a window whose file fails to read is reported once and replaced by the next
good window.
"""

from __future__ import annotations

import abc
import logging
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from vlwm.data import layout, shared_batch
from vlwm.data.augment import parse_transform
from vlwm.data.config import DatasetConfig
from vlwm.data.splits import TIME_SPLIT, assign_splits, time_block
from vlwm.data.trajectory import command_from_offset, future_offsets, horizon_frames, rel_motion
from vlwm.data.validation import SequenceRecord, read_agent_type, validate_sequence, window_starts
from vlwm.io import occupancy_file, recording
from vlwm.labels import OCC3D_CLASS_NAMES

log = logging.getLogger("vlwm.data")
#: Errors a damaged file can raise while it is read (zip, inflate, npy, JSON, image decoders).
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, *occupancy_file.READ_ERRORS)


class FrameReadError(Exception):
    """A frame file failed to read at ``__getitem__`` time."""

    def __init__(self, position: int, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.position, self.path, self.reason = position, path, reason


class Motion(NamedTuple):
    """Per-frame ego motion of one sequence (N = its frames), computed once at construction."""

    rel_motion: np.ndarray     #: (N, 4) float32 (dx right, dy forward, dz up, dyaw) to the next window frame
    has_next: np.ndarray       #: (N,) bool
    future_offset: np.ndarray  #: (N, 2) float32 position ``command_horizon_s`` ahead (x right, y forward)
    gt_mode: np.ndarray        #: (N, 3) float32 one-hot [right, left, straight]


def sequence_motion(rec: SequenceRecord, config: DatasetConfig) -> Motion:
    """Ego motion of every frame of a sequence (:mod:`vlwm.data.trajectory`); steps across gaps count as missing."""
    motion, has_next = rel_motion(rec.poses, rec.pose_ok, config.frame_stride)
    s = config.frame_stride
    if rec.num_frames > s:
        dt = rec.timestamps[s:] - rec.timestamps[:-s]
        with np.errstate(invalid="ignore"):
            has_next[:-s] &= dt <= config.max_gap_factor * s / rec.frame_rate_hz
        motion[~has_next] = 0.0
    offset = future_offsets(rec.poses, rec.pose_ok, horizon_frames(config.command_horizon_s, rec.frame_rate_hz))
    return Motion(motion, has_next, offset, command_from_offset(offset, config.command_threshold_m))


class WindowDataset(Dataset, abc.ABC):
    """Windows of frames, read per item; a file that fails to read costs its windows, never the epoch.

    Subclasses fill ``_windows`` ((W, 2) int64: sequence index, start position) and ``_bad`` (an empty
    dict: frames found unreadable in this process) and say how a window is read.
    """

    _windows: np.ndarray
    _bad: dict

    def __len__(self) -> int:
        return len(self._windows)

    @abc.abstractmethod
    def _positions(self, r: int, start: int) -> np.ndarray:
        """(T,) int64 frame positions of the window starting at ``start`` of sequence ``r``."""

    @abc.abstractmethod
    def _load(self, r: int, positions: np.ndarray) -> dict[str, Any]:
        """The sample of those frames; raises :class:`FrameReadError` naming the frame whose file fails."""

    @abc.abstractmethod
    def _frame_name(self, r: int, position: int) -> str:
        """How a frame is named in warnings."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._get(index)

    def _get(self, index: int, **load_kw) -> dict[str, Any]:
        """Window ``index`` (or the next good one), ``self._load(r, positions, **load_kw)``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"window {index} out of range: {type(self).__name__} has {n} windows")
        index %= n
        for attempt in range(n):
            r, start = (int(v) for v in self._windows[(index + attempt) % n])
            positions = self._positions(r, start)
            if any((r, int(p)) in self._bad for p in positions):
                continue
            try:
                return self._load(r, positions, **load_kw)
            except FrameReadError as exc:
                self._bad[(r, exc.position)] = exc.reason
                log.warning("%s unreadable (%s: %s); its windows are skipped", self._frame_name(r, exc.position),
                            exc.path, exc.reason)
        raise RuntimeError(f"{type(self).__name__}: no window could be read ({len(self._bad)} unreadable frames)")


_TIME_SPLIT_WARNED: set[tuple[str, tuple[str, ...]]] = set()
"""(data root, sequences) already warned about the time-block split in this process."""


class GazeboOccWorldDataset(WindowDataset):
    """Samples of recorded sequences under ``data_root`` (see the module docstring).

    Parameters
    ----------
    data_root : path
        Folder of recordings (``drone_*/``, ``rover_*/``), or one recording folder.
    config : DatasetConfig or dict, optional
        Defaults to ``DatasetConfig()``; a dict goes through :meth:`DatasetConfig.from_dict`.
    """

    def __init__(self, data_root: str | Path, config: DatasetConfig | Mapping[str, Any] | None = None):
        if config is None:
            config = DatasetConfig()
        elif not isinstance(config, DatasetConfig):
            config = DatasetConfig.from_dict(config)
        self.data_root, self.config = Path(data_root), config
        self.grid = config.grid
        paths = recording.find_sequences(self.data_root)
        agents = {p.name: read_agent_type(p)[0] for p in paths}
        self.split_of = assign_splits(agents, config.ratios, config.seed, config.split_fallback)
        chosen = [p for p in paths if config.agent_type in ("both", agents[p.name])
                  and self.split_of[p.name] in (config.split, TIME_SPLIT)]
        timed = [p.name for p in chosen if self.split_of[p.name] == TIME_SPLIT]
        if timed and (key := (str(self.data_root.resolve()), tuple(timed))) not in _TIME_SPLIT_WARNED:
            _TIME_SPLIT_WARNED.add(key)             # once per process: every split builds a dataset
            log.warning("too few sequences to split by sequence: %s split into contiguous time blocks "
                        "(train %.0f%% / val %.0f%% / test %.0f%% of their frames); neighbouring blocks are "
                        "correlated — record more sequences for a clean split", ", ".join(timed),
                        *(100 * config.ratios[s] for s in ("train", "val", "test")))
        self.records: list[SequenceRecord] = []
        self.motion: list[Motion] = []
        self.skipped_windows: dict[str, int] = {}
        windows = []
        for p in chosen:
            rec = self._validate_sequence(p)
            if rec.issues or rec.notes:
                log.warning("%s", rec.summary())
            block = time_block(rec.num_frames, config.ratios, config.split) if p.name in timed else None
            starts, candidates = window_starts(rec, config.window_length, config.frame_stride, config.frame_skip,
                                               config.max_gap_factor, block)
            self.skipped_windows[rec.name] = candidates - len(starts)
            windows.append(np.stack([np.full(len(starts), len(self.records)), starts], axis=1))
            self.records.append(rec)
            self.motion.append(sequence_motion(rec, config))
        self._windows = np.concatenate(windows) if windows else np.zeros((0, 2), np.int64)
        names = {rec.label_names for rec in self.records}
        if len(names) > 1:
            raise ValueError(f"{self.data_root}: sequences use different label spaces ({sorted(names)}); "
                             f"use one label map for the whole dataset")
        self.label_names = names.pop() if names else OCC3D_CLASS_NAMES
        self.free = len(self.label_names) - 1
        self.image_size = self._resolve_image_size() if config.load_images else None
        self.transform = parse_transform(config.transform, self.grid, self.free, config.command_threshold_m)
        self._cache: OrderedDict[tuple[int, int], layout.FrameArrays] = OrderedDict()
        self._bad: dict[tuple[int, int], str] = {}
        self._without_instances: set[str] = set()    # sequences already warned about (this process)
        if not len(self._windows):
            log.warning("%s: no %s windows of %d frames (%d sequence(s) selected, %d window(s) skipped)",
                        self.data_root, config.split, config.window_length, len(chosen), self.num_skipped_windows)

    # ------------------------------------------------------------------ construction helpers

    def _validate_sequence(self, path: Path) -> SequenceRecord:
        """Check one sequence (the guide's ``_validate_sequence``): see :mod:`vlwm.data.validation`."""
        return validate_sequence(path, self.config)

    def _resolve_image_size(self) -> tuple[int, int]:
        """(width, height) of every returned image: the config's, else the recorded size (must agree)."""
        if self.config.image_size is not None:
            return self.config.image_size
        sizes = {}
        for rec in self.records:
            usable = np.flatnonzero(rec.usable)
            for cam in self.config.cameras:
                cal = rec.cameras.get(cam)
                if cal and cal["width"] and cal["height"]:
                    sizes[(rec.name, cam)] = (cal["width"], cal["height"])
                elif len(usable):
                    path = recording.image_path(rec.path, rec.first_frame + int(usable[0]), cam)
                    sizes[(rec.name, cam)] = layout.image_size_of(path)
        distinct = set(sizes.values())
        if len(distinct) > 1:
            raise ValueError(f"{self.data_root}: cameras have different image sizes ({sorted(distinct)}); "
                             f"set DatasetConfig.image_size = (width, height) to resize them to one")
        return distinct.pop() if distinct else (0, 0)

    # ------------------------------------------------------------------ size and bookkeeping

    @property
    def num_skipped_windows(self) -> int:
        """Windows lost to bad or missing frames and gaps at construction."""
        return sum(self.skipped_windows.values())

    @property
    def sample_keys(self) -> frozenset[str]:
        """The keys every sample of this dataset has."""
        keys = {"history_occupancy", "future_occupancy", "history_poses", "future_poses", "rel_poses", "gt_mode",
                "rel_motion", "rel_poses_valid", "future_offset", "ego_height", "agent_type", "session", "frames",
                "timestamps", "frame_rate_hz"}
        if self.config.load_masks:
            keys |= {f"{p}_mask_{m}" for p in ("history", "future") for m in ("lidar", "camera")}
        if self.config.load_instances:
            keys |= {"history_instances", "future_instances", "instances_valid"}
        if self.config.load_images:
            keys |= {"images", "camera_names", "cam_intrinsics", "cam_extrinsics"}
        if self.config.load_lidar:
            keys |= {"lidar", "lidar_num_points", "T_body_lidar"}
        return frozenset(keys)

    def window(self, index: int) -> tuple[str, np.ndarray]:
        """(sequence name, (T,) frame numbers) of window ``index``."""
        r, start = self._windows[index]
        rec = self.records[r]
        return rec.name, rec.first_frame + start + self.config.frame_stride * np.arange(self.config.window_length)

    # ------------------------------------------------------------------ items

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not len(self):
            raise IndexError(f"the {self.config.split} split of {self.data_root} has no windows "
                             f"({self.num_skipped_windows} skipped for bad frames or gaps; see the log or run "
                             f"`vlwm data check {self.data_root}`)")
        return super().__getitem__(index)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        """The samples of a batch (the DataLoader calls this with a batch's indices), equal to
        ``[self[i] for i in indices]``.  Every frame is decoded straight into its row of one
        (B, T, X, Y, Z) array per grid key — inside a DataLoader worker, shared memory the worker
        reuses (:mod:`vlwm.data.shared_batch`) — so that :func:`collate_fn` copies no grid."""
        if not len(self):
            return [self[i] for i in indices]           # raises the empty-split error
        batch = shared_batch.batch_arrays(self.grid_spec(len(indices)))
        samples = []
        for b, index in enumerate(indices):
            rows = {k: a[b] for k, a in batch.arrays.items()}
            sample = self._get(int(index), into=rows)
            for k, row in rows.items():
                if sample[k] is not row:                # an augmentation made new arrays
                    np.copyto(row, sample[k])
                    sample[k] = row
            samples.append(_BatchSample(sample, batch, b, rows))
        return samples

    def _positions(self, r: int, start: int) -> np.ndarray:
        return start + self.config.frame_stride * np.arange(self.config.window_length)

    def _frame_name(self, r: int, position: int) -> str:
        rec = self.records[r]
        return f"{rec.name} frame {rec.first_frame + position}"

    def grid_spec(self, batch: int | None = None) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shape and dtype of each grid key of a sample (or of a batch of ``batch`` samples)."""
        cfg, shape = self.config, self.grid.shape
        lead = () if batch is None else (batch,)
        spec = {}
        for part, t in (("history", cfg.history_frames), ("future", cfg.future_frames)):
            spec[f"{part}_occupancy"] = ((*lead, t, *shape), np.dtype(np.uint8))
        if cfg.load_masks:
            for part, t in (("history", cfg.history_frames), ("future", cfg.future_frames)):
                for m in ("lidar", "camera"):
                    spec[f"{part}_mask_{m}"] = ((*lead, t, *shape), np.dtype(np.bool_))
        if cfg.load_instances:
            for part, t in (("history", cfg.history_frames), ("future", cfg.future_frames)):
                spec[f"{part}_instances"] = ((*lead, t, *shape), np.dtype(np.int32))
        return spec

    def _frame(self, r: int, pos: int, out: layout.FrameArrays) -> layout.FrameArrays:
        """One frame's grids decoded into ``out`` (:class:`vlwm.data.layout.FrameArrays` of the grid's
        shape: semantics, the masks and the instances when configured).

        ``.vlo`` files decode straight into ``out`` (as fast as copying a cached frame would be);
        older ``.npz`` files (6-18 ms to inflate) go through the per-process cache of decoded frames.
        """
        key = (r, pos)
        if key in self._cache:
            self._cache.move_to_end(key)
            return _copy_frame(self._cache[key], out)
        rec = self.records[r]
        path = recording.occupancy_path(rec.path, rec.first_frame + pos)
        legacy = path.name.endswith(occupancy_file.LEGACY_SUFFIX)
        capacity = self.config.cache_frames if legacy else 0
        try:
            if capacity:
                got = layout.read_frame(path, self.free, self.config.load_masks, self.config.load_instances)
                if got.semantics.shape != self.grid.shape:
                    raise ValueError(f"grid shape {got.semantics.shape}, expected {self.grid.shape}")
                self._cache[key] = got
                while len(self._cache) > capacity:
                    self._cache.popitem(last=False)
                return _copy_frame(got, out)
            return layout.read_frame(path, self.free, self.config.load_masks, self.config.load_instances, out=out)
        except READ_ERRORS as exc:
            raise FrameReadError(pos, path, f"{type(exc).__name__}: {exc}") from None

    def _load(self, r: int, positions: np.ndarray, into: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
        """The sample of those frames; its grids are decoded into ``into`` (key -> array of
        :meth:`grid_spec`) when given, else into new arrays."""
        cfg, rec, motion = self.config, self.records[r], self.motion[r]
        t_h = cfg.history_frames
        grids = dict(into) if into is not None else {k: np.empty(shape, dt) for k, (shape, dt) in self.grid_spec().items()}
        if cfg.load_instances:
            instances_valid = np.zeros(len(positions), bool)
        for t, pos in enumerate(positions):
            part = "history" if t < t_h else "future"
            k = t if t < t_h else t - t_h
            dst = layout.FrameArrays(
                grids[f"{part}_occupancy"][k],
                grids[f"{part}_mask_lidar"][k] if cfg.load_masks else None,
                grids[f"{part}_mask_camera"][k] if cfg.load_masks else None,
                grids[f"{part}_instances"][k] if cfg.load_instances else None)
            got = self._frame(r, int(pos), dst)
            if cfg.load_instances:
                if got.instances is not None:
                    instances_valid[t] = True
                else:
                    dst.instances.fill(0)
                    if rec.name not in self._without_instances:
                        self._without_instances.add(rec.name)
                        log.warning("%s: occupancy files without 'instances' (written before instance ids existed, "
                                    "e.g. %s); their history/future_instances are zeros and instances_valid False — "
                                    "re-run the ground truth (vlwm gt --overwrite) to get them", rec.name,
                                    recording.occupancy_path(rec.path, rec.first_frame + int(pos)))
        masks = {k: v for k, v in grids.items() if not k.endswith("_occupancy")}
        if cfg.load_instances:
            masks["instances_valid"] = instances_valid
        poses = rec.poses[positions]
        ground = rec.ground_z[positions]
        height = np.where(np.isfinite(ground), poses[:, 2] - ground, poses[:, 2]).astype(np.float32)
        sample: dict[str, Any] = {
            "history_occupancy": grids["history_occupancy"], "future_occupancy": grids["future_occupancy"], **masks,
            "history_poses": poses[:t_h].copy(), "future_poses": poses[t_h:].copy(),
            "rel_poses": motion.rel_motion[positions, :2].copy(), "gt_mode": motion.gt_mode[positions].copy(),
            "rel_motion": motion.rel_motion[positions].copy(), "rel_poses_valid": motion.has_next[positions].copy(),
            "future_offset": motion.future_offset[positions].copy(), "ego_height": height,
            "agent_type": rec.agent_type or "unknown", "session": rec.name,
            "frames": (rec.first_frame + positions).astype(np.int64), "timestamps": rec.timestamps[positions].copy(),
            "frame_rate_hz": float(rec.frame_rate_hz / cfg.frame_stride),
        }
        if cfg.load_images:
            sample.update(self._images(rec, positions))
        if cfg.load_lidar:
            sample.update(self._lidar(rec, positions))
        if len(self.transform):
            seed = int(torch.randint(0, 2 ** 62, (1,)).item())   # follows torch's (per-worker) seeding
            sample = self.transform(sample, np.random.default_rng(seed))
        return sample

    def _images(self, rec: SequenceRecord, positions: np.ndarray) -> dict[str, Any]:
        cams = self.config.cameras
        w, h = self.image_size
        images = np.empty((len(positions), len(cams), h, w, 3), np.uint8)
        for t, pos in enumerate(positions):
            for c, cam in enumerate(cams):
                path = recording.image_path(rec.path, rec.first_frame + int(pos), cam)
                try:
                    images[t, c] = layout.read_image(path, (w, h))
                except READ_ERRORS as exc:
                    raise FrameReadError(int(pos), path, f"{type(exc).__name__}: {exc}") from None
        k = np.full((len(cams), 3, 3), np.nan, np.float32)
        ext = np.full((len(cams), 4, 4), np.nan, np.float32)
        for c, cam in enumerate(cams):
            cal = rec.cameras.get(cam)
            if cal is None:
                continue
            sx = w / cal["width"] if cal["width"] else 1.0
            sy = h / cal["height"] if cal["height"] else 1.0
            kk = cal["K"].copy()
            kk[0, 0], kk[0, 2] = kk[0, 0] * sx, (kk[0, 2] + 0.5) * sx - 0.5    # pixel centres at integers
            kk[1, 1], kk[1, 2] = kk[1, 1] * sy, (kk[1, 2] + 0.5) * sy - 0.5
            k[c], ext[c] = kk, cal["T_body_cam"]
        return {"images": images, "camera_names": list(cams), "cam_intrinsics": k,
                "cam_extrinsics": np.repeat(ext[None], len(positions), axis=0)}

    def _lidar(self, rec: SequenceRecord, positions: np.ndarray) -> dict[str, Any]:
        m = self.config.max_points
        out = np.zeros((len(positions), m, layout.LIDAR_COLUMNS_USED), np.float32)
        count = np.zeros(len(positions), np.int64)
        for t, pos in enumerate(positions):
            path = recording.lidar_path(rec.path, rec.first_frame + int(pos))
            try:
                pts = layout.read_lidar(path)
            except READ_ERRORS as exc:
                raise FrameReadError(int(pos), path, f"{type(exc).__name__}: {exc}") from None
            if len(pts) > m:
                pts = pts[np.linspace(0, len(pts) - 1, m).astype(np.int64)]   # even thinning, deterministic
            out[t, :len(pts)], count[t] = pts, len(pts)
        return {"lidar": out, "lidar_num_points": count, "T_body_lidar": rec.T_body_lidar.astype(np.float32)}


def _copy_frame(src: layout.FrameArrays, out: layout.FrameArrays) -> layout.FrameArrays:
    """Copy a cached frame into ``out`` (what ``out`` asks for; instances only where ``src`` has them)."""
    for dst, arr in zip(out, src):
        if dst is not None and arr is not None:
            np.copyto(dst, arr)
    return layout.FrameArrays(out.semantics, out.mask_lidar, out.mask_camera,
                              out.instances if src.instances is not None else None)


class _BatchSample(dict):
    """A sample made by ``__getitems__``: its grids are row ``row`` of ``batch``'s arrays."""

    def __init__(self, sample: dict, batch: shared_batch.BatchArrays, row: int, rows: dict[str, np.ndarray]):
        super().__init__(sample)
        self.batch, self.row, self.rows = batch, row, rows


def _one_batch(samples: list[dict[str, Any]]) -> shared_batch.BatchArrays | None:
    """The arrays ``samples`` are the rows of, in order, when they came from one ``__getitems__`` call."""
    first = samples[0]
    if not isinstance(first, _BatchSample):
        return None
    batch = first.batch
    if any(not isinstance(s, _BatchSample) or s.batch is not batch or s.row != b for b, s in enumerate(samples)):
        return None
    if any(len(a) != len(samples) for a in batch.arrays.values()):
        return None
    if any(s[k] is not s.rows[k] for s in samples for k in batch.arrays):     # replaced after __getitems__
        return None
    return batch


def collate_fn(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: arrays become tensors stacked to (B, T, ...), strings and name lists stay lists.

    Samples that :meth:`GazeboOccWorldDataset.__getitems__` made (what a DataLoader asks for) already
    sit in (B, T, X, Y, Z) arrays: their grids become tensors without a copy, in a worker's reused
    shared memory (:mod:`vlwm.data.shared_batch`).  Other arrays are stacked by
    :func:`torch.utils.data.default_collate`, which writes them straight into shared memory inside
    DataLoader workers.  Samples with different keys (datasets configured differently) are an error
    that names the keys.
    """
    keys = set(samples[0])
    for s in samples[1:]:
        if set(s) != keys:
            raise ValueError(f"collate_fn: samples have different keys: {sorted(keys ^ set(s))} in some only "
                             f"(mixed datasets must return the same fields)")
    batch = _one_batch(samples)
    done = set(batch.arrays) if batch is not None else set()
    out: dict[str, Any] = {}
    for key in samples[0]:
        if key in done:
            continue
        values = [s[key] for s in samples]
        if isinstance(values[0], (str, list, tuple)):
            out[key] = values
        else:
            out[key] = default_collate(values)
    if batch is None:
        return out
    return shared_batch.collate_grids(batch, out, list(samples[0]))
