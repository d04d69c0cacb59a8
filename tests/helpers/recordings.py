"""Tiny synthetic recordings in the documented layout, written directly (no simulator).

Shared by the data, train, eval and viz tests (the ``synth`` fixture of ``tests/data`` exposes them).

Grid ``TINY``: 20 x 20 x 8 voxels of 0.4 m (x, y in [-4, 4], z in [-1, 2.2]).  Frame ``f`` of a
sequence has ground (class 11) in layer 2, a "building" (class 15) on the vehicle's left (+y) only,
and a marker column at voxel (0, 0) whose height encodes ``f`` (so tests can tell which frame a grid
came from): ``semantics[0, 0, k] = 4`` for ``k < f % 8``.  With ``car=True`` a 3 x 2 x 2 "car" (class 4)
drives along +x on the ground, one voxel per frame; ``instances=True`` writes the ``instances`` array
(marker column :data:`MARKER_INSTANCE`, the car :data:`CAR_INSTANCE`, 0 elsewhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, OCC3D_CLASS_NAMES
from vlwm.io.frames import Pose

TINY = GridSpec((-4.0, -4.0, -1.0, 4.0, 4.0, 2.2), (0.4, 0.4, 0.4))
CAMS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
GROUND_LAYER, BUILDING_CLASS, MARKER_CLASS = 2, 15, 4
MARKER_INSTANCE, CAR_INSTANCE = 3, 8


def car_slices(frame: int, shape=TINY.shape) -> tuple[slice, slice, slice]:
    """Where the car of frame ``frame`` is: x from 4 + frame % 8, y 3..4, the two layers above the ground."""
    x0 = 4 + frame % 8
    return slice(x0, x0 + 3), slice(3, 5), slice(GROUND_LAYER + 1, GROUND_LAYER + 3)


def frame_grid(frame: int, shape=TINY.shape, car: bool = False) -> np.ndarray:
    """(X, Y, Z) uint8 semantics of frame ``frame`` (see the module docstring)."""
    x, y, z = shape
    sem = np.full(shape, FREE, np.uint8)
    sem[:, :, GROUND_LAYER] = 11
    sem[x // 2: x // 2 + 3, y - 4: y - 1, GROUND_LAYER + 1: GROUND_LAYER + 4] = BUILDING_CLASS   # left (+y)
    sem[0, 0, : frame % z] = MARKER_CLASS
    if car:
        sem[car_slices(frame, shape)] = MARKER_CLASS
    return sem


def frame_instances(frame: int, shape=TINY.shape, car: bool = True) -> np.ndarray:
    """(X, Y, Z) int32 instances of frame ``frame`` (see the module docstring)."""
    inst = np.zeros(shape, np.int32)
    inst[0, 0, : frame % shape[2]] = MARKER_INSTANCE
    if car:
        inst[car_slices(frame, shape)] = CAR_INSTANCE
    return inst


def marker(sem: np.ndarray) -> int:
    """The frame marker of a grid (frame % Z)."""
    return int(np.sum(sem[0, 0] == MARKER_CLASS))


def trajectory(n: int, rate: float, speed: float, yaw0: float, turn_rate: float, climb: float, z0: float):
    """(t, positions (n, 3), yaws (n,)) of a constant-speed arc starting at the origin."""
    t = np.arange(n) / rate
    yaw = yaw0 + turn_rate * t
    if abs(turn_rate) < 1e-12:
        x, y = speed * t * np.cos(yaw0), speed * t * np.sin(yaw0)
    else:
        x = speed / turn_rate * (np.sin(yaw) - np.sin(yaw0))
        y = -speed / turn_rate * (np.cos(yaw) - np.cos(yaw0))
    return t, np.stack([x, y, z0 + climb * t], axis=1), yaw


def write_sequence(root: Path, name: str, n: int = 14, *, agent: str | None = "drone", rate: float = 2.0,
                   speed: float = 2.0, yaw0: float = 0.3, turn_rate: float = 0.0, climb: float = 0.0,
                   z0: float = 1.0, grid: GridSpec = TINY, manifest: bool = True, grid_json: bool = True,
                   pose_format: str = "nested", occ_key: str = "semantics", masks: bool = True,
                   lidar: bool = False, images: bool = False, image_size=(16, 12), occupancy: bool = True,
                   first_frame: int = 1, car: bool = False, instances: bool = False) -> Path:
    """Write one synthetic sequence; returns its folder."""
    seq = Path(root) / name
    for sub in ("poses", "occupancy", "lidar", "images"):
        (seq / sub).mkdir(parents=True, exist_ok=True)
    t, pos, yaw = trajectory(n, rate, speed, yaw0, turn_rate, climb, z0)
    frames = []
    for i in range(n):
        f = first_frame + i
        vel = (speed * np.cos(yaw[i]), speed * np.sin(yaw[i]), climb)
        pose = Pose.from_xyz_rpy(t[i], pos[i], (0.0, 0.0, yaw[i]), vel, (0.0, 0.0, turn_rate))
        doc = pose.to_json(ground_z=0.0)
        if pose_format == "13d":
            doc = {"timestamp": float(t[i]), "pose_13d": pose.pose_13d()}
        (seq / "poses" / f"{f:06d}.json").write_text(json.dumps(doc))
        frames.append({"index": f, "timestamp": float(t[i])})
        if occupancy:
            sem = frame_grid(f, grid.shape, car)
            arrays = {occ_key: sem if occ_key == "semantics" else (sem != FREE).astype(np.uint8)}
            if instances:
                arrays["instances"] = frame_instances(f, grid.shape, car)
            if masks:
                arrays["mask_lidar"] = np.ones(grid.shape, np.uint8)
                arrays["mask_camera"] = (np.arange(grid.shape[1])[None, :, None] < grid.shape[1] // 2) \
                    .repeat(grid.shape[0], 0).repeat(grid.shape[2], 2).astype(np.uint8)
            np.savez_compressed(seq / "occupancy" / f"{f:06d}_occupancy.npz", **arrays)
        if lidar:
            rng = np.random.default_rng(f)
            pts = np.concatenate([rng.uniform(-5, 5, (50 + i, 3)), rng.uniform(0, 1, (50 + i, 5))], 1)
            np.save(seq / "lidar" / f"{f:06d}_LIDAR.npy", pts.astype(np.float32))
        if images:
            from PIL import Image

            for c, cam in enumerate(CAMS):
                w, h = image_size
                img = np.zeros((h, w, 3), np.uint8)
                img[:, : w // 4] = 40 * c          # left quarter coded by camera index
                img[..., 2] = f % 256
                Image.fromarray(img).save(seq / "images" / f"{f:06d}_{cam}.jpg", quality=95)
    if grid_json and occupancy:
        doc = {**grid.to_json(), "label_names": list(OCC3D_CLASS_NAMES), "free_label": FREE}
        (seq / "occupancy" / "grid.json").write_text(json.dumps(doc))
    if manifest:
        sensors = {"LIDAR": {"type": "lidar", "T_body_sensor": np.eye(4).tolist()}}
        w, h = image_size
        for c, cam in enumerate(CAMS):
            yaw_c = {"CAM_FRONT": 0, "CAM_FRONT_RIGHT": -55, "CAM_FRONT_LEFT": 55, "CAM_BACK": 180,
                     "CAM_BACK_LEFT": 110, "CAM_BACK_RIGHT": -110}[cam]
            a = np.deg2rad(yaw_c)
            r_view = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
            r_opt = r_view @ np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
            t_bc = np.eye(4)
            t_bc[:3, :3], t_bc[:3, 3] = r_opt, (0.1 * np.cos(a), 0.1 * np.sin(a), 0.2)
            sensors[cam] = {"type": "camera", "T_body_sensor": t_bc.tolist(), "width": w, "height": h,
                            "K": [[10.0, 0, (w - 1) / 2 + 1.0], [0, 10.0, (h - 1) / 2], [0, 0, 1]]}
        doc = {"layout_version": 1, "rates": {"frame_rate_hz": rate}, "frames": frames, "num_frames": n,
               "status": "complete", "sensors": sensors}
        if agent is not None:
            doc["agent_type"] = agent
        (seq / "sequence.json").write_text(json.dumps(doc))
    return seq
