"""Recording a sequence in the documented layout, one atomic frame at a time.

Layout (frame numbers are six digits, starting at 1)::

    <root>/<drone|rover>_<YYYYmmdd_HHMMSS>[_<n>]/
      images/000001_CAM_FRONT.jpg         RGB, and beside it
      images/000001_CAM_FRONT_depth.png   16-bit z-depth, millimetres (0 = no hit / beyond 65.535 m)
      images/000001_CAM_FRONT_sem.png     8-bit occupancy label ids (17 = free / sky)
      lidar/000001_LIDAR.npy              float32 [N, 8]: x, y, z, intensity, label, instance, ring, t
      poses/000001.json                   timestamp, position, orientation (x, y, z, w), velocity, pose_13d, ground_z
      occupancy/                          filled by the ground-truth stage
      sequence.json                       manifest: agent, scene, seed, rates, calibration, frames

**Atomicity.** Every file is written to a temporary name and renamed into place.  The pose file
is written last and is the frame's commit mark: a frame exists iff ``poses/NNNNNN.json`` exists.
A recording killed mid-frame leaves files of at most one uncommitted frame; :meth:`open` removes
them before resuming, and ``sequence.json`` (rewritten atomically after each frame) always
lists exactly the committed frames.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vlwm import __version__
from vlwm.sim.frames import Pose

LAYOUT_VERSION = 1
SUBDIRS = ("images", "lidar", "poses", "occupancy")
_FRAME_FILE = re.compile(r"^(\d{6})[_.]")


def frame_stem(index: int) -> str:
    """``000001`` for frame 1."""
    if not 1 <= index <= 999_999:
        raise ValueError(f"frame index {index} outside 1..999999")
    return f"{index:06d}"


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``path`` through ``write(fh)`` into a temporary file beside it, then rename into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: Path, obj) -> Path:
    data = json.dumps(obj, indent=2).encode()
    return atomic_write(path, lambda fh: fh.write(data))


def new_sequence_dir(root: Path, agent: str, start: datetime.datetime) -> Path:
    """A fresh ``<agent>_<YYYYmmdd_HHMMSS>[_<n>]`` folder under ``root`` (``_2``, ``_3``… on clashes)."""
    base = f"{agent}_{start.strftime('%Y%m%d_%H%M%S')}"
    for n in range(1, 10_000):
        path = Path(root) / (base if n == 1 else f"{base}_{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"{root}: no free sequence folder name for {base}")


@dataclass
class SequenceWriter:
    """Writes frames of one sequence; create with :meth:`create` or :meth:`open` (resume)."""

    path: Path
    manifest: dict

    @classmethod
    def create(cls, root: str | os.PathLike, agent: str, manifest: dict,
               start: datetime.datetime | None = None, name: str | None = None) -> "SequenceWriter":
        """Start a new sequence under ``root``.

        ``manifest`` holds what ``sequence.json`` describes (vehicle, scene, seed, rates, sensors);
        the writer adds the layout version, software version, start time and the frame list.
        ``name`` fixes the folder name instead of ``<agent>_<timestamp>``; an existing folder of that
        name is refused (use :meth:`open` to resume it).
        """
        if agent not in ("drone", "rover"):
            raise ValueError(f"agent must be 'drone' or 'rover', got {agent!r}")
        start = start or datetime.datetime.now()
        if name is None:
            path = new_sequence_dir(Path(root), agent, start)
        else:
            path = Path(root) / name
            if path.exists():
                raise FileExistsError(f"{path} already exists: resume it (--resume) or remove it (--overwrite)")
            path.mkdir(parents=True)
        for sub in SUBDIRS:
            (path / sub).mkdir(exist_ok=True)
        full = {
            "layout_version": LAYOUT_VERSION,
            "software": f"vlwm {__version__}",
            "agent_type": agent,
            "created": start.isoformat(timespec="seconds"),
            **manifest,
            "status": "recording",
            "num_frames": 0,
            "frames": [],
        }
        writer = cls(path, full)
        writer._write_manifest()
        return writer

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SequenceWriter":
        """Reopen a sequence to append frames: uncommitted files are removed, the manifest rebuilt.

        Returns the writer; ``writer.num_frames`` committed frames remain.
        """
        path = Path(path)
        mf = path / "sequence.json"
        if not mf.is_file():
            raise FileNotFoundError(f"{path}: no sequence.json — not a recording folder")
        try:
            manifest = json.loads(mf.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{mf}: damaged manifest ({exc})") from exc
        committed = sorted(int(p.stem) for p in (path / "poses").glob("[0-9]" * 6 + ".json"))
        if committed != list(range(1, len(committed) + 1)):
            raise ValueError(f"{path}: committed frames are not contiguous from 1 ({committed[:5]}...)")
        last = len(committed)
        for sub in ("images", "lidar"):
            for p in (path / sub).iterdir():
                m = _FRAME_FILE.match(p.name)
                if p.name.startswith(".") and p.name.endswith(".tmp"):
                    p.unlink()
                elif m and int(m.group(1)) > last:
                    p.unlink()
        for p in (path / "poses").glob(".*.tmp"):
            p.unlink()
        frames = [f for f in manifest.get("frames", []) if f["index"] <= last]
        if len(frames) != last:  # the manifest lagged behind the pose files: rebuild its frame list
            frames = []
            for i in committed:
                pose = json.loads((path / "poses" / f"{frame_stem(i)}.json").read_text())
                frames.append({"index": i, "timestamp": pose["timestamp"]})
        manifest.update(frames=frames, num_frames=last, status="recording")
        writer = cls(path, manifest)
        writer._write_manifest()
        return writer

    @property
    def num_frames(self) -> int:
        return int(self.manifest["num_frames"])

    def write_frame(self, pose: Pose, lidar: np.ndarray | None = None, images: dict | None = None,
                    ground_z: float | None = None, extra: dict | None = None) -> int:
        """Commit the next frame; returns its index.

        Parameters
        ----------
        pose : Pose
            Vehicle pose (body in world) at the frame time.
        lidar : (N, C) float32, optional
            Points in the lidar frame (columns as in ``sequence.json``).
        images : dict name -> object with ``rgb`` (H, W, 3) uint8, ``depth_mm`` (H, W) uint16, ``semantic`` (H, W) uint8
        ground_z : float, optional
            Scene ground height under the vehicle (m, world z).
        extra : dict, optional
            More keys for the pose file (e.g. the mission leg).
        """
        index = self.num_frames + 1
        stem = frame_stem(index)
        if images:
            from vlwm.sim.image_io import save_depth_png, save_rgb_jpeg, save_semantic_png

            for name, img in images.items():
                base = self.path / "images" / f"{stem}_{name}"
                atomic_write(base.with_name(base.name + ".jpg"), lambda fh, im=img: save_rgb_jpeg(fh, im.rgb))
                atomic_write(base.with_name(base.name + "_depth.png"),
                             lambda fh, im=img: save_depth_png(fh, im.depth_mm))
                atomic_write(base.with_name(base.name + "_sem.png"),
                             lambda fh, im=img: save_semantic_png(fh, im.semantic))
        if lidar is not None:
            pts = np.ascontiguousarray(lidar, dtype=np.float32)
            atomic_write(self.path / "lidar" / f"{stem}_LIDAR.npy", lambda fh: np.save(fh, pts))
        pose_doc = pose.to_json(**({"ground_z": float(ground_z)} if ground_z is not None else {}), **(extra or {}))
        pose_doc["frame"] = index
        atomic_write_json(self.path / "poses" / f"{stem}.json", pose_doc)  # the commit mark
        self.manifest["frames"].append({"index": index, "timestamp": float(pose.timestamp)})
        self.manifest["num_frames"] = index
        self._write_manifest()
        return index

    def close(self, status: str = "complete") -> None:
        """Mark the recording finished (``complete``) or stopped (``interrupted``)."""
        self.manifest["status"] = status
        self._write_manifest()

    def _write_manifest(self) -> None:
        atomic_write_json(self.path / "sequence.json", self.manifest)


def remove_sequence(path: Path) -> None:
    """Delete a recording folder (``--overwrite``); refuses folders that are not recordings."""
    path = Path(path)
    if not (path / "sequence.json").is_file():
        raise ValueError(f"{path} has no sequence.json: refusing to delete something that is not a recording")
    shutil.rmtree(path)
