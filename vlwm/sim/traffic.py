"""Dynamic traffic: cars, buses and trucks on roads, pedestrians on sidewalks, drones in the air.

Every actor follows a closed route planned once, at construction, from one seeded
``np.random.default_rng(config.seed)``; its state at time ``t`` (seconds) is then a pure function
of ``t``: the arc length ``s(t) = s0 + v t + (v k / w) sin(w t + phi)`` along the route (speed
``v (1 + k cos(w t + phi))``, never below ``v (1 - k)``), wrapped around the loop.  Sensors and
occupancy ground truth may therefore query any time, in any order, and agree.

Frames and units: the scene's local ENU frame (x east, y north, z up), metres, seconds, radians.
An actor's *body frame* has x forward, y left, z up, origin at the bottom centre of its box; its
``yaw`` is the heading of body x, counter-clockwise from east.

The routes (vehicles looping the road graph in their lane, pedestrians pacing a sidewalk, drones
circling above everything, none entering a building) are drawn by
:class:`vlwm.sim.traffic_routes.RoutePlanner`; this module turns them into actors and states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vlwm.labels import CityClass
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.sim.traffic_routes import RoutePlanner
from vlwm.world.builder import box_mesh, cylinder_mesh
from vlwm.world.scene import Scene

SPREAD_TRIES = 20           #: start-position draws per actor to keep clear of others at t = 0


@dataclass(frozen=True)
class ActorSpec:
    """One moving object.

    Attributes
    ----------
    instance : int
        Global instance id: the scene's instances come first, actors follow
        (``len(scene.instance_names) + actor index``).
    name : str
        Stable name, ``car_0003``, ``pedestrian_0012``, ...
    semantic : CityClass
        CAR, BUS, TRUCK, PEDESTRIAN or DRONE.
    size : (3,) float
        Box (length, width, height), metres, body frame.
    """

    instance: int
    name: str
    semantic: CityClass
    size: tuple[float, float, float]


class ActorStates(NamedTuple):
    """All actors at one time (one row per actor, in ``Traffic.actors`` order).

    time : float, seconds.
    position : (A, 3) float64, bottom centre of each box, local ENU metres.
    yaw : (A,) float64, heading of body x, rad counter-clockwise from east, in (-pi, pi].
    velocity : (A, 3) float64, m/s, world frame.
    """

    time: float
    position: np.ndarray
    yaw: np.ndarray
    velocity: np.ndarray


class Traffic:
    """The actors of one scene and their time-stamped states."""

    def __init__(self, scene: Scene, config: TrafficConfig = TrafficConfig()):
        self.config = config
        self.first_instance = len(scene.instance_names)
        planner = RoutePlanner(scene, config)
        cfg, rng = config, planner.rng
        kinds = [(CityClass.CAR, "car", cfg.cars, cfg.car_size, cfg.car_speed),
                 (CityClass.BUS, "bus", cfg.buses, cfg.bus_size, cfg.bus_speed),
                 (CityClass.TRUCK, "truck", cfg.trucks, cfg.truck_size, cfg.truck_speed),
                 (CityClass.PEDESTRIAN, "pedestrian", cfg.pedestrians, cfg.pedestrian_size, cfg.pedestrian_speed),
                 (CityClass.DRONE, "drone", cfg.drones, cfg.drone_size, cfg.drone_speed)]
        actors, routes, motion = [], [], []
        for semantic, prefix, count, size, speed in kinds:
            for k in range(count):
                name = f"{prefix}_{k:04d}"
                routes.append(planner.route(semantic, tuple(map(float, size)), name))
                actors.append(ActorSpec(self.first_instance + len(actors), name, semantic, tuple(map(float, size))))
                v = rng.uniform(*speed)
                w = 2 * np.pi / rng.uniform(*cfg.speed_period)
                motion.append([0.0, v, v * cfg.speed_variation / w, w, rng.uniform(0, 2 * np.pi)])
        self.actors: tuple[ActorSpec, ...] = tuple(actors)
        self.routes: tuple[np.ndarray, ...] = tuple(routes)
        """Closed route of each actor: (K+1, 3) float64 polyline of bottom-centre positions, last = first."""
        self._pack(np.array(motion, np.float64).reshape(-1, 5))
        self._spread(rng)
        self._build_templates()

    # ------------------------------------------------------------------ queries

    def states(self, t: float) -> ActorStates:
        """Positions, headings and velocities of every actor at time ``t`` (s)."""
        t = float(t)
        s0, v, amp, w, phi = self._motion.T
        s = np.mod(s0 + v * t + amp * np.sin(w * t + phi), self._length)
        speed = v + amp * w * np.cos(w * t + phi)
        seg = np.searchsorted(self._cum, self._base + s, side="right") - 1
        seg = np.clip(seg, self._first_seg, self._last_seg)
        frac = (self._base + s - self._cum[seg])[:, None]
        position = self._points[seg] + frac * self._unit[seg]
        return ActorStates(t, position, self._yaw[seg].copy(), self._unit[seg] * speed[:, None])

    def boxes(self, t: float) -> np.ndarray:
        """(A, 8, 3) float64 box corners at ``t``, local ENU: bottom four counter-clockwise from
        rear-right (as :func:`vlwm.world.builder.box_mesh`), then the top four above them."""
        st = self.states(t)
        size = self._sizes
        x = np.array([-1, 1, 1, -1, -1, 1, 1, -1]) * size[:, :1] / 2
        y = np.array([-1, -1, 1, 1, -1, -1, 1, 1]) * size[:, 1:2] / 2
        z = np.array([0, 0, 0, 0, 1, 1, 1, 1]) * size[:, 2:3]
        c, s = np.cos(st.yaw)[:, None], np.sin(st.yaw)[:, None]
        return np.stack([c * x - s * y, s * x + c * y, z], -1) + st.position[:, None, :]

    def meshes(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Triangles of every actor at ``t``.

        Returns
        -------
        vertices : (V, 3) float32, local ENU metres.
        faces : (F, 3) int32, wound outwards; the same for every ``t``.
        semantics : (F,) uint8 :class:`CityClass` per triangle.
        instances : (F,) int32 global instance id per triangle.
        """
        st = self.states(t)
        a = self._vertex_actor
        c, s = np.cos(st.yaw)[a], np.sin(st.yaw)[a]
        x, y, z = self._body_vertices.T
        v = np.stack([c * x - s * y, s * x + c * y, z], 1) + st.position[a]
        return v.astype(np.float32), self._faces, self._face_semantics, self._face_instances

    # ------------------------------------------------------------------ construction

    def _pack(self, motion: np.ndarray) -> None:
        """Concatenate the routes' segments for vectorised lookup by arc length."""
        cum, points, unit, yaw, first, last, base, length = [], [], [], [], [], [], [], []
        offset, count = 0.0, 0
        for r in self.routes:
            d = np.diff(r, axis=0)
            seglen = np.linalg.norm(d, axis=1)
            c = np.concatenate([[0.0], np.cumsum(seglen)[:-1]])
            cum.append(c + offset)
            points.append(r[:-1])
            unit.append(d / seglen[:, None])
            yaw.append(np.arctan2(d[:, 1], d[:, 0]))
            first.append(count)
            last.append(count + len(d) - 1)
            base.append(offset)
            length.append(seglen.sum())
            offset += seglen.sum() + 1.0
            count += len(d)
        empty = np.zeros((0, 3))
        self._cum = np.concatenate(cum) if cum else np.zeros(0)
        self._points = np.concatenate(points) if points else empty
        self._unit = np.concatenate(unit) if unit else empty
        self._yaw = np.concatenate(yaw) if yaw else np.zeros(0)
        self._first_seg, self._last_seg = np.array(first, np.intp), np.array(last, np.intp)
        self._base, self._length = np.array(base), np.array(length)
        self._motion = motion
        self._sizes = np.array([a.size for a in self.actors], np.float64).reshape(-1, 3)

    def _spread(self, rng: np.random.Generator) -> None:
        """Draw each actor's start point on its route, redrawing (best effort, ``SPREAD_TRIES``)
        while its footprint disc meets an earlier actor's at ``t = 0``."""
        radius = np.hypot(self._sizes[:, 0], self._sizes[:, 1]) / 2
        for i in range(len(self.actors)):
            for _ in range(SPREAD_TRIES):
                self._motion[i, 0] = rng.uniform(0, self._length[i]) - self._motion[i, 2] * np.sin(self._motion[i, 4])
                p = self.states(0.0).position
                near = np.linalg.norm(p[:i, :2] - p[i, :2], axis=1) < radius[:i] + radius[i]
                near &= np.abs(p[:i, 2] - p[i, 2]) < np.maximum(self._sizes[:i, 2], self._sizes[i, 2])
                if not near.any():
                    break

    def _build_templates(self) -> None:
        """Body-frame meshes of every actor, concatenated once (only the vertices move)."""
        verts, faces, sem, inst, owner = [], [], [], [], []
        n = 0
        for i, a in enumerate(self.actors):
            v, f = _body_mesh(a.semantic, a.size)
            verts.append(v)
            faces.append(f + n)
            sem.append(np.full(len(f), a.semantic, np.uint8))
            inst.append(np.full(len(f), a.instance, np.int32))
            owner.append(np.full(len(v), i, np.intp))
            n += len(v)
        self._body_vertices = np.concatenate(verts) if verts else np.zeros((0, 3))
        self._faces = (np.concatenate(faces) if faces else np.zeros((0, 3))).astype(np.int32)
        self._face_semantics = np.concatenate(sem) if sem else np.zeros(0, np.uint8)
        self._face_instances = np.concatenate(inst) if inst else np.zeros(0, np.int32)
        self._vertex_actor = np.concatenate(owner) if owner else np.zeros(0, np.intp)


def _body_mesh(semantic: CityClass, size) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame mesh (vertices (v, 3), faces (f, 3)) inside the box ``size`` standing on the origin."""
    l, w, h = size
    if semantic == CityClass.PEDESTRIAN:
        return cylinder_mesh((0, 0, 0), min(l, w) / 2, h, segments=8)
    if semantic != CityClass.DRONE:
        return box_mesh((0, 0, 0), size)
    arm_w = 0.08 * min(l, w)
    arm_l = np.sqrt(2) * min(l, w) - arm_w               # diagonal arms that stay inside the box
    rl, rw = 0.25 * l, 0.25 * w
    parts = [box_mesh((0, 0, 0), (0.4 * l, 0.4 * w, 0.6 * h)),
             box_mesh((0, 0, 0.4 * h), (arm_l, arm_w, 0.2 * h), np.pi / 4),
             box_mesh((0, 0, 0.4 * h), (arm_l, arm_w, 0.2 * h), -np.pi / 4)]
    parts += [box_mesh((sx * (l - rl) / 2, sy * (w - rw) / 2, 0.85 * h), (rl, rw, 0.15 * h))
              for sx in (-1, 1) for sy in (-1, 1)]
    v = np.concatenate([p[0] for p in parts])
    f = np.concatenate([p[1] + 8 * k for k, p in enumerate(parts)])
    return v, f
