"""Checking a recording before it is used, and the sample windows that survive the checks.

:func:`validate_sequence` looks at every frame of one sequence cheaply (pose JSON, the headers of
the occupancy arrays, the existence of camera and lidar files when those are requested) and
returns a :class:`SequenceRecord`: per-frame poses, timestamps and a ``usable`` flag, plus the
problems found, each with its frame and file.  A frame is unusable when its pose is missing,
unreadable or non-finite, its timestamp does not increase, its occupancy file is missing, corrupt,
truncated or of the wrong shape, or (when requested) a camera image or its lidar file is missing.
Gaps — a step longer than ``max_gap_factor`` frame intervals — leave the frames usable but no
window spans them.

A grid that disagrees with the configured one (``grid.json``, or without it the arrays' shape) is
not a per-frame problem but a configuration error: :class:`GridMismatchError` names the sequence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlwm.data import layout
from vlwm.data.config import CAMERA_NAMES, OCCWORLD_FRAME_RATE_HZ, DatasetConfig
from vlwm.gt.grid import GridSpec
from vlwm.io import recording
from vlwm.io.manifest import LIDAR_SENSOR, Manifest, ManifestError, read_manifest
from vlwm.io.recording import AGENT_TYPES
from vlwm.labels import OCC3D_CLASS_NAMES

GT_HINT = "run scripts/generate_occupancy_gt.py on it (the ground-truth stage)"
MAX_LISTED_ISSUES = 12   #: issues printed per sequence in a summary (all are kept)


class GridMismatchError(ValueError):
    """A sequence's occupancy grid differs from the configured grid."""


@dataclass(frozen=True)
class Issue:
    """One problem: which frame (None = the whole sequence), which file, what."""

    frame: int | None
    file: str
    reason: str

    def __str__(self) -> str:
        where = "sequence" if self.frame is None else f"frame {self.frame}"
        return f"{where}: {self.file}: {self.reason}"


@dataclass
class SequenceRecord:
    """What a dataset keeps of one sequence: small per-frame arrays, no grids.

    ``N`` = frame numbers ``first .. first + N - 1`` (every number between the first and the last
    frame found, so that missing ones show as unusable positions).
    """

    name: str
    path: Path
    agent_type: str | None
    """``'drone'`` / ``'rover'`` (manifest, else folder prefix), None when neither says."""
    first_frame: int
    frame_rate_hz: float
    rate_source: str
    """``'sequence.json'``, ``'timestamps'`` (median step) or ``'assumed'`` (OccWorld's 2 Hz)."""
    timestamps: np.ndarray
    """(N,) float64 seconds; NaN where unknown."""
    poses: np.ndarray
    """(N, 13) float32 ``[x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]`` (world frame); zeros where bad."""
    pose_ok: np.ndarray
    """(N,) bool: a finite pose with an increasing timestamp."""
    ground_z: np.ndarray
    """(N,) float32 ground height under the vehicle (m, world z); NaN where the pose file has none."""
    usable: np.ndarray
    """(N,) bool: everything a sample needs from this frame is there."""
    T_body_lidar: np.ndarray = field(default_factory=lambda: np.eye(4))
    """(4, 4) float64 lidar -> body (``sensors.LIDAR.T_body_sensor``; identity when unknown)."""
    cameras: dict = field(default_factory=dict)
    """name -> {'K': (3, 3), 'T_body_cam': (4, 4), 'width', 'height'} from the manifest."""
    label_names: tuple[str, ...] = OCC3D_CLASS_NAMES
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.usable)

    @property
    def frames(self) -> np.ndarray:
        """(N,) int64 frame numbers."""
        return self.first_frame + np.arange(self.num_frames, dtype=np.int64)

    def summary(self, limit: int = MAX_LISTED_ISSUES) -> str:
        lines = [f"{self.name}: {self.num_frames} frames, {int(self.usable.sum())} usable, "
                 f"{len(self.issues)} problem(s)"]
        lines += [f"  {i}" for i in self.issues[:limit]]
        if len(self.issues) > limit:
            lines.append(f"  ... and {len(self.issues) - limit} more")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def read_agent_type(seq: Path) -> tuple[str | None, Manifest | None, Issue | None]:
    """Agent type (manifest ``agent_type``, else the folder prefix), the manifest (None when absent or
    unreadable), and the manifest's problem (naming the file and key)."""
    issue, manifest = None, None
    try:
        manifest = read_manifest(seq)
    except ManifestError as exc:
        issue = Issue(None, str(seq / recording.MANIFEST), str(exc).split(": ", 1)[-1])
    agent = manifest.agent_type if manifest is not None else None
    if agent not in AGENT_TYPES:
        agent = recording.agent_from_name(seq.name)
    return agent, manifest, issue


def check_grid(seq: Path, grid: GridSpec) -> tuple[str, ...] | None:
    """Compare ``occupancy/grid.json`` with ``grid``; returns its label names (None without the file).

    Raises GridMismatchError naming the sequence when the grids differ.
    """
    path = seq / recording.OCC_DIR / recording.GRID_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        stored = GridSpec(tuple(doc["point_cloud_range"]), tuple(doc["voxel_size"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GridMismatchError(f"{seq.name}: {path} is unreadable ({exc}); regenerate the ground truth") from None
    if stored.shape != grid.shape or not (np.allclose(stored.point_cloud_range, grid.point_cloud_range)
                                          and np.allclose(stored.voxel_size, grid.voxel_size)):
        raise GridMismatchError(
            f"{seq.name}: its occupancy grid (point_cloud_range {list(stored.point_cloud_range)}, voxel_size "
            f"{list(stored.voxel_size)}, shape {stored.shape}; {path}) differs from the configured grid "
            f"(point_cloud_range {list(grid.point_cloud_range)}, voxel_size {list(grid.voxel_size)}, shape "
            f"{grid.shape}): set the config's point_cloud_range/voxel_size to the data's, select other agents "
            f"(agent_type), or regenerate the ground truth with this grid")
    names = doc.get("label_names")
    return tuple(names) if isinstance(names, list) and names else None


def _calibration(manifest: Manifest | None) -> tuple[np.ndarray, dict]:
    """``T_body_lidar`` (identity when the manifest has no lidar entry: noted by the caller) and the
    calibrated cameras (name -> K, T_body_cam, width, height)."""
    sensors = (manifest.sensors if manifest is not None else None) or {}
    t_bl = sensors[LIDAR_SENSOR].T_body_sensor.copy() if LIDAR_SENSOR in sensors else np.eye(4)
    cams = {}
    for name in CAMERA_NAMES:
        s = sensors.get(name)
        if s is not None and s.type == "camera":
            cams[name] = {"K": s.K.copy(), "T_body_cam": s.T_body_sensor.copy(), "width": s.width, "height": s.height}
    return t_bl, cams


def validate_sequence(seq: Path, config: DatasetConfig) -> SequenceRecord:
    """Check one recording folder against ``config`` (see the module docstring)."""
    seq = Path(seq)
    grid = config.grid
    agent, manifest, manifest_issue = read_agent_type(seq)
    issues: list[Issue] = [manifest_issue] if manifest_issue else []
    notes: list[str] = []
    if agent is None:
        issues.append(Issue(None, str(seq), "agent type unknown: no agent_type in sequence.json and the folder "
                                            "name does not start with drone_ or rover_"))
    label_names = check_grid(seq, grid)
    pose_frames = set(recording.pose_frames(seq))
    occ_frames = set(recording.occupancy_frames(seq))
    listed_ts: dict[int, float] = {}
    for f in manifest.frames if manifest is not None else ():
        listed_ts[f.index] = float(f.timestamp)
    if not occ_frames:
        issues.append(Issue(None, str(seq / recording.OCC_DIR), f"no occupancy/ frames — {GT_HINT}"))
    numbers = pose_frames | occ_frames | set(listed_ts)
    first = min(numbers) if numbers else 1
    n = (max(numbers) - first + 1) if numbers else 0
    ts = np.full(n, np.nan)
    poses = np.zeros((n, 13), np.float32)
    ground = np.full(n, np.nan, np.float32)
    pose_ok = np.zeros(n, bool)
    occ_ok = np.zeros(n, bool)
    extra_ok = np.ones(n, bool)
    shape_checked = label_names is not None
    for pos in range(n):
        frame = first + pos
        path = recording.pose_path(seq, frame)
        if frame not in pose_frames:
            issues.append(Issue(frame, str(path), "missing pose file"))
        else:
            try:
                vec, t, gz = recording.read_pose(path)
                poses[pos], pose_ok[pos] = vec, True
                ts[pos] = t if t is not None else listed_ts.get(frame, np.nan)
                ground[pos] = np.nan if gz is None else gz
            except (OSError, ValueError) as exc:
                issues.append(Issue(frame, str(path), f"unreadable pose: {exc}"))
        if occ_frames:
            occ_ok[pos], shape_checked = _check_occupancy(seq, frame, frame in occ_frames, grid, shape_checked, issues)
        if config.load_images:
            missing = [c for c in config.cameras if not recording.image_path(seq, frame, c).is_file()]
            if missing:
                extra_ok[pos] = False
                issues.append(Issue(frame, str(seq / recording.IMAGES_DIR), f"missing cameras {missing}"))
        if config.load_lidar:
            lp = recording.lidar_path(seq, frame)
            try:
                header = layout.peek_npy(lp) if lp.is_file() else None
                if header is None:
                    raise ValueError("missing lidar file")
                if len(header.shape) != 2 or header.shape[1] < layout.LIDAR_COLUMNS_USED:
                    raise ValueError(f"expected [N, >= {layout.LIDAR_COLUMNS_USED}] points, got {header.shape}")
            except ValueError as exc:
                extra_ok[pos] = False
                issues.append(Issue(frame, str(lp), str(exc)))
    rate, source = _frame_rate(manifest, ts)
    if source != "sequence.json":
        notes.append(f"frame rate {rate:g} Hz {'from the pose timestamps' if source == 'timestamps' else 'assumed'} "
                     f"(sequence.json states none)")
    if n and np.all(np.isnan(ts)):
        ts = np.arange(n) / rate
        notes.append("no timestamps: frames assumed evenly spaced at the frame rate")
    _check_time(seq, first, ts, pose_ok, rate, config.max_gap_factor, issues)
    t_bl, cams = _calibration(manifest)
    if config.load_lidar and LIDAR_SENSOR not in ((manifest.sensors if manifest is not None else None) or {}):
        notes.append("no lidar calibration in sequence.json: T_body_lidar taken as identity")
    if config.load_images and any(c not in cams for c in config.cameras):
        notes.append("camera calibration missing from sequence.json: cam_intrinsics/cam_extrinsics are NaN")
    return SequenceRecord(
        name=seq.name, path=seq, agent_type=agent, first_frame=first, frame_rate_hz=rate, rate_source=source,
        timestamps=ts, poses=poses, pose_ok=pose_ok, ground_z=ground, usable=pose_ok & occ_ok & extra_ok,
        T_body_lidar=t_bl, cameras=cams, label_names=label_names or OCC3D_CLASS_NAMES, issues=issues, notes=notes)


def _check_occupancy(seq: Path, frame: int, exists: bool, grid: GridSpec, shape_checked: bool,
                     issues: list[Issue]) -> tuple[bool, bool]:
    """Header check of one occupancy file; returns (usable, whether the grid shape has been confirmed)."""
    path = recording.occupancy_path(seq, frame)
    if not exists:
        issues.append(Issue(frame, str(path), f"missing occupancy file — {GT_HINT}"))
        return False, shape_checked
    try:
        headers = layout.peek_frame(path)
    except ValueError as exc:
        issues.append(Issue(frame, str(path), str(exc)))
        return False, shape_checked
    key = layout.occupancy_key(headers)
    if key is None:
        issues.append(Issue(frame, str(path), f"no 'semantics' or 'occupancy' array (has {sorted(headers)})"))
        return False, shape_checked
    h = headers[key]
    if h.shape != grid.shape:
        if not shape_checked:
            raise GridMismatchError(
                f"{seq.name}: its occupancy arrays are {h.shape} ({path}, no grid.json), the configured grid is "
                f"{grid.shape} (point_cloud_range {list(grid.point_cloud_range)}, voxel_size {list(grid.voxel_size)}): "
                f"set the config's grid to the data's or regenerate the ground truth")
        issues.append(Issue(frame, str(path), f"grid shape {h.shape}, expected {grid.shape}"))
        return False, shape_checked
    if h.dtype.kind not in "uifb":
        issues.append(Issue(frame, str(path), f"'{key}' has dtype {h.dtype}, expected integer class ids"))
        return False, True
    return True, True


def _frame_rate(manifest: Manifest | None, ts: np.ndarray) -> tuple[float, str]:
    rate = manifest.rates.frame_rate_hz if manifest is not None and manifest.rates is not None else None
    if rate is not None:                 # the manifest checks it is a finite positive number
        return float(rate), "sequence.json"
    steps = np.diff(ts)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if len(steps):
        return float(1.0 / np.median(steps)), "timestamps"
    return OCCWORLD_FRAME_RATE_HZ, "assumed"


def _check_time(seq: Path, first: int, ts: np.ndarray, pose_ok: np.ndarray, rate: float, factor: float,
                issues: list[Issue]) -> None:
    """Flag missing or non-increasing timestamps (frame unusable) and gaps (reported; windows skip them)."""
    for pos in np.flatnonzero(pose_ok & ~np.isfinite(ts)):
        pose_ok[pos] = False
        issues.append(Issue(first + int(pos), str(recording.pose_path(seq, first + int(pos))),
                            "no timestamp (other frames have one)"))
    prev = None
    for pos in np.flatnonzero(pose_ok & np.isfinite(ts)):
        frame = first + int(pos)
        if prev is not None:
            dt = ts[pos] - ts[prev]
            if dt <= 0:
                pose_ok[pos] = False
                issues.append(Issue(frame, str(recording.pose_path(seq, frame)),
                                    f"timestamp {ts[pos]:.3f} s does not increase (frame {first + prev}: "
                                    f"{ts[prev]:.3f} s)"))
                continue
            if dt > factor * (pos - prev) / rate:
                issues.append(Issue(frame, str(recording.pose_path(seq, frame)),
                                    f"gap: {dt:.3f} s after frame {first + prev} (nominal {(pos - prev) / rate:.3f} s)"))
        prev = pos


def window_starts(record: SequenceRecord, length: int, stride: int, skip: int, max_gap_factor: float,
                  block: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """Valid window starts of a sequence.

    Parameters
    ----------
    record : the validated sequence.
    length, stride, skip : frames per window, recorded frames between window frames, start advance.
    max_gap_factor : a window step longer than this many nominal steps invalidates the window.
    block : ``(lo, hi)`` positions the window must lie in (time-block splits); None = the whole sequence.

    Returns
    -------
    starts : (W,) int64 positions (frame = ``record.first_frame + position``) of valid windows.
    candidates : how many windows the sequence (block) would hold if every frame were good.
    """
    lo, hi = block if block is not None else (0, record.num_frames)
    span = (length - 1) * stride
    cand = np.arange(lo, hi - span, skip, dtype=np.int64)
    if not len(cand):
        return cand, 0
    idx = cand[:, None] + stride * np.arange(length)                    # (W, L) positions
    ok = record.usable[idx].all(axis=1)
    if length > 1:
        dt = np.diff(record.timestamps[idx], axis=1)
        with np.errstate(invalid="ignore"):
            ok &= np.all((dt > 0) & (dt <= max_gap_factor * stride / record.frame_rate_hz), axis=1)
    return cand[ok], len(cand)
