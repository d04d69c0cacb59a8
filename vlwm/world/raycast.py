"""Ray casting against a triangle mesh: an Embree backend and a pure-numpy reference.

Both tracers answer the same question — for each ray, the nearest triangle hit within
``max_range`` — through the same interface, so the slow, obviously-correct numpy version can
check the fast one in tests (``tests/world/test_raycast.py``).

Frames and units: whatever the mesh uses (scenes use the local ENU frame, metres).  Directions
must be unit vectors; distances are then metres along the ray.
"""

from __future__ import annotations

from typing import Protocol

import numba
import numpy as np

RAY_BACKENDS = ("embree", "numpy")
#: |squared length - 1| (float32) below which :func:`normalize_directions` keeps the directions as they are
UNIT_TOLERANCE = 1e-6


class Tracer(Protocol):
    """Nearest-hit queries against one fixed mesh."""

    def intersect(
        self, origins: np.ndarray, directions: np.ndarray, max_range: float | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hits.

        Parameters
        ----------
        origins : (n, 3) float32
            Ray origins.
        directions : (n, 3) float32
            Unit ray directions.
        max_range : float or (n,) float32
            Hits farther than this are ignored (``inf`` for none).

        Returns
        -------
        distance : (n,) float32
            Distance to the hit, ``inf`` where nothing was hit.
        triangle : (n,) int64
            Index of the hit triangle, -1 where nothing was hit.
        """
        ...


class EmbreeTracer:
    """Embree 4 (through ``embreex``) BVH over a mesh; builds once, then casts in C++."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        """``vertices``: (V, 3) float, ``faces``: (F, 3) int."""
        from embreex import mesh_construction, rtcore_scene

        self._scene = rtcore_scene.EmbreeScene()
        self._num_faces = len(faces)
        if self._num_faces:
            mesh_construction.TriangleMesh(
                self._scene,
                np.ascontiguousarray(vertices, dtype=np.float32),
                np.ascontiguousarray(faces, dtype=np.int32),
            )

    def intersect(self, origins, directions, max_range=np.inf):
        n = len(origins)
        if n == 0 or self._num_faces == 0:
            return np.full(n, np.inf, dtype=np.float32), np.full(n, -1, dtype=np.int64)
        o = np.asarray(origins, dtype=np.float32)
        if not (o.ndim == 2 and o.strides[0] == 0):  # one origin broadcast to every ray: embreex reads it in place
            o = np.ascontiguousarray(o)
        d = np.ascontiguousarray(directions, dtype=np.float32)
        if np.ndim(max_range) == 0:
            tfar = np.full(n, min(float(max_range), 1e37), dtype=np.float32)
        else:
            tfar = np.minimum(np.asarray(max_range, dtype=np.float64), 1e37).astype(np.float32)
            if tfar.shape != (n,):
                raise ValueError(f"max_range has shape {tfar.shape}, expected ({n},)")
        out = self._scene.run(o, d, dists=tfar, output=1)
        return _embree_hits(out["primID"], out["tfar"])


@numba.njit(cache=True, nogil=True)
def _embree_hits(prim, tfar):  # pragma: no cover - compiled
    """Embree's (n,) int32 ``primID`` (-1 where nothing was hit) and (n,) float32 ``tfar`` ->
    ``(distance (n,) float32, inf where nothing was hit; triangle (n,) int64, -1 likewise)``."""
    n = prim.shape[0]
    distance = np.empty(n, np.float32)
    triangle = np.empty(n, np.int64)
    for i in range(n):
        triangle[i] = prim[i]
        distance[i] = tfar[i] if prim[i] >= 0 else np.inf
    return distance, triangle


class NumpyTracer:
    """Brute-force Möller–Trumbore over every (ray, triangle) pair, in chunks.

    O(rays × triangles): meant for tests and small meshes, as the reference for
    :class:`EmbreeTracer`.  Computed in float64.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, chunk_pairs: int = 4_000_000):
        tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
        self._v0 = tri[:, 0]
        self._e1 = tri[:, 1] - tri[:, 0]
        self._e2 = tri[:, 2] - tri[:, 0]
        self._chunk_pairs = chunk_pairs

    def intersect(self, origins, directions, max_range=np.inf):
        o_all = np.asarray(origins, dtype=np.float64)
        d_all = np.asarray(directions, dtype=np.float64)
        n, m = len(o_all), len(self._v0)
        rng_all = np.broadcast_to(np.asarray(max_range, dtype=np.float64), (n,))
        distance = np.full(n, np.inf, dtype=np.float64)
        triangle = np.full(n, -1, dtype=np.int64)
        if n == 0 or m == 0:
            return distance.astype(np.float32), triangle
        step = max(1, self._chunk_pairs // m)
        eps = 1e-12
        for s in range(0, n, step):
            o, d = o_all[s : s + step, None, :], d_all[s : s + step, None, :]  # (r, 1, 3)
            p = np.cross(d, self._e2[None])                                   # (r, m, 3)
            det = np.einsum("rmk,mk->rm", p, self._e1)
            ok = np.abs(det) > eps
            inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
            tvec = o - self._v0[None]
            u = np.einsum("rmk,rmk->rm", tvec, p) * inv
            q = np.cross(tvec, self._e1[None])
            v = np.einsum("rmk,rk->rm", q, d[:, 0]) * inv
            t = np.einsum("rmk,mk->rm", q, self._e2) * inv
            valid = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
            valid &= t <= rng_all[s : s + step, None]
            t = np.where(valid, t, np.inf)
            best = np.argmin(t, axis=1)
            tb = t[np.arange(len(best)), best]
            hit = np.isfinite(tb)
            distance[s : s + step] = tb
            triangle[s : s + step] = np.where(hit, best, -1)
        return distance.astype(np.float32), triangle


def make_tracer(vertices: np.ndarray, faces: np.ndarray, backend: str = "embree") -> Tracer:
    """The tracer for ``backend`` (one of :data:`RAY_BACKENDS`)."""
    if backend == "embree":
        return EmbreeTracer(vertices, faces)
    if backend == "numpy":
        return NumpyTracer(vertices, faces)
    raise ValueError(f"unknown ray backend {backend!r}; choose one of {RAY_BACKENDS}")


def normalize_directions(directions: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) float32 of ``directions``; a zero-length direction is an error."""
    d = np.asarray(directions)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"directions must have shape (n, 3), got {d.shape}")
    d = np.ascontiguousarray(d, dtype=np.float32)
    bad, worst = _unit_length_check(d)
    if bad >= 0:
        raise ValueError(f"ray direction {bad} is zero or not finite: {d[bad].tolist()}")
    if worst < np.float32(UNIT_TOLERANCE):
        return d  # already unit length (the common case: sensors precompute directions)
    sq = np.einsum("ij,ij->i", d, d)
    return d / np.sqrt(sq)[:, None]


@numba.njit(cache=True, nogil=True)
def _unit_length_check(d):  # pragma: no cover - compiled
    """One pass over (n, 3) float32 directions: ``(first index whose squared length is zero or not
    finite, or -1; largest |squared length - 1|)``, all in float32, summed x, y, z in order (the
    arithmetic of ``np.einsum("ij,ij->i", d, d)``)."""
    worst = np.float32(0.0)
    one = np.float32(1.0)
    for i in range(d.shape[0]):
        sq = d[i, 0] * d[i, 0] + d[i, 1] * d[i, 1] + d[i, 2] * d[i, 2]
        if not (sq > 0 and np.isfinite(sq)):
            return i, worst
        e = abs(sq - one)
        if e > worst:
            worst = e
    return -1, worst
