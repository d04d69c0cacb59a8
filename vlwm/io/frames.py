"""Rigid-body poses and the recording's pose conventions.

A pose places the vehicle body frame (x forward, y left, z up) in the scene's local ENU world
frame (metres).  Quaternions are stored **(x, y, z, w)** (ROS order) in JSON and arrays here, and
rotate body -> world.  The 13-d pose used by existing Tokyo datasets and the dataset loader is
``pose_13d = [x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]`` (scalar-first there): position
(m, world), orientation, linear velocity (m/s, world frame) and angular velocity (rad/s, body frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def quat_from_euler(roll, pitch, yaw) -> np.ndarray:
    """Quaternion(s) (..., 4) (x, y, z, w) of intrinsic Z-Y-X rotations (yaw, then pitch, then roll), radians."""
    roll, pitch, yaw = (np.asarray(a, np.float64) for a in (roll, pitch, yaw))
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.stack([
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    ], axis=-1)


def euler_from_quat(q) -> np.ndarray:
    """(..., 3) roll, pitch, yaw (radians) of quaternion(s) (..., 4) (x, y, z, w)."""
    q = np.asarray(q, np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1, 1))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.stack([roll, pitch, yaw], axis=-1)


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix (..., 3, 3) of unit quaternion(s) (..., 4) (x, y, z, w)."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def matrix_to_quat(m) -> np.ndarray:
    """Unit quaternion (4,) (x, y, z, w), w >= 0, of a rotation matrix (3, 3)."""
    m = np.asarray(m, np.float64)
    t = np.trace(m)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def make_transform(rotation: np.ndarray, translation) -> np.ndarray:
    """4x4 homogeneous transform (float64) from a 3x3 rotation and a (3,) translation."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def rotate_vectors(r: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by the 3x3 ``r``; keeps the vectors' float dtype.

    ``einsum`` rather than ``vectors @ r.T``: a (n, 3) x (3, 3) product through BLAS costs several
    times more, and far more when BLAS threads compete with other processes.
    """
    v = np.asarray(vectors)
    return np.einsum("ij,...j->...i", np.asarray(r, v.dtype if v.dtype.kind == "f" else np.float64), v)


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (..., 3) -> (..., 3) float64."""
    return rotate_vectors(t[:3, :3], np.asarray(points, np.float64)) + t[:3, 3]


def invert_transform(t: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    r = t[:3, :3]
    return make_transform(r.T, -r.T @ t[:3, 3])


@dataclass(frozen=True)
class Pose:
    """A vehicle state at one instant.

    Attributes
    ----------
    timestamp : float
        Seconds since the start of the recording.
    position : (3,) float
        Body origin in the local ENU world frame, metres.
    orientation : (4,) float
        Unit quaternion (x, y, z, w) rotating body -> world.
    linear_velocity : (3,) float
        m/s, world frame.
    angular_velocity : (3,) float
        rad/s, body frame.
    """

    timestamp: float
    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray

    @classmethod
    def from_xyz_rpy(cls, timestamp, position, rpy=(0.0, 0.0, 0.0), linear_velocity=(0, 0, 0),
                     angular_velocity=(0, 0, 0)) -> "Pose":
        return cls(float(timestamp), np.asarray(position, np.float64), quat_from_euler(*rpy),
                   np.asarray(linear_velocity, np.float64), np.asarray(angular_velocity, np.float64))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) body -> world rotation."""
        return quat_to_matrix(self.orientation)

    @property
    def yaw(self) -> float:
        """Heading (rad) of body x, counter-clockwise from world +x (east)."""
        return float(euler_from_quat(self.orientation)[2])

    def matrix(self) -> np.ndarray:
        """(4, 4) T_world_body: maps body-frame points into the world frame."""
        return make_transform(self.rotation, self.position)

    def pose_13d(self) -> list[float]:
        """``[x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz]``."""
        q = self.orientation
        return [*map(float, self.position), float(q[3]), float(q[0]), float(q[1]), float(q[2]),
                *map(float, self.linear_velocity), *map(float, self.angular_velocity)]

    def to_json(self, **extra) -> dict:
        """The pose file's content (``poses/NNNNNN.json``); ``extra`` keys (e.g. ``ground_z``) are added."""
        p, q, v, w = self.position, self.orientation, self.linear_velocity, self.angular_velocity
        return {
            "timestamp": float(self.timestamp),
            "position": {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])},
            "orientation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])},
            "velocity": {
                "linear": {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])},
                "angular": {"x": float(w[0]), "y": float(w[1]), "z": float(w[2])},
            },
            "pose_13d": self.pose_13d(),
            **extra,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Pose":
        """Read a pose file's dict; ``pose_13d`` alone is enough when the named keys are absent."""
        if "position" in d and "orientation" in d:
            p, q = d["position"], d["orientation"]
            vel = d.get("velocity", {})
            lin, ang = vel.get("linear", {}), vel.get("angular", {})
            return cls(
                float(d.get("timestamp", 0.0)),
                np.array([p["x"], p["y"], p["z"]], np.float64),
                np.array([q["x"], q["y"], q["z"], q["w"]], np.float64),
                np.array([lin.get(k, 0.0) for k in "xyz"], np.float64),
                np.array([ang.get(k, 0.0) for k in "xyz"], np.float64),
            )
        if "pose_13d" in d:
            v = np.asarray(d["pose_13d"], np.float64)
            if v.shape != (13,):
                raise ValueError(f"pose_13d has {v.size} values, expected 13")
            return cls(float(d.get("timestamp", 0.0)), v[:3], np.r_[v[4:7], v[3]], v[7:10], v[10:13])
        raise ValueError("pose has neither position/orientation nor pose_13d")
