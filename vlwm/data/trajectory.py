"""Ego motion in the form the OccWorld world model consumes, and the 3-way driving command.

Poses enter as 13-d rows ``[x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]`` (the guide's
convention, :mod:`vlwm.io.frames`): body position (m) and orientation (body -> world) in the
local ENU world frame, linear velocity (m/s, world), angular velocity (rad/s, body).

**Ego frame of frame i** — the frame the trajectory quantities are expressed in: origin at the
vehicle, level (roll and pitch removed), turned with the vehicle's yaw, as the occupancy grid
frame (:mod:`vlwm.gt.ego_frame`).  Planar vectors use **OccWorld's axes: x right, y forward**
(the nuScenes ego-LiDAR frame of the reference's ``rel_poses``, SPEC §1.3) so that pretrained pose
encoders see forward motion on the axis they were trained with; ``(right, forward) = (-left, forward)``
of the body's (forward, left).

* ``rel_motion[i]`` (4,) = ``(dx right, dy forward, dz up, dyaw)`` from frame i to frame i + 1
  (metres, radians, right-hand rule about z) — the models' drone pose input (``vlwm.models.pose``,
  ``motion_dims=4``); ``rel_motion[i, :2]`` is OccWorld's 2-d ``rel_poses[i]``.
* ``future_offset[i]`` (2,) = position (x right, y forward) of the vehicle ``horizon`` seconds
  after frame i, in frame i's ego frame (the last valid frame when the recording ends sooner).
* ``gt_mode[i]`` (3,) one-hot command ``[right, left, straight]`` derived from it exactly as the
  VAD converter that made OccWorld's info pickles derives ``pose_mode``: right if the lateral
  offset 3 s ahead is ``>= +2`` m, left if ``<= -2`` m, else straight.
"""

from __future__ import annotations

import numpy as np

from vlwm.angles import wrap_angle
from vlwm.io.frames import matrix_to_quat, quat_to_matrix

#: VAD / OccWorld command rule: lateral offset (m) that makes a turn, and the look-ahead (s).
COMMAND_THRESHOLD_M = 2.0
COMMAND_HORIZON_S = 3.0
#: Columns of the one-hot command (``gt_mode``), in the reference's order.
COMMANDS = ("right", "left", "straight")
POSE_DIMS = 13


def pose13_rotations(poses: np.ndarray) -> np.ndarray:
    """(N, 3, 3) float64 body -> world rotations of 13-d poses (N, 13)."""
    q = np.array(np.asarray(poses, np.float64)[:, 3:7])  # (qw, qx, qy, qz)
    q[np.linalg.norm(q, axis=1) == 0] = (1.0, 0.0, 0.0, 0.0)   # rows of unusable frames: identity
    return quat_to_matrix(np.concatenate([q[:, 1:], q[:, :1]], axis=1))


def set_pose13_rotations(poses: np.ndarray, rotations: np.ndarray) -> None:
    """Write rotations (N, 3, 3) into 13-d poses (N, 13) in place (quaternion w >= 0)."""
    for n, r in enumerate(rotations):
        x, y, z, w = matrix_to_quat(r)
        poses[n, 3:7] = (w, x, y, z)


def pose13_yaws(poses: np.ndarray) -> np.ndarray:
    """(N,) float64 heading (rad, counter-clockwise from world +x) of the body x axis on the level plane."""
    r = pose13_rotations(poses)
    return np.arctan2(r[:, 1, 0], r[:, 0, 0])


def to_ego_xy(d_world: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """World-frame horizontal vectors (N, 2) -> (N, 2) (x right, y forward) in ego frames of heading ``yaw`` (N,)."""
    c, s = np.cos(yaw), np.sin(yaw)
    forward = c * d_world[:, 0] + s * d_world[:, 1]
    left = -s * d_world[:, 0] + c * d_world[:, 1]
    return np.stack([-left, forward], axis=1)


def rel_motion(poses: np.ndarray, valid: np.ndarray, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame motion to the frame ``step`` recorded frames later.

    Parameters
    ----------
    poses : (N, 13) float, one row per recorded frame (rows of invalid frames are ignored).
    valid : (N,) bool, frames whose pose is usable.
    step : recorded frames between a frame and its successor in a window (``frame_stride``).

    Returns
    -------
    motion : (N, 4) float32 ``(dx right, dy forward, dz up, dyaw)``, ego frame of each frame; zero where
        the successor is missing.
    has_next : (N,) bool, True where both the frame and its successor are valid.
    """
    p = np.asarray(poses, np.float64)
    n = len(p)
    motion = np.zeros((n, 4), np.float32)
    has_next = np.zeros(n, bool)
    if n <= step:
        return motion, has_next
    a, b = np.arange(n - step), np.arange(step, n)
    ok = valid[a] & valid[b]
    a, b = a[ok], b[ok]
    yaw = pose13_yaws(p)
    motion[a, :2] = to_ego_xy(p[b, :2] - p[a, :2], yaw[a])
    motion[a, 2] = p[b, 2] - p[a, 2]
    motion[a, 3] = wrap_angle(yaw[b] - yaw[a])
    has_next[a] = True
    return motion, has_next


def future_offsets(poses: np.ndarray, valid: np.ndarray, horizon_frames: int) -> np.ndarray:
    """(N, 2) float32 ego-frame position (x right, y forward) ``horizon_frames`` recorded frames ahead.

    The look-ahead stops at the last valid frame before an invalid one or the end of the recording
    (VAD uses the last valid future step as well); a frame without any valid successor gets (0, 0).
    """
    p = np.asarray(poses, np.float64)
    n = len(p)
    out = np.zeros((n, 2), np.float32)
    if n == 0:
        return out
    # last[i]: the last index j >= i such that frames i..j are all valid (run end).
    run_end = np.empty(n, np.int64)
    end = -1
    for i in range(n - 1, -1, -1):
        if not valid[i]:
            end = -1
            run_end[i] = i - 1
            continue
        end = i if end < 0 else end
        run_end[i] = end
    idx = np.arange(n)
    target = np.minimum(idx + int(horizon_frames), run_end)
    use = valid & (target > idx)
    yaw = pose13_yaws(p)
    out[use] = to_ego_xy(p[target[use], :2] - p[idx[use], :2], yaw[use])
    return out


def command_from_offset(offset: np.ndarray, threshold: float = COMMAND_THRESHOLD_M) -> np.ndarray:
    """One-hot commands ``[right, left, straight]`` (..., 3) float32 of future offsets (..., 2) (x right, y forward)."""
    lateral = np.asarray(offset, np.float64)[..., 0]
    cmd = np.full(lateral.shape, 2, np.int64)
    cmd[lateral >= threshold] = 0
    cmd[lateral <= -threshold] = 1
    return np.eye(3, dtype=np.float32)[cmd]


def horizon_frames(horizon_s: float, frame_rate_hz: float) -> int:
    """Recorded frames in ``horizon_s`` seconds at ``frame_rate_hz`` (at least one)."""
    return max(1, int(round(horizon_s * frame_rate_hz)))
