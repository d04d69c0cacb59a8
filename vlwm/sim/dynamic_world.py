"""The static scene plus traffic at a time ``t``: one ray caster over both.

Rays are cast twice and the nearer hit kept: once against the scene's cached tracer, once
against a small tracer built over the actors' triangles at ``t`` (a few thousand triangles;
rebuilt when ``t`` changes, about a millisecond with Embree), limited to the static hit
distance so only actors in front of the scene count.  When all rays share one origin (a lidar
sweep, a camera) only those whose direction falls in an angular bin touched by some actor's
bounding sphere take the second cast (:func:`cone_candidates`): most rays see no actor.

Hits on actors follow :class:`vlwm.world.scene.RayHits` with two conventions:

* ``triangle`` is ``scene.num_triangles + k`` where ``k`` indexes the triangles of
  ``traffic.meshes(t)`` (so ``triangle >= num_static_triangles`` marks an actor hit);
* ``instance`` is the actor's global instance id (``ActorSpec.instance``), an index into
  :attr:`DynamicWorld.instance_names`, which lists the scene's instances then the actors.

Frames and units as the scene: local ENU, metres; ``t`` in seconds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vlwm.sim.traffic import Traffic
from vlwm.world.raycast import Tracer, make_tracer, normalize_directions
from vlwm.world.scene import Caster, RayHits, Scene


ELEVATION_BINS, AZIMUTH_BINS = 180, 360  #: grid of the shared-origin ray cull: sin(elevation) x azimuth


class _ActorLayer(NamedTuple):
    """The actors' triangles at one time, ready to cast against."""

    time: float
    backend: str
    tracer: Tracer
    semantics: np.ndarray   # (Fa,) uint8 CityClass
    instances: np.ndarray   # (Fa,) int32 global instance ids
    normals: np.ndarray     # (Fa, 3) float32 unit outward normals, local ENU
    centres: np.ndarray     # (A, 3) float64 actor box centres, local ENU
    radii: np.ndarray       # (A,) float64 radius (m) of a sphere around each actor's box


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
        """The actors' tracer at ``t``, rebuilt only when ``t`` or ``backend`` changes."""
        if self.traffic is None or not self.traffic.actors:
            return None
        if self._layer is None or self._layer.time != t or self._layer.backend != backend:
            v, f, sem, inst = self.traffic.meshes(t)
            tri = v[f].astype(np.float64)
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            size = np.array([a.size for a in self.traffic.actors], np.float64)
            centres = self.traffic.states(t).position + size * [0, 0, 0.5]
            radii = np.linalg.norm(size, axis=1) / 2 + 1e-3
            self._layer = _ActorLayer(t, backend, make_tracer(v, f, backend), sem, inst, n.astype(np.float32),
                                      centres, radii)
        return self._layer

    def _cast(self, origins, directions, max_range, backend: str, layer: _ActorLayer | None) -> RayHits:
        scene = self.scene
        o = np.ascontiguousarray(origins, dtype=np.float32).reshape(-1, 3)
        d = normalize_directions(np.asarray(directions).reshape(-1, 3))
        if len(o) != len(d):
            raise ValueError(f"{len(o)} origins but {len(d)} directions")
        distance, triangle = scene.tracer(backend).intersect(o, d, max_range)
        hits = scene.describe_hits(distance, triangle, d)
        if layer is None:
            return hits
        # Only actors in front of the scene count: limit the second cast to the static distance.
        limit = np.minimum(np.broadcast_to(np.asarray(max_range, np.float64), distance.shape), distance)
        shared = len(o) > 0 and bool(np.all(o == o[0]))
        rays = cone_candidates(o[0], d, layer.centres, layer.radii) if shared else None
        if rays is None:
            a_dist, a_tri = layer.tracer.intersect(o, d, limit)
            rays = np.arange(len(o))
        else:
            a_dist, a_tri = layer.tracer.intersect(o[rays], d[rays], limit[rays])
        hit = a_tri >= 0
        k, a_dist, j = rays[hit], a_dist[hit], a_tri[hit]
        if not len(k):
            return hits
        sem = layer.semantics[j]
        normal = layer.normals[j]
        normal[np.einsum("ij,ij->i", normal, d[k]) > 0] *= -1
        hits.distance[k] = a_dist
        hits.triangle[k] = scene.num_triangles + j
        hits.semantic[k] = sem
        hits.cls[k] = scene.label_map.table[sem]
        hits.instance[k] = layer.instances[j]
        hits.normal[k] = normal
        return hits


def cone_candidates(origin: np.ndarray, directions: np.ndarray, centres: np.ndarray,
                    radii: np.ndarray) -> np.ndarray | None:
    """Indices of the rays from one ``origin`` that may meet one of the spheres, or ``None`` (all).

    A conservative cull on a grid of ``ELEVATION_BINS`` bins of ``sin(elevation)`` (the
    direction's z) by ``AZIMUTH_BINS`` bins of azimuth: each sphere marks the bins its angular
    disc touches, padded by one bin; a ray is a candidate if its bin is marked.

    Parameters
    ----------
    origin : (3,) float
        The rays' common origin, local ENU metres.
    directions : (n, 3) float32
        Unit ray directions.
    centres : (A, 3) float, radii : (A,) float
        Bounding spheres, metres.

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
    z_scale, az_scale = ELEVATION_BINS / 2, AZIMUTH_BINS / (2 * np.pi)
    lo = np.floor((np.sin(np.maximum(el - half, -np.pi / 2)) + 1) * z_scale).astype(int) - 1
    hi = np.floor((np.sin(np.minimum(el + half, np.pi / 2)) + 1) * z_scale).astype(int) + 1
    lo, hi = np.clip(lo, 0, ELEVATION_BINS - 1), np.clip(hi, 0, ELEVATION_BINS - 1)
    polar = np.abs(el) + half >= np.pi / 2 - 1e-3                    # the disc reaches a pole
    rim = np.cos(np.minimum(np.abs(el) + half, np.pi / 2 - 1e-3))
    spread = np.arcsin(np.minimum(1.0, np.sin(half) / rim))          # azimuth half-width, conservative
    a0 = np.floor((az - spread + np.pi) * az_scale).astype(int) - 1
    a1 = np.floor((az + spread + np.pi) * az_scale).astype(int) + 1
    full = polar | (a1 - a0 + 1 >= AZIMUTH_BINS)
    mask = np.zeros((ELEVATION_BINS, AZIMUTH_BINS), bool)
    for i in range(len(v)):
        rows = slice(lo[i], hi[i] + 1)
        s0, s1 = a0[i] % AZIMUTH_BINS, a1[i] % AZIMUTH_BINS
        if full[i]:
            mask[rows] = True
        elif s0 <= s1:
            mask[rows, s0:s1 + 1] = True
        else:                                                        # wraps past +-180 deg
            mask[rows, s0:] = True
            mask[rows, :s1 + 1] = True
    d = np.asarray(directions, np.float32)
    ray_z = np.minimum(((d[:, 2] + 1) * z_scale).astype(np.intp), ELEVATION_BINS - 1)
    ray_az = np.minimum(((np.arctan2(d[:, 1], d[:, 0]) + np.pi) * az_scale).astype(np.intp), AZIMUTH_BINS - 1)
    return np.flatnonzero(mask[ray_z, ray_az])
