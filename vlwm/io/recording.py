"""The recording layout: folder and file names, frame numbering, and which folders are recordings.

This module owns the layout; every stage (the simulator, the bag importer, the ground-truth stage,
the dataset, the viewers) names files through it.  The manifest ``sequence.json`` is
:mod:`vlwm.io.manifest`, the writer of a whole sequence :mod:`vlwm.io.sequence_writer`.

::

    <root>/<drone|rover>_<YYYYmmdd_HHMMSS>[_<n>]/
      sequence.json                       manifest (vlwm.io.manifest); absent in data from some other tools
      poses/NNNNNN.json                   the frame's pose (vlwm.io.frames.Pose.to_json), + ground_z, frame;
                                          or only pose_13d [x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]
      lidar/NNNNNN_LIDAR.npy              float32 [N, C], columns LIDAR_COLUMNS (or sequence.json lidar_columns),
                                          lidar frame
      images/NNNNNN_<CAM>.jpg             RGB; beside it _depth.png (uint16 mm) and _sem.png (uint8 label ids)
                                          (vlwm.io.image_io)
      occupancy/NNNNNN_occupancy.vlo      ground truth (vlwm.io.occupancy_file; older: .npz), and occupancy/grid.json its grid

Frame numbers ``NNNNNN`` are six digits, from 1.  **A frame exists iff its pose file exists**: the
pose file is written last (the frame's commit mark), so a folder is a recording iff it holds
``poses/`` (:func:`is_sequence_dir`, the one rule every stage uses).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import numpy as np

from vlwm.io import occupancy_file
from vlwm.io.frames import Pose

LAYOUT_VERSION = 1
"""``sequence.json`` layout_version written by this code."""
MANIFEST = "sequence.json"
IMAGES_DIR, LIDAR_DIR, POSES_DIR, OCC_DIR = "images", "lidar", "poses", "occupancy"
SUBDIRS = (IMAGES_DIR, LIDAR_DIR, POSES_DIR, OCC_DIR)
"""The sub-folders a new recording gets."""
GRID_FILE = "grid.json"
"""``occupancy/grid.json``: the grid of the ground-truth files."""
AGENT_TYPES = ("drone", "rover")
"""Vehicle kinds of a recording (``sequence.json`` agent_type, folder name prefix)."""
MAX_FRAME = 999_999
"""Largest frame number six digits can name."""

LIDAR_COLUMNS: tuple[str, ...] = ("x", "y", "z", "intensity", "label", "instance", "ring", "t")
"""Columns of the simulator's ``lidar/NNNNNN_LIDAR.npy``: x, y, z (m, lidar frame), intensity (0..1),
label (occupancy label id), instance (id, -1 = none), ring (beam index), t (s after the frame time).
Other recordings name theirs in ``sequence.json`` lidar_columns."""
OPTICAL_FRAME = "OpenCV: x right, y down, z forward (metres)"
"""Camera frame of every ``T_body_sensor`` and ``K`` in ``sequence.json`` (its optical_frame entry)."""
POSE_CONVENTION = ("body frame x forward, y left, z up, in the scene's local ENU world frame (metres); "
                   "orientation (x, y, z, w) rotates body -> world; linear velocity in the world frame, "
                   "angular velocity in the body frame; pose_13d = [x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]")
"""``sequence.json`` pose_convention: what the pose files mean (see :mod:`vlwm.io.frames`)."""

_POSE_FILE = re.compile(r"^(\d{6})\.json$")
FRAME_FILE = re.compile(r"^(\d{6})[_.]")
"""Any frame file's name: its frame number is group 1."""
_AGENT_PREFIX = re.compile(r"^(drone|rover)_")


def frame_stem(frame: int) -> str:
    """``'000001'`` for frame 1; a frame outside ``1..MAX_FRAME`` (or not an integer) is a ValueError."""
    try:
        ok = not isinstance(frame, bool) and int(frame) == frame and 1 <= frame <= MAX_FRAME
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"frame index {frame!r} outside 1..{MAX_FRAME} (frame numbers start at 1, six digits)")
    return f"{int(frame):06d}"


def pose_path(seq: Path, frame: int) -> Path:
    """``<seq>/poses/NNNNNN.json``."""
    return Path(seq) / POSES_DIR / f"{frame_stem(frame)}.json"


def lidar_path(seq: Path, frame: int) -> Path:
    """``<seq>/lidar/NNNNNN_LIDAR.npy``."""
    return Path(seq) / LIDAR_DIR / f"{frame_stem(frame)}_LIDAR.npy"


def image_path(seq: Path, frame: int, camera: str) -> Path:
    """``<seq>/images/NNNNNN_<camera>.jpg`` (the RGB image)."""
    return Path(seq) / IMAGES_DIR / f"{frame_stem(frame)}_{camera}.jpg"


def occupancy_file_name(frame: int) -> str:
    """``NNNNNN_occupancy.vlo``: a ground-truth frame file's name (:mod:`vlwm.io.occupancy_file`)."""
    frame_stem(frame)                                    # the frame number rule (a ValueError outside it)
    return occupancy_file.frame_name(frame)


def occupancy_path(seq: Path, frame: int) -> Path:
    """``<seq>/occupancy/NNNNNN_occupancy.vlo``, or the older ``.npz`` file of the frame when only that exists."""
    frame_stem(frame)                                    # the frame number rule (a ValueError outside it)
    folder = Path(seq) / OCC_DIR
    return occupancy_file.find_frame(folder, frame) or occupancy_file.frame_path(folder, frame)


def is_sequence_dir(path: Path) -> bool:
    """The one rule: a folder is a recording iff it holds ``poses/`` (the frames' commit marks)."""
    return (Path(path) / POSES_DIR).is_dir()


def find_sequences(root: str | os.PathLike) -> list[Path]:
    """Recordings at ``root``: ``[root]`` when it is one, else its sub-folders that are (sorted by name).

    Raises FileNotFoundError naming ``root`` when it does not exist or holds no recording.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected a recording, or a folder of recordings "
                                f"such as {root}/drone_<...>/)")
    if is_sequence_dir(root):
        return [root]
    found = sequences_in(root)
    if not found:
        raise FileNotFoundError(f"{root}: no recordings in it (a recording is a folder holding {POSES_DIR}/, "
                                f"e.g. {root}/drone_<...>/{POSES_DIR}/)")
    return found


def sequences_in(folder: str | os.PathLike) -> list[Path]:
    """The recordings directly under ``folder`` (hidden folders skipped), sorted by name; may be empty."""
    return sorted(p for p in Path(folder).iterdir() if not p.name.startswith(".") and is_sequence_dir(p))


def agent_from_name(name: str) -> str | None:
    """``'drone'`` / ``'rover'`` from a folder name prefix (data without a manifest), else None."""
    m = _AGENT_PREFIX.match(name)
    return m.group(1) if m else None


def pose_frames(seq: Path) -> list[int]:
    """Frame numbers of the pose files (the committed frames), ascending."""
    return _listed(Path(seq) / POSES_DIR, _POSE_FILE)


def occupancy_frames(seq: Path) -> list[int]:
    """Frame numbers of the ground-truth files, ascending."""
    return list(occupancy_file.list_frames(Path(seq) / OCC_DIR))


def _listed(folder: Path, pattern: re.Pattern) -> list[int]:
    if not folder.is_dir():
        return []
    frames = sorted(int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name)))
    if frames and frames[0] < 1:
        raise ValueError(f"{folder}: a file of frame 000000: frame numbers start at 1 (rename the files from "
                         f"000001 on)")
    return frames


def read_pose(path: str | os.PathLike) -> tuple[np.ndarray, float | None, float | None]:
    """One pose file.

    Returns
    -------
    pose : (13,) float64 ``[x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]``, quaternion normalised.
    timestamp : float seconds, or None when the file has none.
    ground_z : float metres (world z of the ground under the vehicle), or None.

    Raises ValueError (with the reason) for unreadable, incomplete or non-finite poses.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    try:
        pose = Pose.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"incomplete pose ({type(exc).__name__}: {exc})") from None
    vec = np.asarray(pose.pose_13d(), np.float64)
    if not np.all(np.isfinite(vec)):
        bad = [n for n, v in zip(("x", "y", "z", "qw", "qx", "qy", "qz", "vx", "vy", "vz", "wx", "wy", "wz"), vec)
               if not np.isfinite(v)]
        raise ValueError(f"non-finite values in {bad}")
    norm = np.linalg.norm(vec[3:7])
    if not norm > 1e-6:
        raise ValueError("zero quaternion")
    vec[3:7] /= norm
    ts = doc.get("timestamp")
    ground = doc.get("ground_z")
    try:
        ts = None if ts is None else float(ts)
        ground = None if ground is None else float(ground)
    except (TypeError, ValueError):
        raise ValueError(f"timestamp / ground_z are not numbers ({ts!r}, {ground!r})") from None
    if ts is not None and not np.isfinite(ts):
        raise ValueError(f"non-finite timestamp {ts}")
    return vec, ts, ground


def new_sequence_dir(root: Path, agent: str, start: datetime.datetime) -> Path:
    """Create a fresh ``<agent>_<YYYYmmdd_HHMMSS>[_<n>]`` folder under ``root`` (``_2``, ``_3``… on clashes)."""
    base = f"{agent}_{start.strftime('%Y%m%d_%H%M%S')}"
    for n in range(1, 10_000):
        path = Path(root) / (base if n == 1 else f"{base}_{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{root}: no free sequence folder name for {base}")


__all__ = ["AGENT_TYPES", "FRAME_FILE", "GRID_FILE", "IMAGES_DIR", "LAYOUT_VERSION", "LIDAR_COLUMNS",
           "LIDAR_DIR", "MANIFEST", "MAX_FRAME", "OCC_DIR", "OPTICAL_FRAME", "POSES_DIR", "POSE_CONVENTION",
           "SUBDIRS", "agent_from_name", "find_sequences", "frame_stem", "image_path", "is_sequence_dir",
           "lidar_path", "new_sequence_dir", "occupancy_file_name", "occupancy_frames", "occupancy_path",
           "pose_frames", "pose_path", "read_pose", "sequences_in"]
