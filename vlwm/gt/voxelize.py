"""Exact voxelisation of triangles, solid interiors and points into a class grid with priorities.

Everything here works in **index space** (:mod:`vlwm.gt.grid`): voxel ``(i, j, k)`` is the closed
unit cube ``[i, i + 1] x [j, j + 1] x [k, k + 1]``.  Each function merges its result into a
``(X, Y, Z) uint8`` class grid in place: a voxel takes a new label only when that label's rank
(:mod:`vlwm.gt.priority`) is higher than the one it holds, so the order of calls does not matter.

* :func:`voxelize_surfaces` — a voxel is marked when a triangle meets its closed cube (a surface
  lying exactly on a voxel face marks both neighbours).  The kernel clips each triangle to the
  x slab of every voxel column it spans, the piece to each y slab, and marks the voxels of the
  z range of what is left: a convex piece inside one column meets exactly the voxels its z extent
  meets, so no overlap test is needed and work grows with the voxels touched, not with the
  triangle's bounding box.  The reference is the separating-axis triangle-box test
  (Akenine-Möller, 13 axes) on every voxel of the triangle's bounding box.
* :func:`fill_solids` — interiors of closed solids (buildings, trees, actor boxes).  For each
  solid (a group of triangles, e.g. one instance) and each voxel column whose centre line meets
  the solid's up- or down-facing triangles, the voxels whose centres lie between the lowest and
  the highest crossing are filled.  Unlike ray parity this needs no watertight mesh: a missing
  face or a duplicated edge cannot make a column leak past the solid's own surfaces.  A void
  enclosed in z by one solid (an arcade under one building) is filled too.  Together with the
  surface voxels this marks every voxel that meets a convex solid.
* :func:`splat_points` — each point marks the voxel that contains it.

**Instances.**  Each function optionally fills an ``(X, Y, Z) int32`` instance grid beside the class
grid (``instance_grid``, with one id per triangle, solid or point; 0 = none): a voxel takes the id of
whatever gave it its class.  The class rule is untouched; among several things of the winning class
in one voxel (two cars' boxes brushing) the smallest positive id wins, so the instance grid does
not depend on the order of calls either.

Kernels are numba-compiled; ``backend="numpy"`` runs the slow, obviously-correct references the
tests compare them with.
"""

from __future__ import annotations

import numba
import numpy as np

BACKENDS = ("numba", "numpy")
MAX_POLYGON = 16          #: vertices of a triangle clipped by four planes (at most 7) fit easily
INSIDE_TOLERANCE = 1e-9   #: barycentric slack of the column-centre test (closes cracks between triangles)
DEGENERATE_AREA = 1e-12   #: projected doubled areas (voxel units²) below this are vertical: no crossing


def _check(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown voxelisation backend {backend!r}; choose one of {BACKENDS}")


# ------------------------------------------------------------------------------ surfaces


def voxelize_surfaces(sem: np.ndarray, triangles: np.ndarray, labels: np.ndarray, ranks: np.ndarray,
                      backend: str = "numba", instance_grid: np.ndarray | None = None,
                      instance_ids: np.ndarray | None = None) -> None:
    """Mark every voxel that a triangle meets, in place.

    Parameters
    ----------
    sem : (X, Y, Z) uint8
        Class grid, updated in place by priority.
    triangles : (F, 3, 3) float
        Triangle vertices, index space.
    labels : (F,) uint8
        Label of each triangle.
    ranks : (L,) uint8
        Priority rank of each label (:func:`vlwm.gt.priority.priority_ranks`).
    backend : {'numba', 'numpy'}
    instance_grid : (X, Y, Z) int32, optional
        Instance grid, updated in place with the id of the triangle that gave each voxel its class.
    instance_ids : (F,) int, optional
        Instance id of each triangle (0 = none); needed with ``instance_grid``.
    """
    _check(backend)
    tri = np.ascontiguousarray(triangles, np.float64).reshape(-1, 3, 3)
    labels = np.ascontiguousarray(labels, np.uint8)
    grid, ids, track = _instance_args(sem, instance_grid, instance_ids, len(tri))
    if backend == "numba":
        _surface_kernel(sem, tri, labels, np.ascontiguousarray(ranks, np.uint8), grid, ids, track)
    else:
        for t, lab, iid in zip(tri, labels, ids):
            lo = np.maximum(np.ceil(t.min(0)) - 1, 0).astype(int)
            hi = np.minimum(np.floor(t.max(0)), np.array(sem.shape) - 1).astype(int)
            if np.any(lo > hi):
                continue
            cube = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"), -1)
            hit = triangle_box_overlap(t, cube.reshape(-1, 3) + 0.5, 0.5)
            _merge(sem, cube.reshape(-1, 3)[hit], lab, ranks, instance_grid, iid)


def triangle_box_overlap(tri: np.ndarray, centres: np.ndarray, half: float) -> np.ndarray:
    """Separating-axis test (Akenine-Möller) of one triangle against many axis-aligned cubes.

    ``tri`` : (3, 3) float vertices; ``centres`` : (m, 3) cube centres; ``half`` : half edge length.
    Returns (m,) bool, True where the triangle meets the closed cube.
    """
    v = tri[None, :, :] - centres[:, None, :]                                  # (m, 3 vertices, 3)
    overlap = np.all((v.min(1) <= half) & (v.max(1) >= -half), axis=1)        # the cube's face normals
    edges = np.roll(tri, -1, axis=0) - tri                                      # (3, 3)
    normal = np.cross(edges[0], edges[1])
    overlap &= np.abs(v[:, 0] @ normal) <= half * np.abs(normal).sum()         # the triangle's plane
    for e in edges:                                                             # the nine edge x axis products
        for axis in np.eye(3):
            a = np.cross(axis, e)
            p = v @ a                                                           # (m, 3)
            r = half * np.abs(a).sum()
            overlap &= (p.min(1) <= r) & (p.max(1) >= -r)
    return overlap


@numba.njit(cache=True, nogil=True)
def _clip(src, n, axis, value, keep_above, dst):  # pragma: no cover - compiled
    """Sutherland-Hodgman: the part of polygon ``src[:n]`` with ``x[axis] >= value`` (``keep_above``)
    or ``<= value`` into ``dst``; returns its vertex count."""
    m = 0
    for q in range(n):
        p = q - 1 if q > 0 else n - 1
        a_in = src[p, axis] >= value if keep_above else src[p, axis] <= value
        b_in = src[q, axis] >= value if keep_above else src[q, axis] <= value
        if a_in != b_in:
            t = (value - src[p, axis]) / (src[q, axis] - src[p, axis])
            for c in range(3):
                dst[m, c] = src[p, c] + t * (src[q, c] - src[p, c])
            dst[m, axis] = value
            m += 1
        if b_in:
            for c in range(3):
                dst[m, c] = src[q, c]
            m += 1
    return m


@numba.njit(cache=True, nogil=True)
def _put(sem, inst, i, j, k, lab, rank, iid, ranks, track):  # pragma: no cover - compiled
    """One voxel's merge: the label by priority and, when ``track``, the instance of the winner
    (among equal labels the smallest positive id)."""
    held = ranks[sem[i, j, k]]
    if rank > held:
        sem[i, j, k] = lab
        if track:
            inst[i, j, k] = iid
    elif track and rank == held and rank > 0 and iid > 0:
        cur = inst[i, j, k]
        if cur == 0 or iid < cur:
            inst[i, j, k] = iid


@numba.njit(cache=True, nogil=True)
def _surface_kernel(sem, tri, labels, ranks, inst, ids, track):  # pragma: no cover - compiled
    """:func:`voxelize_surfaces`: per triangle, clip to each x slab, then each y slab, mark the z range."""
    nx, ny, nz = sem.shape
    a = np.empty((MAX_POLYGON, 3))
    b = np.empty((MAX_POLYGON, 3))
    c = np.empty((MAX_POLYGON, 3))
    lo = np.empty(3)
    hi = np.empty(3)
    for f in range(tri.shape[0]):
        lab = labels[f]
        rank = ranks[lab]
        for d in range(3):
            lo[d] = min(tri[f, 0, d], tri[f, 1, d], tri[f, 2, d])
            hi[d] = max(tri[f, 0, d], tri[f, 1, d], tri[f, 2, d])
        if hi[0] < 0 or hi[1] < 0 or hi[2] < 0 or lo[0] > nx or lo[1] > ny or lo[2] > nz:
            continue
        i0, i1 = max(int(np.ceil(lo[0])) - 1, 0), min(int(np.floor(hi[0])), nx - 1)
        for i in range(i0, i1 + 1):
            for v in range(3):
                for d in range(3):
                    a[v, d] = tri[f, v, d]
            n = _clip(a, 3, 0, float(i), True, b)
            n = _clip(b, n, 0, float(i + 1), False, a)
            if n == 0:
                continue
            ylo, yhi = a[0, 1], a[0, 1]
            for v in range(1, n):
                ylo, yhi = min(ylo, a[v, 1]), max(yhi, a[v, 1])
            j0, j1 = max(int(np.ceil(ylo)) - 1, 0), min(int(np.floor(yhi)), ny - 1)
            for j in range(j0, j1 + 1):
                m = _clip(a, n, 1, float(j), True, b)
                m = _clip(b, m, 1, float(j + 1), False, c)
                if m == 0:
                    continue
                zlo, zhi = c[0, 2], c[0, 2]
                for v in range(1, m):
                    zlo, zhi = min(zlo, c[v, 2]), max(zhi, c[v, 2])
                k0, k1 = max(int(np.ceil(zlo)) - 1, 0), min(int(np.floor(zhi)), nz - 1)
                for k in range(k0, k1 + 1):
                    _put(sem, inst, i, j, k, lab, rank, ids[f], ranks, track)


# ------------------------------------------------------------------------------ solid interiors


def fill_solids(sem: np.ndarray, triangles: np.ndarray, groups: np.ndarray, group_labels: np.ndarray,
                ranks: np.ndarray, backend: str = "numba", instance_grid: np.ndarray | None = None,
                group_instances: np.ndarray | None = None) -> None:
    """Fill the interiors of solids, in place: per solid and voxel column, the voxels whose centres lie
    between the lowest and highest crossing of the column's centre line with the solid's triangles.

    Parameters
    ----------
    sem : (X, Y, Z) uint8
        Class grid, updated in place by priority.
    triangles : (F, 3, 3) float
        Triangle vertices, index space.
    groups : (F,) int
        Solid of each triangle, ``0 .. G-1`` (e.g. instance ids renumbered).
    group_labels : (G,) uint8
        Label of each solid.
    ranks : (L,) uint8
        Priority rank of each label.
    backend : {'numba', 'numpy'}
    instance_grid : (X, Y, Z) int32, optional
        Instance grid, updated in place with the id of the solid that gave each voxel its class.
    group_instances : (G,) int, optional
        Instance id of each solid (0 = none); needed with ``instance_grid``.
    """
    _check(backend)
    tri = np.ascontiguousarray(triangles, np.float64).reshape(-1, 3, 3)
    groups = np.asarray(groups, np.int64)
    group_labels = np.ascontiguousarray(group_labels, np.uint8)
    grid, ids, track = _instance_args(sem, instance_grid, group_instances, len(group_labels))
    if backend == "numba":
        order = np.argsort(groups, kind="stable")
        starts = np.searchsorted(groups[order], np.arange(len(group_labels) + 1))
        _fill_kernel(sem, np.ascontiguousarray(tri[order]), starts, group_labels, np.ascontiguousarray(ranks, np.uint8),
                     grid, ids, track)
        return
    nx, ny, nz = sem.shape
    px, py = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5, indexing="ij")       # (X, Y) centre lines
    centres = np.arange(nz) + 0.5
    for g, lab in enumerate(group_labels):
        zlo, zhi = np.full((nx, ny), np.inf), np.full((nx, ny), -np.inf)
        for a, b, c in tri[groups == g]:
            d = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
            if abs(d) < DEGENERATE_AREA:
                continue
            wa = ((b[0] - px) * (c[1] - py) - (b[1] - py) * (c[0] - px)) / d
            wb = ((c[0] - px) * (a[1] - py) - (c[1] - py) * (a[0] - px)) / d
            wc = 1.0 - wa - wb
            inside = (wa >= -INSIDE_TOLERANCE) & (wb >= -INSIDE_TOLERANCE) & (wc >= -INSIDE_TOLERANCE)
            z = np.where(inside, wa * a[2] + wb * b[2] + wc * c[2], np.nan)
            zlo, zhi = np.fmin(zlo, z), np.fmax(zhi, z)
        filled = (centres >= zlo[..., None]) & (centres <= zhi[..., None])              # (X, Y, Z)
        _merge(sem, np.argwhere(filled), lab, ranks, instance_grid, ids[g])


@numba.njit(cache=True, nogil=True)
def _fill_kernel(sem, tri, starts, group_labels, ranks, inst, ids, track):  # pragma: no cover - compiled
    """:func:`fill_solids` on triangles sorted by solid (``tri[starts[g]:starts[g + 1]]``)."""
    nx, ny, nz = sem.shape
    zlo = np.empty((nx, ny))
    zhi = np.empty((nx, ny))
    stamp = np.full((nx, ny), -1, np.int64)
    touched = np.empty(nx * ny, np.int64)
    for g in range(len(group_labels)):
        lab = group_labels[g]
        rank = ranks[lab]
        nt = 0
        for f in range(starts[g], starts[g + 1]):
            ax, ay, az = tri[f, 0, 0], tri[f, 0, 1], tri[f, 0, 2]
            bx, by, bz = tri[f, 1, 0], tri[f, 1, 1], tri[f, 1, 2]
            cx, cy, cz = tri[f, 2, 0], tri[f, 2, 1], tri[f, 2, 2]
            d = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if abs(d) < DEGENERATE_AREA:
                continue
            i0 = max(int(np.ceil(min(ax, bx, cx) - 0.5)), 0)
            i1 = min(int(np.floor(max(ax, bx, cx) - 0.5)), nx - 1)
            j0 = max(int(np.ceil(min(ay, by, cy) - 0.5)), 0)
            j1 = min(int(np.floor(max(ay, by, cy) - 0.5)), ny - 1)
            for i in range(i0, i1 + 1):
                px = i + 0.5
                for j in range(j0, j1 + 1):
                    py = j + 0.5
                    wa = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / d
                    wb = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / d
                    wc = 1.0 - wa - wb
                    if wa < -INSIDE_TOLERANCE or wb < -INSIDE_TOLERANCE or wc < -INSIDE_TOLERANCE:
                        continue
                    z = wa * az + wb * bz + wc * cz
                    if stamp[i, j] != g:
                        stamp[i, j] = g
                        zlo[i, j] = z
                        zhi[i, j] = z
                        touched[nt] = i * ny + j
                        nt += 1
                    else:
                        zlo[i, j] = min(zlo[i, j], z)
                        zhi[i, j] = max(zhi[i, j], z)
        for t in range(nt):
            i, j = touched[t] // ny, touched[t] % ny
            k0 = max(int(np.ceil(zlo[i, j] - 0.5)), 0)
            k1 = min(int(np.floor(zhi[i, j] - 0.5)), nz - 1)
            for k in range(k0, k1 + 1):
                _put(sem, inst, i, j, k, lab, rank, ids[g], ranks, track)


# ------------------------------------------------------------------------------ points


def splat_points(sem: np.ndarray, points: np.ndarray, labels: np.ndarray, ranks: np.ndarray,
                 T_index: np.ndarray | None = None, backend: str = "numba", instance_grid: np.ndarray | None = None,
                 instance_ids: np.ndarray | None = None) -> None:
    """Mark the voxel containing each point, in place.

    Parameters
    ----------
    sem : (X, Y, Z) uint8
        Class grid, updated in place by priority.
    points : (n, >=3) float
        Points (x, y, z first; further columns ignored), index space or mapped there by ``T_index``;
        those outside the grid are ignored.
    labels : (n,) uint8
        Label of each point (a rank-0 label, the free one, marks nothing: a cheap way to leave points out).
    ranks : (L,) uint8
        Priority rank of each label.
    T_index : (4, 4) float, optional
        Affine map from the points' frame to index space (identity when omitted).
    backend : {'numba', 'numpy'}
    instance_grid : (X, Y, Z) int32, optional
        Instance grid, updated in place with the id of the point that gave each voxel its class.
    instance_ids : (n,) int, optional
        Instance id of each point (0 = none); needed with ``instance_grid``.
    """
    _check(backend)
    pts = np.ascontiguousarray(np.asarray(points)[:, :3])
    labels = np.ascontiguousarray(labels, np.uint8)
    T = np.eye(4) if T_index is None else np.ascontiguousarray(T_index, np.float64)
    grid, ids, track = _instance_args(sem, instance_grid, instance_ids, len(pts))
    if backend == "numba":
        _splat_kernel(sem, T, pts, labels, np.ascontiguousarray(ranks, np.uint8), grid, ids, track)
        return
    idx = np.floor(pts.astype(np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(sem.shape)), axis=1)
    pairs = np.unique(np.stack([labels[ok].astype(np.int64), ids[ok].astype(np.int64)], axis=1), axis=0)
    for lab, iid in pairs:                      # one (label, instance) at a time: no clashing duplicates
        _merge(sem, idx[ok & (labels == lab) & (ids == iid)], lab, ranks, instance_grid, iid)


@numba.njit(cache=True, nogil=True)
def _splat_kernel(sem, T, points, labels, ranks, inst, ids, track):  # pragma: no cover - compiled
    nx, ny, nz = sem.shape
    for p in range(points.shape[0]):
        rank = ranks[labels[p]]
        if rank == 0:
            continue
        px, py, pz = float(points[p, 0]), float(points[p, 1]), float(points[p, 2])
        x = np.floor(T[0, 0] * px + T[0, 1] * py + T[0, 2] * pz + T[0, 3])
        y = np.floor(T[1, 0] * px + T[1, 1] * py + T[1, 2] * pz + T[1, 3])
        z = np.floor(T[2, 0] * px + T[2, 1] * py + T[2, 2] * pz + T[2, 3])
        if x < 0 or y < 0 or z < 0 or x >= nx or y >= ny or z >= nz:
            continue
        _put(sem, inst, int(x), int(y), int(z), labels[p], rank, ids[p], ranks, track)


def _instance_args(sem: np.ndarray, grid: np.ndarray | None, ids: np.ndarray | None,
                   n: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The kernels' (instance grid, (n,) int32 ids, track) arguments: a 1-voxel dummy grid and zero
    ids when no instance grid is asked for."""
    if grid is None:
        return np.zeros((1, 1, 1), np.int32), np.zeros(n, np.int32), False
    if grid.shape != sem.shape or grid.dtype != np.int32:
        raise ValueError(f"instance grid must be int32 of the class grid's shape {sem.shape}, "
                         f"got {grid.dtype} {grid.shape}")
    if ids is None or len(ids) != n:
        raise ValueError(f"an instance grid needs one instance id per item: {n} items, "
                         f"{None if ids is None else len(ids)} ids")
    return grid, np.ascontiguousarray(ids, np.int32), True


def _merge(sem: np.ndarray, index: np.ndarray, label: int, ranks: np.ndarray, inst: np.ndarray | None = None,
           iid: int = 0) -> None:
    """Give the voxels ``index`` (m, 3) the ``label`` where it outranks what they hold, and the
    instance ``iid`` to ``inst`` as :func:`_put` does (numpy; ``index`` rows unique)."""
    if not len(index):
        return
    i, j, k = np.asarray(index, np.int64).T
    cur = sem[i, j, k]
    rank = ranks[label]
    win = rank > ranks[cur]
    sem[i, j, k] = np.where(win, np.uint8(label), cur)
    if inst is not None:
        held = inst[i, j, k]
        tie = ~win & (rank == ranks[cur]) & (rank > 0) & (iid > 0) & ((held == 0) | (iid < held))
        inst[i, j, k] = np.where(win | tie, np.int32(iid), held)
