"""A recorded sequence as a video, for checking data without a model (``vlwm visualize-data``).

Each frame shows, where the recording has them: the front camera (``images/NNNNNN_CAM_FRONT.jpg``),
a BEV of the lidar points coloured by their class (``lidar/NNNNNN_LIDAR.npy``), and the occupancy
ground truth (``occupancy/NNNNNN_occupancy.vlo``) as a BEV and a 3D render.  A panel kind the
recording has but one frame lacks is drawn blank, so every frame has the same size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vlwm.data import layout
from vlwm.gt.grid import OCC3D, GridSpec
from vlwm.io import recording
from vlwm.labels import FREE
from vlwm.viz.bev import bev_map, lidar_bev
from vlwm.viz.video import PANEL_HEIGHT, VideoFiles, compose, write_video
from vlwm.viz.voxel_render import render_voxels, unit_grid

FRONT_CAMERA = "CAM_FRONT"
RENDER_SIZE = (480, 360)    #: (width, height) of the 3D panel, pixels
BEV_SCALE = 2               #: BEV pixels per voxel


def sequence_grid(seq: Path, shape: tuple[int, int, int] | None) -> GridSpec:
    """The grid of ``seq``'s ``occupancy/grid.json``; else OCC3D when ``shape`` matches it; else 1 m voxels."""
    path = seq / recording.OCC_DIR / recording.GRID_FILE
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            return GridSpec(tuple(doc["point_cloud_range"]), tuple(doc["voxel_size"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable grid spec ({exc}); fix or delete it") from None
    if shape is None or shape == OCC3D.shape:
        return OCC3D
    return unit_grid(shape)


def read_lidar_points(path: Path) -> np.ndarray:
    """(N, C) float32 lidar points, C >= 3 (x, y, z, intensity, label, ... as the recorder writes them)."""
    pts = np.load(path, allow_pickle=False)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"{path}: expected an [N, >= 3] lidar array, got shape {pts.shape}")
    return pts.astype(np.float32, copy=False)


def sequence_frames(seq: Path) -> list[int]:
    """Frame numbers with a pose, occupancy, lidar or front-camera file, sorted."""
    frames = set(recording.pose_frames(seq)) | set(recording.occupancy_frames(seq))
    for sub, suffix in ((recording.LIDAR_DIR, "_LIDAR.npy"), (recording.IMAGES_DIR, f"_{FRONT_CAMERA}.jpg")):
        folder = seq / sub
        if folder.is_dir():
            frames |= {int(p.name[:6]) for p in folder.iterdir() if p.name.endswith(suffix) and p.name[:6].isdigit()}
    return sorted(frames)


def render_data_frames(seq: str | os.PathLike, max_frames: int | None = None, progress: bool = True) -> list[np.ndarray]:
    """(H, W, 3) uint8 frames of the recording folder ``seq`` (at most ``max_frames``)."""
    from tqdm import tqdm

    seq = Path(seq)
    if not seq.is_dir():
        raise FileNotFoundError(f"{seq}: no such recording folder")
    frames = sequence_frames(seq)
    if not frames:
        raise ValueError(f"{seq}: no poses/, occupancy/, lidar/ or images/ frames found (is this a recording folder?)")
    if max_frames is not None:
        frames = frames[:max_frames]
    has_cam = any(recording.image_path(seq, f, FRONT_CAMERA).is_file() for f in frames)
    has_lidar = any(recording.lidar_path(seq, f).is_file() for f in frames)
    occ_frames = [f for f in frames if recording.occupancy_path(seq, f).is_file()]
    shape = None
    if occ_frames:
        shape = layout.read_occupancy(recording.occupancy_path(seq, occ_frames[0]), FREE, masks=False)[0].shape
    grid = sequence_grid(seq, shape)
    out = []
    for f in tqdm(frames, desc=f"rendering {seq.name}", unit="frame", disable=not progress):
        row = []
        if has_cam:
            path = recording.image_path(seq, f, FRONT_CAMERA)
            row.append((f"{FRONT_CAMERA} #{f}", layout.read_image(path, None) if path.is_file() else None))
        if has_lidar:
            path = recording.lidar_path(seq, f)
            row.append((f"lidar BEV #{f}", lidar_bev(read_lidar_points(path), grid, BEV_SCALE)
                        if path.is_file() else None))
        if occ_frames:
            path = recording.occupancy_path(seq, f)
            if path.is_file():
                labels = layout.read_occupancy(path, FREE, masks=False)[0]
                if labels.shape != grid.shape:
                    raise ValueError(f"{path}: grid of shape {labels.shape}, expected {grid.shape} (grid.json)")
                row.append((f"occupancy BEV #{f}", bev_map(labels, grid, BEV_SCALE)))
                row.append((f"occupancy 3D #{f}", render_voxels(labels, grid, size=RENDER_SIZE)))
            else:
                row.append((f"occupancy BEV #{f} (missing)", None))
                row.append((f"occupancy 3D #{f} (missing)", None))
        out.append(compose([row], PANEL_HEIGHT))
    return out


def visualize_data(seq: str | os.PathLike, out: str | os.PathLike, max_frames: int | None = None,
                   fps: float = 5.0, gif: bool = False, progress: bool = True) -> VideoFiles:
    """Render the recording ``seq`` to the MP4 ``out`` (and a GIF beside it with ``gif``)."""
    frames = render_data_frames(seq, max_frames, progress)
    return write_video(out, frames, fps, gif=gif)
