"""The static scene plus traffic at a time ``t``: one ray caster over both.

Rays are cast twice and the nearer hit kept: once against the scene's cached tracer, once
against a small tracer built over the actors' triangles at ``t`` (a few thousand triangles),
limited to the static hit distance so only actors in front of the scene count.  Of rays that
share one origin (a lidar sweep; each camera of a rig) only those whose direction falls in an
angular bin touched by the bounding sphere of some actor not hidden behind the ray's static hit
take the second cast (:func:`cone_candidates`, one compiled pass over the rays): most rays see no
actor.  The actors' tracer is built once per ``t``, and only when some ray needs it.

The second cast uses the same Embree scene (every actor's triangles, in the same order) whatever
the cull keeps, so a ray's hit does not depend on which other rays were cast with it: the cull
changes the cost, never the result.  The ``numpy`` backend, the reference, casts every ray
against the actors.

Hits on actors follow :class:`vlwm.world.scene.RayHits` with two conventions:

* ``triangle`` is ``scene.num_triangles + k`` where ``k`` indexes the triangles of
  ``traffic.meshes(t)`` (so ``triangle >= num_static_triangles`` marks an actor hit);
* ``instance`` is the actor's global instance id (``ActorSpec.instance``), an index into
  :attr:`DynamicWorld.instance_names`, which lists the scene's instances then the actors.

Frames and units as the scene: local ENU, metres; ``t`` in seconds.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from vlwm.sim.traffic import Traffic
from vlwm.world.raycast import Tracer, make_tracer, normalize_directions
from vlwm.world.scene import Caster, RayHits, Scene


#: Grid of the shared-origin ray cull: bins of sin(elevation) x bins of pseudo-azimuth.  A
#: pseudo-azimuth bin spans 0.32 to 0.64 degrees of azimuth (an arctangent per ray would give
#: uniform bins but cost as much as the whole cull).
ELEVATION_BINS, AZIMUTH_BINS = 180, 720
#: (metres, fraction) taken off a sphere's entry distance before it is compared with a ray's reach:
#: far more than the float32 rounding of Embree's distances (~1e-7 relative).
ENTRY_MARGIN = (1e-3, 1e-5)
MAX_ORIGIN_RUNS = 64  #: at most this many runs of rays sharing an origin are culled one by one; more cast all


class _ActorMesh(NamedTuple):
    """The actors' triangles at one time, ready to cast against."""

    tracer: Tracer
    vertices: np.ndarray    # (Va, 3) float32, local ENU metres
    faces: np.ndarray       # (Fa, 3) int32
    semantics: np.ndarray   # (Fa,) uint8 CityClass
    instances: np.ndarray   # (Fa,) int32 global instance ids

    def normals(self, j: np.ndarray) -> np.ndarray:
        """(k, 3) float32 unit outward normals of triangles ``j`` (k,), local ENU, computed in float64."""
        tri = self.vertices[self.faces[j]].astype(np.float64)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return n.astype(np.float32)


class _ActorLayer:
    """The actors at one time: bounding spheres at once, triangles and their tracer on first need."""

    def __init__(self, traffic: Traffic, t: float, backend: str):
        self.traffic, self.time, self.backend = traffic, t, backend
        size = np.array([a.size for a in traffic.actors], np.float64)
        self.centres = traffic.states(t).position + size * [0, 0, 0.5]
        """(A, 3) float64 actor box centres, local ENU metres."""
        self.radii = np.linalg.norm(size, axis=1) / 2 + 1e-3
        """(A,) float64 radius (m) of a sphere around each actor's box."""
        self._mesh: _ActorMesh | None = None

    def mesh(self) -> _ActorMesh:
        """Every actor's triangles at this time and a tracer over them (built on the first call)."""
        if self._mesh is None:
            v, f, sem, inst = self.traffic.meshes(self.time)
            self._mesh = _ActorMesh(make_tracer(v, f, self.backend), v, f, sem, inst)
        return self._mesh


class DynamicWorld:
    """The static scene plus traffic at a time ``t``; casts rays against both."""

    def __init__(self, scene: Scene, traffic: Traffic | None = None):
        if traffic is not None and traffic.first_instance != len(scene.instance_names):
            raise ValueError(f"the traffic's instance ids start at {traffic.first_instance}, but the scene has "
                             f"{len(scene.instance_names)} instances: build Traffic(scene, ...) on this scene")
        self.scene, self.traffic = scene, traffic
        actors = traffic.actors if traffic is not None else ()
        self.instance_names = np.concatenate([scene.instance_names, np.array([a.name for a in actors], dtype=str)])
        """(I + A,) str: the scene's instance names, then the actors'."""
        self.instance_semantics = np.concatenate(
            [scene.instance_semantics, np.array([a.semantic for a in actors], dtype=np.uint8)])
        """(I + A,) uint8 :class:`CityClass` of each instance."""
        self._layer: _ActorLayer | None = None

    @property
    def num_static_triangles(self) -> int:
        """Triangle indices at or above this belong to actors."""
        return self.scene.num_triangles

    def caster(self, t: float, backend: str = "embree") -> Caster:
        """A function ``(origins, directions, max_range=inf) -> RayHits`` over the world at ``t`` (s)."""
        layer = self._actor_layer(float(t), backend)

        def cast_at(origins: np.ndarray, directions: np.ndarray, max_range: float | np.ndarray = np.inf) -> RayHits:
            return self._cast(origins, directions, max_range, backend, layer)

        return cast_at

    def cast(self, origins: np.ndarray, directions: np.ndarray, max_range: float | np.ndarray, t: float,
             backend: str = "embree") -> RayHits:
        """Nearest hit of each ray at time ``t`` (s), scene or actor.

        Parameters
        ----------
        origins : (n, 3) float
            Ray origins, local ENU metres.
        directions : (n, 3) float
            Ray directions (normalised here; zero vectors are an error).
        max_range : float or (n,) float
            Hits farther than this many metres count as misses (``np.inf`` for none).
        t : float
            Time, seconds, at which the actors are placed.
        backend : {'embree', 'numpy'}
            Embree (fast) or the brute-force numpy reference (tests, few rays).
        """
        return self._cast(origins, directions, max_range, backend, self._actor_layer(float(t), backend))

    # ------------------------------------------------------------------ internals

    def _actor_layer(self, t: float, backend: str) -> _ActorLayer | None:
        """The actors at ``t``, rebuilt only when ``t`` or ``backend`` changes."""
        if self.traffic is None or not self.traffic.actors:
            return None
        if self._layer is None or self._layer.time != t or self._layer.backend != backend:
            self._layer = _ActorLayer(self.traffic, t, backend)
        return self._layer

    @staticmethod
    def _actor_candidates(o: np.ndarray, d: np.ndarray, reach: np.ndarray, layer: _ActorLayer) -> np.ndarray:
        """(k,) int64 ascending indices of the rays that may meet an actor: :func:`cone_candidates`
        over each run of rays with one origin (a lidar sweep: one run; a camera rig: one per
        camera); every ray when there are more than ``MAX_ORIGIN_RUNS`` runs."""
        n = len(o)
        starts = np.array([0, n]) if o.strides[0] == 0 else _origin_runs(o, MAX_ORIGIN_RUNS)
        if n == 0 or not len(starts):
            return np.arange(n)
        parts = []
        for a, b in zip(starts[:-1], starts[1:]):
            rays = cone_candidates(o[a], d[a:b], layer.centres, layer.radii, reach=reach[a:b])
            parts.append(np.arange(a, b) if rays is None else rays + a)
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def _cast(self, origins, directions, max_range, backend: str, layer: _ActorLayer | None) -> RayHits:
        scene = self.scene
        o = np.asarray(origins, dtype=np.float32).reshape(-1, 3)  # a broadcast view stays a view (no copy)
        d = normalize_directions(np.asarray(directions).reshape(-1, 3))
        if len(o) != len(d):
            raise ValueError(f"{len(o)} origins but {len(d)} directions")
        distance, triangle = scene.tracer(backend).intersect(o, d, max_range)
        hits = scene.describe_hits(distance, triangle, d)
        if layer is None:
            return hits
        rays = self._actor_candidates(o, d, distance, layer) if backend != "numpy" else np.arange(len(o))
        if not len(rays):
            return hits
        # Only actors in front of the scene count: limit the second cast to the static distance.
        limit = np.minimum(np.broadcast_to(np.asarray(max_range, np.float64), distance.shape)[rays], distance[rays])
        mesh = layer.mesh()
        a_dist, a_tri = mesh.tracer.intersect(o[rays], d[rays], limit)
        hit = a_tri >= 0
        k, a_dist, j = rays[hit], a_dist[hit], a_tri[hit]
        if not len(k):
            return hits
        sem = mesh.semantics[j]
        normal = mesh.normals(j)
        normal[np.einsum("ij,ij->i", normal, d[k]) > 0] *= -1
        hits.distance[k] = a_dist
        hits.triangle[k] = scene.num_triangles + j
        hits.semantic[k] = sem
        hits.cls[k] = scene.label_map.table[sem]
        hits.instance[k] = mesh.instances[j]
        hits.normal[k] = normal
        return hits


def cone_candidates(origin: np.ndarray, directions: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                    reach: np.ndarray | None = None) -> np.ndarray | None:
    """Indices of the rays from one ``origin`` that may meet one of the spheres, or ``None`` (all).

    A conservative cull on a grid of ``ELEVATION_BINS`` bins of ``sin(elevation)`` (the
    direction's z) by ``AZIMUTH_BINS`` bins of a pseudo-azimuth (:func:`_pseudo_azimuth`, a
    monotonic stand-in for the azimuth that needs no arctangent): each sphere marks the bins its
    angular disc touches, padded by one bin, with the distance at which a ray can first enter it
    (``|centre - origin| - radius``, less ``ENTRY_MARGIN``); a ray is a candidate if its bin is
    marked by a sphere it can reach: one whose entry distance is at most the ray's ``reach``.

    Parameters
    ----------
    origin : (3,) float
        The rays' common origin, local ENU metres.
    directions : (n, 3) float32
        Unit ray directions.
    centres : (A, 3) float, radii : (A,) float
        Bounding spheres, metres.
    reach : (n,) float, optional
        How far each ray can see, metres (the distance of its scene hit, ``inf`` for a miss):
        spheres beyond it are hidden.  Unlimited when omitted.

    Returns
    -------
    (k,) int64 ray indices, ascending; ``None`` when the origin lies inside a sphere.
    """
    v = np.asarray(centres, np.float64) - np.asarray(origin, np.float64)
    dist = np.linalg.norm(v, axis=1)
    if np.any(dist <= radii):
        return None
    half = np.arcsin(radii / dist)                                   # angular radius of each sphere
    el = np.arcsin(np.clip(v[:, 2] / dist, -1, 1))
    az = np.arctan2(v[:, 1], v[:, 0])
    z_scale, az_scale = ELEVATION_BINS / 2, AZIMUTH_BINS / 4
    lo = np.floor((np.sin(np.maximum(el - half, -np.pi / 2)) + 1) * z_scale).astype(np.int64) - 1
    hi = np.floor((np.sin(np.minimum(el + half, np.pi / 2)) + 1) * z_scale).astype(np.int64) + 1
    lo, hi = np.clip(lo, 0, ELEVATION_BINS - 1), np.clip(hi, 0, ELEVATION_BINS - 1)
    polar = np.abs(el) + half >= np.pi / 2 - 1e-3                    # the disc reaches a pole
    rim = np.cos(np.minimum(np.abs(el) + half, np.pi / 2 - 1e-3))
    spread = np.arcsin(np.minimum(1.0, np.sin(half) / rim))          # azimuth half-width, conservative
    p0 = _pseudo_azimuth(np.cos(az - spread), np.sin(az - spread))
    p1 = _pseudo_azimuth(np.cos(az + spread), np.sin(az + spread))
    a0 = np.floor(p0 * az_scale).astype(np.int64) - 1
    a1 = np.floor(p1 * az_scale).astype(np.int64) + 1
    a1 = np.where(p1 < p0, a1 + AZIMUTH_BINS, a1)                    # the disc straddles azimuth 0
    entry = (dist - radii) * (1 - ENTRY_MARGIN[1]) - ENTRY_MARGIN[0]
    near = _mark_bins(lo, hi, a0, a1, polar, entry)
    d = np.ascontiguousarray(directions, np.float32)
    reach = np.full(len(d), np.inf) if reach is None else np.asarray(reach)
    if reach.shape != (len(d),):
        raise ValueError(f"reach has shape {reach.shape}, expected ({len(d)},)")
    return _rays_in_bins(d, near, reach)


def _pseudo_azimuth(x, y):
    """Pseudo-azimuth in [0, 4) of direction ``(x, y)`` (arrays, float64): 0 towards +x, 1 towards
    +y, 2 towards -x, 3 towards -y, rising strictly with the true azimuth in between (per quadrant
    ``y / (x + y)`` and its rotations), so an azimuth interval maps to a pseudo-azimuth interval."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ax, ay = np.abs(x), np.abs(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(ax + ay > 0, ay / (ax + ay), 0.0)
    p = np.where(y >= 0, np.where(x >= 0, f, 2 - f), np.where(x < 0, 2 + f, 4 - f))
    return np.where(p >= 4, 0.0, p)


@numba.njit(cache=True, nogil=True)
def _mark_bins(lo, hi, a0, a1, full, entry):  # pragma: no cover - compiled
    """(ELEVATION_BINS, AZIMUTH_BINS) float64: per bin, the least ``entry[i]`` (m) of the spheres
    ``i`` that mark it (rows ``lo[i]..hi[i]`` by columns ``a0[i]..a1[i]`` taken modulo the column
    count, or whole rows where ``full[i]``); ``inf`` where no sphere does."""
    near = np.full((ELEVATION_BINS, AZIMUTH_BINS), np.inf)
    for i in range(lo.shape[0]):
        whole = full[i] or a1[i] - a0[i] + 1 >= AZIMUTH_BINS
        for r in range(lo[i], hi[i] + 1):
            for c in range(0, AZIMUTH_BINS) if whole else range(a0[i], a1[i] + 1):
                c %= AZIMUTH_BINS
                near[r, c] = min(near[r, c], entry[i])
    return near


_CULL_BLOCK = 1024  #: rays per block of :func:`_rays_in_bins` (three float32 columns of this length stay in L1)


@numba.njit(cache=True, nogil=True)
def _rays_in_bins(d, near, reach):  # pragma: no cover - compiled
    """Ascending indices of the unit directions (n, 3) float32 whose (sin elevation, pseudo-azimuth)
    bin has an entry distance ``near`` (m) within the ray's ``reach`` (n,) (m): the binning of
    :func:`cone_candidates`, in float32 (a bin may be off by one at its edges, which the one-bin
    padding of the marks covers).  Blocks of rays are first split into x, y, z columns so the
    binning loop compiles to SIMD code."""
    n = d.shape[0]
    flat = near.ravel()
    out = np.empty(n + 1, np.int64)
    xs, ys, zs = np.empty(_CULL_BLOCK, np.float32), np.empty(_CULL_BLOCK, np.float32), np.empty(_CULL_BLOCK, np.float32)
    cell = np.empty(_CULL_BLOCK, np.int32)
    k = 0
    for s in range(0, n, _CULL_BLOCK):
        m = min(_CULL_BLOCK, n - s)
        for i in range(m):
            xs[i], ys[i], zs[i] = d[s + i, 0], d[s + i, 1], d[s + i, 2]
        _bin_block(xs, ys, zs, cell, m)
        for i in range(m):                      # branch-free append: write, then advance if reachable
            out[k] = s + i
            k += (flat[cell[i]] < np.inf) & (reach[s + i] >= flat[cell[i]])
    return out[:k]


@numba.njit(cache=True, nogil=True)
def _bin_block(x, y, z, cell, m):  # pragma: no cover - compiled
    """Flat bin index ``row * AZIMUTH_BINS + column`` of the first ``m`` unit directions (x, y, z)
    float32; the pseudo-azimuth of :func:`_pseudo_azimuth` written without branches."""
    one, two, four = np.float32(1.0), np.float32(2.0), np.float32(4.0)
    z_scale, az_scale = np.float32(ELEVATION_BINS / 2), np.float32(AZIMUTH_BINS / 4)
    tiny = np.float32(1e-30)
    for i in range(m):
        row = min(max(np.int32((z[i] + one) * z_scale), 0), ELEVATION_BINS - 1)
        f = abs(y[i]) / max(abs(x[i]) + abs(y[i]), tiny)
        west, south = np.float32(x[i] < 0), np.float32(y[i] < 0)
        offset = two * west + four * south * (one - west)          # 0, 2, 2, 4 for quadrants 1..4
        sign = one - two * (west + south - two * west * south)     # +1, -1, +1, -1
        col = min(np.int32((offset + sign * f) * az_scale), AZIMUTH_BINS - 1)
        cell[i] = row * AZIMUTH_BINS + col


@numba.njit(cache=True, nogil=True)
def _origin_runs(o, max_runs):  # pragma: no cover - compiled
    """Boundaries ``[0, s1, ..., n]`` (int64) of the runs of equal rows of the (n, 3) float32
    origins, or an empty array as soon as there are more than ``max_runs`` runs."""
    n = o.shape[0]
    starts = np.empty(max_runs + 1, np.int64)
    starts[0] = 0
    runs = 1
    for i in range(1, n):
        if o[i, 0] != o[i - 1, 0] or o[i, 1] != o[i - 1, 1] or o[i, 2] != o[i - 1, 2]:
            if runs == max_runs:
                return starts[:0]
            starts[runs] = i
            runs += 1
    starts[runs] = n
    return starts[:runs + 1]
