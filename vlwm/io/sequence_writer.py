"""Writing a recording in the layout of :mod:`vlwm.io.recording`, one atomic frame at a time.

The simulator, the MAVLink server and the bag importer all write through :class:`SequenceWriter`.

**Atomicity.** Every file is written to a temporary name and renamed into place
(:mod:`vlwm.io.atomic`).  The pose file is written last and is the frame's commit mark: a frame
exists iff ``poses/NNNNNN.json`` exists.  A recording killed mid-frame leaves files of at most one
uncommitted frame; :meth:`SequenceWriter.open` removes them before resuming, and ``sequence.json``
(rewritten atomically after each frame) always lists exactly the committed frames.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlwm import __version__
from vlwm.io.atomic import TEMP_SUFFIX, atomic_write, atomic_write_json
from vlwm.io.frames import Pose
from vlwm.io.image_io import image_paths, save_depth_png, save_rgb_jpeg, save_semantic_png
from vlwm.io.manifest import FrameEntry, Manifest, ManifestError, load_manifest
from vlwm.io.recording import (AGENT_TYPES, FRAME_FILE, IMAGES_DIR, LAYOUT_VERSION, LIDAR_DIR, MANIFEST, POSES_DIR,
                               SUBDIRS, lidar_path, new_sequence_dir, pose_frames, pose_path)


@dataclass
class SequenceWriter:
    """Writes frames of one sequence; create with :meth:`create` or :meth:`open` (resume)."""

    path: Path
    manifest: Manifest

    @classmethod
    def create(cls, root: str | os.PathLike, agent: str, manifest: dict,
               start: datetime.datetime | None = None, name: str | None = None) -> "SequenceWriter":
        """Start a new sequence under ``root``.

        ``manifest`` holds the keys of ``sequence.json`` that describe the recording (vehicle_id,
        scene or source, seed, rates, sensors, …; see :mod:`vlwm.io.manifest`); the writer adds
        the layout version, software version, agent type, start time, status and the frame list.
        A malformed key is a :class:`~vlwm.io.manifest.ManifestError` before anything is written.
        ``name`` fixes the folder name instead of ``<agent>_<timestamp>``; an existing folder of that
        name is refused (use :meth:`open` to resume it).
        """
        if agent not in AGENT_TYPES:
            raise ValueError(f"agent must be 'drone' or 'rover', got {agent!r}")
        start = start or datetime.datetime.now()
        doc = {"layout_version": LAYOUT_VERSION, "software": f"vlwm {__version__}", "agent_type": agent,
               "created": start.isoformat(timespec="seconds"), **manifest, "status": "recording",
               "num_frames": 0, "frames": []}
        typed = Manifest.from_json(json.loads(json.dumps(doc)), Path(root) / (name or f"{agent}_<start>") / MANIFEST)
        if name is None:
            path = new_sequence_dir(Path(root), agent, start)
        else:
            path = Path(root) / name
            if path.exists():
                raise FileExistsError(f"{path} already exists: resume it (--resume) or remove it (--overwrite)")
            path.mkdir(parents=True)
        for sub in SUBDIRS:
            (path / sub).mkdir(exist_ok=True)
        typed.file = path / MANIFEST
        writer = cls(path, typed)
        writer._write_manifest()
        return writer

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SequenceWriter":
        """Reopen a sequence to append frames: uncommitted files are removed, the manifest rebuilt.

        Returns the writer; ``writer.num_frames`` committed frames remain.
        """
        path = Path(path)
        manifest = load_manifest(path)
        committed = pose_frames(path)
        if committed != list(range(1, len(committed) + 1)):
            raise ValueError(f"{path}: committed frames are not contiguous from 1 ({committed[:5]}...)")
        last = len(committed)
        for sub in (IMAGES_DIR, LIDAR_DIR):
            for p in (path / sub).iterdir():
                m = FRAME_FILE.match(p.name)
                if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX):
                    p.unlink()
                elif m and int(m.group(1)) > last:
                    p.unlink()
        for p in (path / POSES_DIR).glob(f".*{TEMP_SUFFIX}"):
            p.unlink()
        frames = [f for f in manifest.frames if f.index <= last]
        if len(frames) != last:  # the manifest lagged behind the pose files: rebuild its frame list
            frames = []
            for i in committed:
                pose = json.loads(pose_path(path, i).read_text())
                if "timestamp" not in pose:
                    raise ManifestError(f"{pose_path(path, i)}: timestamp is missing: cannot rebuild the frame list")
                frames.append(FrameEntry(i, pose["timestamp"]))
        manifest.frames, manifest.num_frames, manifest.status = frames, last, "recording"
        writer = cls(path, manifest)
        writer._write_manifest()
        return writer

    @property
    def num_frames(self) -> int:
        return int(self.manifest.num_frames)

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
        for name, img in (images or {}).items():
            rgb, depth, sem = image_paths(self.path / IMAGES_DIR, index, name)
            atomic_write(rgb, lambda fh, im=img: save_rgb_jpeg(fh, im.rgb))
            atomic_write(depth, lambda fh, im=img: save_depth_png(fh, im.depth_mm))
            atomic_write(sem, lambda fh, im=img: save_semantic_png(fh, im.semantic))
        if lidar is not None:
            pts = np.ascontiguousarray(lidar, dtype=np.float32)
            atomic_write(lidar_path(self.path, index), lambda fh: np.save(fh, pts))
        return self.commit_frame(pose, {**({"ground_z": float(ground_z)} if ground_z is not None else {}),
                                        **(extra or {})})

    def commit_frame(self, pose: Pose, extra: dict | None = None, write_manifest: bool = True) -> int:
        """Write the next frame's pose file (its commit mark; the frame's data must already be on disk)
        and list the frame in the manifest; returns its index.

        ``extra`` keys are added to the pose file.  ``write_manifest=False`` defers rewriting
        ``sequence.json`` to :meth:`close` (for importers that commit many frames at once).
        """
        index = self.num_frames + 1
        doc = pose.to_json(**(extra or {}))
        doc["frame"] = index
        atomic_write_json(pose_path(self.path, index), doc)
        self.manifest.frames.append(FrameEntry(index, float(pose.timestamp)))
        self.manifest.num_frames = index
        if write_manifest:
            self._write_manifest()
        return index

    def close(self, status: str = "complete") -> None:
        """Mark the recording finished (``complete``) or stopped (``interrupted``)."""
        self.manifest.status = status
        self._write_manifest()

    def _write_manifest(self) -> None:
        self.manifest.write(self.path)


def remove_sequence(path: Path) -> None:
    """Delete a recording folder (``--overwrite``); refuses folders that are not recordings."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise ValueError(f"{path} has no {MANIFEST}: refusing to delete something that is not a recording")
    shutil.rmtree(path)


__all__ = ["SequenceWriter", "remove_sequence"]
