"""The lidar-through-traffic path as it was before the compiled kernels (commit ab16b95), frozen
here so ``bench_raycast.py --section traffic`` can time old and new side by side in one run.

Not used by the package.  It repeats, operation for operation, the former ``lidar.scan``,
``DynamicWorld._cast`` / ``_actor_layer``, ``cone_candidates``, ``EmbreeTracer.intersect`` and
``normalize_directions`` (numpy whole-array code, an arctangent per ray for the cull, the actors'
tracer and every actor triangle's normal rebuilt per time step), so its points are byte-identical
to the new path's (the benchmark checks this).
"""

from __future__ import annotations

import functools

import numpy as np

from vlwm.io.frames import rotate_vectors
from vlwm.io.recording import LIDAR_COLUMNS
from vlwm.sim.lidar import REFLECTIVITY, sweep_pattern

ELEVATION_BINS, AZIMUTH_BINS = 180, 360


class EmbreeTracerBefore:
    """Embree scene over a mesh; origins copied to a contiguous array, hits post-processed in numpy."""

    def __init__(self, vertices, faces):
        from embreex import mesh_construction, rtcore_scene

        self._scene = rtcore_scene.EmbreeScene()
        mesh_construction.TriangleMesh(self._scene, np.ascontiguousarray(vertices, dtype=np.float32),
                                       np.ascontiguousarray(faces, dtype=np.int32))

    def intersect(self, origins, directions, max_range):
        n = len(origins)
        o = np.ascontiguousarray(origins, dtype=np.float32)
        d = np.ascontiguousarray(directions, dtype=np.float32)
        if np.ndim(max_range) == 0:
            tfar = np.full(n, min(float(max_range), 1e37), dtype=np.float32)
        else:
            tfar = np.minimum(np.asarray(max_range, dtype=np.float64), 1e37).astype(np.float32)
        out = self._scene.run(o, d, dists=tfar, output=1)
        prim = out["primID"]
        return np.where(prim >= 0, out["tfar"], np.float32(np.inf)), prim.astype(np.int64)


def normalize_before(directions):
    d = np.ascontiguousarray(directions, dtype=np.float32)
    sq = np.einsum("ij,ij->i", d, d)
    if not ((sq > 0) & np.isfinite(sq)).all():
        raise ValueError("zero or non-finite direction")
    return d if np.abs(sq - 1).max(initial=0.0) < 1e-6 else d / np.sqrt(sq)[:, None]


def cone_candidates_before(origin, directions, centres, radii):
    v = np.asarray(centres, np.float64) - np.asarray(origin, np.float64)
    dist = np.linalg.norm(v, axis=1)
    if np.any(dist <= radii):
        return None
    half = np.arcsin(radii / dist)
    el = np.arcsin(np.clip(v[:, 2] / dist, -1, 1))
    az = np.arctan2(v[:, 1], v[:, 0])
    z_scale, az_scale = ELEVATION_BINS / 2, AZIMUTH_BINS / (2 * np.pi)
    lo = np.floor((np.sin(np.maximum(el - half, -np.pi / 2)) + 1) * z_scale).astype(int) - 1
    hi = np.floor((np.sin(np.minimum(el + half, np.pi / 2)) + 1) * z_scale).astype(int) + 1
    lo, hi = np.clip(lo, 0, ELEVATION_BINS - 1), np.clip(hi, 0, ELEVATION_BINS - 1)
    polar = np.abs(el) + half >= np.pi / 2 - 1e-3
    rim = np.cos(np.minimum(np.abs(el) + half, np.pi / 2 - 1e-3))
    spread = np.arcsin(np.minimum(1.0, np.sin(half) / rim))
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
        else:
            mask[rows, s0:] = True
            mask[rows, :s1 + 1] = True
    d = np.asarray(directions, np.float32)
    ray_z = np.minimum(((d[:, 2] + 1) * z_scale).astype(np.intp), ELEVATION_BINS - 1)
    ray_az = np.minimum(((np.arctan2(d[:, 1], d[:, 0]) + np.pi) * az_scale).astype(np.intp), AZIMUTH_BINS - 1)
    return np.flatnonzero(mask[ray_z, ray_az])


class WorldBefore:
    """Scene plus traffic, cast twice per ray bundle, the actors' layer rebuilt for every new time."""

    def __init__(self, scene, traffic):
        self.scene, self.traffic = scene, traffic
        self.static = EmbreeTracerBefore(scene.vertices, scene.faces)
        self._layer = None

    def caster(self, t):
        layer = self._actor_layer(float(t))
        return lambda origins, directions, max_range=np.inf: self._cast(origins, directions, max_range, layer)

    def _actor_layer(self, t):
        if self._layer is None or self._layer[0] != t:
            v, f, sem, inst = self.traffic.meshes(t)
            tri = v[f].astype(np.float64)
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            size = np.array([a.size for a in self.traffic.actors], np.float64)
            centres = self.traffic.states(t).position + size * [0, 0, 0.5]
            radii = np.linalg.norm(size, axis=1) / 2 + 1e-3
            self._layer = (t, EmbreeTracerBefore(v, f), sem, inst, n.astype(np.float32), centres, radii)
        return self._layer

    def _cast(self, origins, directions, max_range, layer):
        scene = self.scene
        _, tracer, semantics, instances, normals, centres, radii = layer
        o = np.ascontiguousarray(origins, dtype=np.float32).reshape(-1, 3)
        d = normalize_before(np.asarray(directions).reshape(-1, 3))
        distance, triangle = self.static.intersect(o, d, max_range)
        hits = scene.describe_hits(distance, triangle, d)
        limit = np.minimum(np.broadcast_to(np.asarray(max_range, np.float64), distance.shape), distance)
        shared = len(o) > 0 and bool(np.all(o == o[0]))
        rays = cone_candidates_before(o[0], d, centres, radii) if shared else None
        if rays is None:
            a_dist, a_tri = tracer.intersect(o, d, limit)
            rays = np.arange(len(o))
        else:
            a_dist, a_tri = tracer.intersect(o[rays], d[rays], limit[rays])
        hit = a_tri >= 0
        k, a_dist, j = rays[hit], a_dist[hit], a_tri[hit]
        if not len(k):
            return hits
        sem = semantics[j]
        normal = normals[j]
        normal[np.einsum("ij,ij->i", normal, d[k]) > 0] *= -1
        hits.distance[k] = a_dist
        hits.triangle[k] = scene.num_triangles + j
        hits.semantic[k] = sem
        hits.cls[k] = scene.label_map.table[sem]
        hits.instance[k] = instances[j]
        hits.normal[k] = normal
        return hits


@functools.lru_cache(maxsize=4)
def _columns(config):
    """(3, n) float32 sweep directions, transposed: cached with the sweep pattern, as before."""
    return np.ascontiguousarray(sweep_pattern(config)[0].T)


def scan_before(caster, pose, config):
    """The former ``lidar.scan`` without noise: numpy rotation, masks, gathers and column writes."""
    d_sensor, ring, t = sweep_pattern(config)
    d_xyz = _columns(config)
    T_world_sensor = pose.matrix() @ config.T_body_sensor()
    d_world = rotate_vectors(T_world_sensor[:3, :3].astype(np.float32), d_sensor)
    origins = np.broadcast_to(T_world_sensor[:3, 3].astype(np.float32), d_world.shape)
    hits = caster(origins, d_world, config.max_range)
    r = hits.distance
    keep = np.flatnonzero((hits.triangle >= 0) & (r >= config.min_range) & (r <= config.max_range))
    r = r[keep]
    cos_inc = np.abs(np.einsum("ij,ij->i", hits.normal, d_world))[keep]
    intensity = np.minimum(REFLECTIVITY[hits.semantic[keep]] * cos_inc, np.float32(1.0))
    out = np.empty((len(keep), len(LIDAR_COLUMNS)), dtype=np.float32)
    for c in range(3):
        out[:, c] = d_xyz[c][keep] * r
    out[:, 3] = intensity
    out[:, 4] = hits.cls[keep]
    out[:, 5] = hits.instance[keep]
    out[:, 6] = ring[keep]
    out[:, 7] = t[keep]
    return out
