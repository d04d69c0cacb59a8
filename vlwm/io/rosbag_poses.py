"""Timestamped transforms from a bag — odometry and the TF tree — interpolated to the lidar times.

A :class:`TransformTrack` holds the samples of one transform ``T_parent_child`` (the child's pose
in the parent; ROS ``parent -> child``) and interpolates it: linearly in position, by slerp in
orientation.  A :class:`TfTree` holds the ``/tf_static`` edges (constant) and the ``/tf`` edges
(tracks) and composes a chain, e.g. ``map -> odom -> base_link``, at any time.

Times are int64 nanoseconds (bag clock); positions metres; quaternions (x, y, z, w), unit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vlwm.io.frames import make_transform, matrix_to_quat, quat_to_matrix


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products ``a * b`` of quaternions (..., 4) (x, y, z, w)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse rotations of unit quaternions (..., 4) (x, y, z, w)."""
    return np.asarray(q, np.float64) * np.array([-1.0, -1.0, -1.0, 1.0])


def slerp(q0: np.ndarray, q1: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc.

    q0, q1 : (K, 4) unit quaternions (x, y, z, w); s : (K,) fractions in [0, 1].
    Returns (K, 4) unit quaternions: ``q0`` at s = 0, ``q1`` (or ``-q1``) at s = 1.
    """
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    s = np.asarray(s, np.float64)[:, None]
    dot = np.sum(q0 * q1, axis=1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)                 # the shorter way round
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)                          # (K, 1) half the rotation angle between them
    sin = np.sin(theta)
    small = sin < 1e-9                              # (nearly) equal: linear interpolation is exact enough
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1.0 - s, np.sin((1.0 - s) * theta) / safe)
    w1 = np.where(small, s, np.sin(s * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def rotation_vector(q: np.ndarray) -> np.ndarray:
    """(..., 3) axis * angle (radians) of unit quaternions (..., 4) (x, y, z, w), angle in [0, pi]."""
    q = np.asarray(q, np.float64)
    q = np.where(q[..., 3:4] < 0, -q, q)
    v = q[..., :3]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(n, q[..., 3:4])
    return np.where(n > 1e-12, v * angle / np.where(n > 1e-12, n, 1.0), 2.0 * v)


@dataclass
class TransformTrack:
    """Samples of one transform over time.

    times : (M,) int64 ns, increasing; positions : (M, 3) float64 m; quats : (M, 4) float64 (x, y, z, w).
    extra : (M, D) float64 per-sample values interpolated linearly with the pose (e.g. an odometry twist), or None.
    """

    times: np.ndarray
    positions: np.ndarray
    quats: np.ndarray
    extra: np.ndarray | None = None

    @classmethod
    def from_samples(cls, times, positions, quats, extra=None) -> "TransformTrack":
        """Sorted by time; of samples with equal times the last one is kept."""
        t = np.asarray(times, np.int64)
        order = np.argsort(t, kind="stable")
        t = t[order]
        last = np.r_[t[1:] != t[:-1], True]                          # keep the last of equal stamps
        pick = order[last]
        ex = None if extra is None else np.asarray(extra, np.float64)[pick]
        return cls(t[last], np.asarray(positions, np.float64)[pick], np.asarray(quats, np.float64)[pick], ex)

    def __len__(self) -> int:
        return len(self.times)

    def covers(self, t: np.ndarray) -> np.ndarray:
        """(K,) bool: ``t`` (K,) ns within the sampled interval (a one-sample track covers all time)."""
        t = np.asarray(t, np.int64)
        if len(self) == 1:
            return np.ones(len(t), bool)
        return (t >= self.times[0]) & (t <= self.times[-1])

    def interpolate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Position (K, 3), quaternion (K, 4) and extra (K, D) at times ``t`` (K,) ns.

        Linear in position (and extra), slerp in orientation, between the samples around each
        time; times outside the samples take the nearest end sample (check :meth:`covers`).
        """
        t = np.asarray(t, np.int64)
        if len(self) == 1:
            ex = None if self.extra is None else np.repeat(self.extra, len(t), 0)
            return np.repeat(self.positions, len(t), 0), np.repeat(self.quats, len(t), 0), ex
        hi = np.clip(np.searchsorted(self.times, t, side="right"), 1, len(self) - 1)
        lo = hi - 1
        span = (self.times[hi] - self.times[lo]).astype(np.float64)
        s = np.clip((t - self.times[lo]).astype(np.float64) / span, 0.0, 1.0)    # exact ns differences first
        pos = self.positions[lo] + s[:, None] * (self.positions[hi] - self.positions[lo])
        quat = slerp(self.quats[lo], self.quats[hi], s)
        ex = None if self.extra is None else self.extra[lo] + s[:, None] * (self.extra[hi] - self.extra[lo])
        return pos, quat, ex

    def matrices(self, t: np.ndarray) -> np.ndarray:
        """(K, 4, 4) ``T_parent_child`` at times ``t`` (K,) ns."""
        pos, quat, _ = self.interpolate(t)
        out = np.repeat(np.eye(4)[None], len(pos), 0)
        out[:, :3, :3] = quat_to_matrix(quat)
        out[:, :3, 3] = pos
        return out


@dataclass
class TfTree:
    """The TF graph of a bag: static edges (4, 4) and dynamic edges (:class:`TransformTrack`).

    Edges are keyed ``(parent, child)`` and hold ``T_parent_child``.  Lookups walk the graph both
    ways (an edge is inverted when walked child -> parent).
    """

    static: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    dynamic: dict[tuple[str, str], TransformTrack] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, static: dict, dynamic: dict[tuple[str, str], list]) -> "TfTree":
        """``static``: ``{(parent, child): (4, 4)}``; ``dynamic``: ``{(parent, child): [(ns, position, quat), ...]}``."""
        tracks = {}
        for key, samples in dynamic.items():
            if key in static or not samples:
                continue
            ts, ps, qs = zip(*samples)
            tracks[key] = TransformTrack.from_samples(ts, ps, qs)
        return cls(dict(static), tracks)

    def frames(self) -> set[str]:
        return {f for key in (*self.static, *self.dynamic) for f in key}

    def path(self, target: str, source: str) -> list[tuple[str, str, bool]] | None:
        """Edges from ``target`` to ``source``: ``[(parent, child, forward), ...]`` whose product
        (forward edges as they are, the others inverted) is ``T_target_source``; None if unconnected."""
        if target == source:
            return []
        links: dict[str, list[tuple[str, tuple[str, str, bool]]]] = {}
        for parent, child in (*self.static, *self.dynamic):
            links.setdefault(parent, []).append((child, (parent, child, True)))
            links.setdefault(child, []).append((parent, (parent, child, False)))
        back: dict[str, tuple[str, tuple[str, str, bool]] | None] = {target: None}
        queue = deque([target])
        while queue:
            frame = queue.popleft()
            for nxt, edge in links.get(frame, []):
                if nxt not in back:
                    back[nxt] = (frame, edge)
                    queue.append(nxt)
        if source not in back:
            return None
        edges = []
        node = source
        while back[node] is not None:
            node, edge = back[node]
            edges.append(edge)
        return edges[::-1]

    def is_static(self, target: str, source: str) -> bool:
        """True if ``target`` and ``source`` are joined by static edges only."""
        edges = self.path(target, source)
        return edges is not None and all((p, c) in self.static for p, c, _ in edges)

    def lookup(self, target: str, source: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T_target_source`` (K, 4, 4) at times ``t`` (K,) ns, and (K,) bool: every dynamic edge
        on the way covers the time (see :meth:`TransformTrack.covers`).

        Raises ``KeyError`` when the frames are not connected.
        """
        t = np.asarray(t, np.int64)
        edges = self.path(target, source)
        if edges is None:
            raise KeyError(f"no TF path from {target!r} to {source!r}")
        out = np.repeat(np.eye(4)[None], len(t), 0)
        ok = np.ones(len(t), bool)
        for parent, child, forward in edges:
            if (parent, child) in self.static:
                m = np.broadcast_to(self.static[(parent, child)], (len(t), 4, 4))
            else:
                track = self.dynamic[(parent, child)]
                m = track.matrices(t)
                ok &= track.covers(t)
            if not forward:
                m = _invert_many(m)
            out = out @ m
        return out, ok


def finite_difference_velocities(pos: np.ndarray, quat: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World linear (K, 3) and body angular (K, 3) velocities of poses — positions (K, 3), quaternions
    (K, 4) — at ``t`` (K,) ns, from differences to the next pose (the last repeats; zeros for one pose)."""
    k = len(pos)
    lin, ang = np.zeros((k, 3)), np.zeros((k, 3))
    if k < 2:
        return lin, ang
    secs = (t - t[0]) / 1e9
    dt = np.diff(secs)
    good = dt > 0
    step_v = np.where(good[:, None], np.diff(pos, axis=0) / np.where(good, dt, 1.0)[:, None], 0.0)
    rel = quat_multiply(quat_conjugate(quat[:-1]), quat[1:])               # body i -> body i+1, in body i
    step_w = np.where(good[:, None], rotation_vector(rel) / np.where(good, dt, 1.0)[:, None], 0.0)
    lin[:-1], lin[-1] = step_v, step_v[-1]
    ang[:-1], ang[-1] = step_w, step_w[-1]
    return lin, ang


def matrices_to_pose_arrays(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (K, 3) and unit quaternions (K, 4) (x, y, z, w) of rigid transforms (K, 4, 4)."""
    return m[:, :3, 3].copy(), np.array([matrix_to_quat(r) for r in m[:, :3, :3]]).reshape(len(m), 4)


def pose_matrix(position, quat) -> np.ndarray:
    """(4, 4) transform of a position (3,) and quaternion (4,) (x, y, z, w)."""
    return make_transform(quat_to_matrix(quat), position)


def _invert_many(m: np.ndarray) -> np.ndarray:
    """Inverses of rigid transforms (K, 4, 4)."""
    r = np.swapaxes(m[:, :3, :3], 1, 2)
    out = np.repeat(np.eye(4)[None], len(m), 0)
    out[:, :3, :3] = r
    out[:, :3, 3] = -np.einsum("kij,kj->ki", r, m[:, :3, 3])
    return out
