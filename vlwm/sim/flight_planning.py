"""Drone legs that keep clear of the scene: checking and re-planning a mission's flight path.

:func:`check_and_plan_drone_path` first expands mission items into explicit primitives —
vertical ``takeoff`` climbs, straight ``waypoint`` legs, vertical ``land`` descents (``rtl``
becomes climb, cross, land at home).  Every leg is then tested against the scene by casting a
bundle of parallel rays along it (the centre line and a ring offset by the clearance).  A
blocked leg is **re-planned**: the drone climbs at the leg's start to ``clearance`` above the
highest surface under the leg's corridor, crosses, and descends at its end (or stays up if the
end is too close to the obstacle).  A waypoint that is inside, under or within
``vertical_clearance`` of an obstacle is **lifted** above it.  A leg is **rejected**
(:class:`PlanningError`) when the detour or lift would exceed ``max_altitude`` or a takeoff or
landing column is blocked; the error names the leg and its mission items.  Every re-plan is
reported (:class:`Detour`).

Frames and units: the scene's local ENU frame (x east, y north, z up), metres, radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from vlwm.sim.mission_types import Waypoint
from vlwm.sim.planning_errors import PlanningError, fmt_point
from vlwm.world.scene import Scene

#: Japan's Civil Aeronautics Act requires permission above 150 m over the ground: the default ceiling.
MAX_ALTITUDE_M = 150.0
#: Rays start this far above a surface the drone stands on, so the ground under it is not a hit.
LIFT_OFF_SURFACE_M = 0.3
#: Height above the touchdown surface below which a landing column's ring rays stop looking.
LAND_CHECK_STOP_M = 0.5
#: Points closer than this (m) count as the same place (no leg between them).
SAME_POINT_M = 0.05
#: A leg whose horizontal extent is below this (m) is vertical: checked with the vertical clearance.
VERTICAL_LEG_M = 0.5
#: Directions of the ring of offset rays around a leg.
RING_RAYS = 8
#: Takeoff sites are on the ground: at most this far (m) above the terrain (kerbs, plazas).
GROUND_SITE_TOLERANCE_M = 1.0
#: Sky height (m) above the scene's top from which obstacle tops are sampled by downward rays.
SKY_MARGIN_M = 10.0


# ---------------------------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannerConfig:
    """How the drone planner checks and re-plans legs."""

    clearance: float = 5.0
    """Least distance (m) kept between a cruising leg and any surface (ring of offset rays)."""
    vertical_clearance: float = 2.0
    """Clearance (m) of vertical legs (takeoff, landing, detour climbs and descents): these are
    flown slowly and precisely, often beside the buildings they avoid."""
    max_altitude: float = MAX_ALTITUDE_M
    """Ceiling (m above the home ground); a detour or waypoint above it is rejected."""
    body_radius: float = 0.5
    """Drone radius (m) including propellers; added to every clearance."""
    rtl_altitude: float = 30.0
    """Return-to-launch altitude (m above home; ArduPilot's RTL_ALT), or the current one if higher."""
    cruise_margin: float = 1.0
    """Extra height (m) of a detour above ``obstacle top + clearance``."""
    sample_spacing: float = 1.0
    """Spacing (m) of the downward rays that find the obstacle top under a blocked leg."""

    def __post_init__(self):
        for name in ("clearance", "vertical_clearance", "max_altitude", "rtl_altitude", "sample_spacing"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PlannerConfig.{name} must be positive, got {getattr(self, name)}")
        if self.body_radius < 0 or self.cruise_margin < 0:
            raise ValueError("PlannerConfig.body_radius and cruise_margin must not be negative")


@dataclass(frozen=True)
class Detour:
    """One blocked leg and the climb/cross/descend that replaced it (or, with ``start == end``,
    one waypoint too close to an obstacle, lifted above it).

    ``leg`` is the index of the mission item the leg ends at; ``start``/``end`` (3,) the leg's
    endpoints (local ENU m); ``obstacle_top`` the highest surface (local z, m) under its
    corridor; ``cruise_z`` the height (local z, m) of the crossing; ``lifted`` whether the end
    waypoint itself was too close to the obstacle to descend to and stays at ``cruise_z``.
    """

    leg: int
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    obstacle_top: float
    cruise_z: float
    lifted: bool = False

    def describe(self) -> str:
        if self.start == self.end:
            return (f"item {self.leg} at {fmt_point(self.start)} was too close to an obstacle (top z="
                    f"{self.obstacle_top:.1f} m) and was lifted to z={self.cruise_z:.1f} m")
        how = (f"; the waypoint itself is too close to the obstacle and was lifted to z={self.cruise_z:.1f} m"
               if self.lifted else "")
        return (f"leg to item {self.leg} {fmt_point(self.start)} -> {fmt_point(self.end)} was blocked; "
                f"re-planned over the obstacle (top z={self.obstacle_top:.1f} m) at z={self.cruise_z:.1f} m{how}")


@dataclass(frozen=True)
class FlightPlan:
    """What the drone flies: explicit primitives with the mission item each came from.

    waypoints : commands 'takeoff' (vertical climb from the previous point), 'waypoint'
        (straight leg, then ``hold_s``) and 'land' (vertical descent to the surface below).
    source : index of the mission item each planned waypoint came from.
    detours : legs re-planned above obstacles (the report).
    """

    waypoints: tuple[Waypoint, ...]
    source: tuple[int, ...]
    detours: tuple[Detour, ...]

    def summary(self) -> str:
        head = f"{len(self.waypoints)} planned waypoints, {len(self.detours)} re-planned legs"
        return "\n".join([head] + [d.describe() for d in self.detours])


# ---------------------------------------------------------------------------------------------
# Scene queries
# ---------------------------------------------------------------------------------------------


def surface_below(scene: Scene, xyz) -> float:
    """Height (local z, m) of the first surface below ``xyz`` (3,), or the terrain where no triangle is."""
    p = np.asarray(xyz, np.float64)
    origin = p + [0.0, 0.0, LIFT_OFF_SURFACE_M]
    hits = scene.cast(origin[None], np.array([[0.0, 0.0, -1.0]]))
    ground = float(scene.ground_height(p[0], p[1]))
    if hits.hit[0]:
        return max(float(origin[2] - hits.distance[0]), ground)
    return ground


def _ring_offsets(direction: np.ndarray, radius: float, down: float) -> np.ndarray:
    """(1 + RING_RAYS, 3) offsets: the centre and a ring around ``direction`` (unit), radius
    ``radius`` sideways and up, ``down`` downwards."""
    h = math.hypot(direction[0], direction[1])
    if h < 1e-6:  # vertical leg: a horizontal ring
        n1, n2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        scale_down = radius
    else:
        n1 = np.array([-direction[1] / h, direction[0] / h, 0.0])
        n2 = np.cross(direction, n1)
        n2 = n2 if n2[2] >= 0 else -n2
        scale_down = down
    ang = np.arange(RING_RAYS) * (2 * np.pi / RING_RAYS)
    c, s = np.cos(ang), np.sin(ang)
    vert = np.where(s > 0, radius, scale_down) * s
    ring = c[:, None] * radius * n1 + vert[:, None] * n2
    return np.concatenate([np.zeros((1, 3)), ring])


def point_is_clear(scene: Scene, p, radius: float) -> bool:
    """Whether nothing lies within ``radius`` m sideways of ``p`` (3,) (a ring of horizontal rays)
    and nothing at all above it (so a point inside a building or under a roof is not clear; the
    ground below a low waypoint is not an obstacle)."""
    p = np.asarray(p, np.float64)
    ang = np.arange(RING_RAYS) * (2 * np.pi / RING_RAYS)
    dirs = np.concatenate([np.column_stack([np.cos(ang), np.sin(ang), np.zeros(RING_RAYS)]), [[0.0, 0.0, 1.0]]])
    hits = scene.cast(np.broadcast_to(p, dirs.shape), dirs, max_range=np.r_[np.full(RING_RAYS, radius), np.inf])
    return not bool(hits.hit.any())


def leg_is_clear(scene: Scene, a, b, radius: float, down: float | None = None) -> bool:
    """Whether the straight leg ``a`` -> ``b`` (3,) keeps ``radius`` m from every surface
    (``down`` m below it; ``radius`` if None), tested with parallel rays along the leg."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = b - a
    length = float(np.linalg.norm(d))
    if length < SAME_POINT_M:
        return True
    u = d / length
    off = _ring_offsets(u, radius, radius if down is None else down)
    hits = scene.cast(a + off, np.broadcast_to(u, off.shape), max_range=length)
    return not bool(hits.hit.any())


def obstacle_top(scene: Scene, a, b, half_width: float, spacing: float) -> float:
    """Highest surface (local z, m) under the corridor of half width ``half_width`` around the
    horizontal projection of ``a`` -> ``b``, found by downward rays every ``spacing`` m."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dh = (b - a)[:2]
    length = float(np.linalg.norm(dh))
    n_along = max(2, int(math.ceil(length / spacing)) + 1)
    n_across = max(3, int(math.ceil(2 * half_width / spacing)) + 1)
    t = np.linspace(0.0, 1.0, n_along)
    side = np.array([-dh[1], dh[0]]) / length if length > 1e-9 else np.array([1.0, 0.0])
    w = np.linspace(-half_width, half_width, n_across)
    xy = a[:2] + t[:, None, None] * dh + w[None, :, None] * side          # (along, across, 2)
    if length <= 1e-9:  # a point: sample a square around it
        xy = a[:2] + np.stack(np.meshgrid(w, w, indexing="ij"), -1)
    xy = xy.reshape(-1, 2)
    sky = float(max(scene.bounds[1, 2], a[2], b[2])) + SKY_MARGIN_M
    origins = np.column_stack([xy, np.full(len(xy), sky)])
    hits = scene.cast(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)))
    top = np.where(hits.hit, sky - hits.distance, -np.inf)
    ground = scene.ground_height(xy[:, 0], xy[:, 1])
    return float(np.max(np.maximum(top, ground)))


def nearest_open_site(scene: Scene, xy, radius: float = 2.5, search: float = 200.0, step: float = 2.0) -> np.ndarray:
    """The point (3,) on the ground nearest ``xy`` whose sky is open: nothing above it and no
    obstacle within ``radius`` m of its vertical column (a safe takeoff and landing site; roofs
    and other surfaces more than GROUND_SITE_TOLERANCE_M above the terrain do not count).

    Searched on rings of ``step`` m out to ``search`` m; raises :class:`PlanningError` if none.
    """
    x0, y0 = float(xy[0]), float(xy[1])
    sky = float(scene.bounds[1, 2]) + SKY_MARGIN_M
    for r in np.arange(0.0, search + step, step):
        n = 1 if r == 0 else max(8, int(2 * np.pi * r / step))
        ang = np.arange(n) * 2 * np.pi / n
        cand = np.column_stack([x0 + r * np.cos(ang), y0 + r * np.sin(ang)])
        for cx, cy in cand:
            z = surface_below(scene, (cx, cy, sky))
            if z - float(scene.ground_height(cx, cy)) > GROUND_SITE_TOLERANCE_M:
                continue  # a roof, not the ground
            base = np.array([cx, cy, z + LIFT_OFF_SURFACE_M])
            if leg_is_clear(scene, base, [cx, cy, sky], radius):
                return np.array([cx, cy, z])
    raise PlanningError(f"no open takeoff site within {search:.0f} m of ({x0:.1f}, {y0:.1f})")


# ---------------------------------------------------------------------------------------------
# Expansion and re-planning
# ---------------------------------------------------------------------------------------------


def _expand(scene: Scene, waypoints: Sequence[Waypoint], start: np.ndarray, home: np.ndarray,
            cfg: PlannerConfig, airborne: bool) -> tuple[list[Waypoint], list[int]]:
    """Mission items -> explicit primitives (see :class:`FlightPlan`), with their item index."""
    out: list = []
    src: list[int] = []
    cur = np.asarray(start, np.float64).copy()
    on_ground = not airborne

    def put(wp, i):
        nonlocal cur
        out.append(wp)
        src.append(i)
        cur = wp.xyz.copy()

    for i, wp in enumerate(waypoints):
        p = wp.xyz
        if wp.command == "takeoff":
            if on_ground:
                put(replace(wp, position=(cur[0], cur[1], p[2])), i)
                on_ground = False
            elif p[2] > cur[2] + SAME_POINT_M:
                put(replace(wp, command="waypoint", position=(cur[0], cur[1], p[2])), i)
            continue
        if on_ground:
            raise PlanningError(f"mission item {i} ({wp.command!r} at {fmt_point(p)}) comes while the drone is on "
                                f"the ground: add a 'takeoff' item before it")
        if wp.command == "waypoint":
            put(wp, i)
        elif wp.command in ("land", "rtl"):
            target = home if wp.command == "rtl" else p
            if wp.command == "rtl":
                z = max(cur[2], home[2] + cfg.rtl_altitude)
                if z > cur[2] + SAME_POINT_M:
                    put(replace(wp, command="waypoint", position=(cur[0], cur[1], z), hold_s=0.0), i)
            if np.hypot(*(target[:2] - cur[:2])) > SAME_POINT_M:
                put(replace(wp, command="waypoint", position=(target[0], target[1], cur[2]), hold_s=0.0), i)
            ground = surface_below(scene, cur)
            put(replace(wp, command="land", position=(cur[0], cur[1], ground)), i)
            on_ground = True
        else:
            raise PlanningError(f"mission item {i}: unknown command {wp.command!r}")
    return out, src


def check_and_plan_drone_path(scene: Scene, waypoints: Sequence[Waypoint], start, home=None,
                              config: PlannerConfig = PlannerConfig(), airborne: bool | None = None) -> FlightPlan:
    """Expand mission items, check every leg against ``scene`` and re-plan blocked legs above obstacles.

    Parameters
    ----------
    scene : Scene
        The world (local ENU, metres).
    waypoints : sequence of Waypoint
        Mission items (commands 'takeoff', 'waypoint', 'land', 'rtl').
    start : (3,) float
        Where the drone is now (local ENU m).
    home : (3,) float, optional
        Home on the ground (RTL target, altitude reference); ``start`` if omitted.
    config : PlannerConfig
    airborne : bool, optional
        Whether the drone is flying at ``start``; default: more than 0.5 m above the surface.

    Raises
    ------
    PlanningError
        Naming the leg (its mission items and endpoints) that cannot be made safe.
    """
    cfg = config
    start = np.asarray(start, np.float64)
    home = start.copy() if home is None else np.asarray(home, np.float64)
    if airborne is None:
        airborne = start[2] - surface_below(scene, start) > 0.5
    prims, src = _expand(scene, waypoints, start, home, cfg, airborne)
    cruise_r = cfg.clearance + cfg.body_radius
    vert_r = cfg.vertical_clearance + cfg.body_radius
    ceiling = home[2] + cfg.max_altitude
    planned: list = []
    planned_src: list[int] = []
    detours: list[Detour] = []
    cur = start.copy()
    cur_src = -1

    def leg_name(i_to):
        frm = "the start" if cur_src < 0 else f"item {cur_src}"
        return f"leg {frm} {fmt_point(cur)} -> item {i_to} ({waypoints[i_to].command!r}) "

    for wp, i in zip(prims, src):
        p = wp.xyz
        if wp.command == "waypoint" and not point_is_clear(scene, p, vert_r):
            # Too close to (or inside) an obstacle to hover there: lift the waypoint above it.
            top = obstacle_top(scene, p, p, vert_r, cfg.sample_spacing)
            z = top + cruise_r + cfg.cruise_margin
            if z > ceiling:
                raise PlanningError(f"item {i} ({wp.command!r}) {fmt_point(p)} is within {vert_r:.1f} m of an obstacle "
                                    f"whose top is at z={top:.1f} m; lifting it above needs {z - home[2]:.1f} m above "
                                    f"home, above the max altitude {cfg.max_altitude:.0f} m: move the waypoint")
            if z > p[2]:
                detours.append(Detour(i, tuple(p), tuple(p), top, z, lifted=True))
                p = np.array([p[0], p[1], z])
                wp = replace(wp, position=tuple(p))
        if p[2] > ceiling + 1e-6:
            raise PlanningError(f"{leg_name(i)}{fmt_point(p)}: {p[2] - home[2]:.1f} m above home exceeds the "
                                f"max altitude {cfg.max_altitude:.0f} m")
        if wp.command == "takeoff":
            if not leg_is_clear(scene, cur + [0, 0, LIFT_OFF_SURFACE_M], p, vert_r):
                raise PlanningError(f"{leg_name(i)}{fmt_point(p)}: the takeoff column is blocked within "
                                    f"{vert_r:.1f} m; take off from an open site")
        elif wp.command == "land":
            top = p + [0, 0, LAND_CHECK_STOP_M]
            if cur[2] > top[2] and not leg_is_clear(scene, cur, top, vert_r):
                raise PlanningError(f"{leg_name(i)}{fmt_point(p)}: the landing column is blocked within "
                                    f"{vert_r:.1f} m; land at an open site")
        else:
            horizontal = float(np.hypot(*(p[:2] - cur[:2])))
            vertical = horizontal < VERTICAL_LEG_M
            radius = vert_r if vertical else cruise_r
            down = radius if vertical else _down_clearance(scene, cur, p, cruise_r, cfg.body_radius)
            if not leg_is_clear(scene, cur, p, radius, down):
                if vertical:
                    raise PlanningError(f"{leg_name(i)}{fmt_point(p)}: vertical leg blocked within {radius:.1f} m "
                                        f"(is a waypoint inside or under an obstacle?)")
                top = obstacle_top(scene, cur, p, cruise_r, cfg.sample_spacing)
                cruise = max(top + cruise_r + cfg.cruise_margin, cur[2], p[2])
                if cruise > ceiling:
                    raise PlanningError(
                        f"{leg_name(i)}{fmt_point(p)} passes through an obstacle whose top is at z={top:.1f} m; "
                        f"flying over it needs {cruise - home[2]:.1f} m above home, above the max altitude "
                        f"{cfg.max_altitude:.0f} m: move the waypoints or raise max_altitude")
                up, over = cur.copy(), p.copy()
                up[2] = over[2] = cruise
                # Climb in place if the column is free, else climb while crossing; descend at the
                # end if that column is free, else the waypoint is lifted to the crossing height.
                climb_in_place = leg_is_clear(scene, cur, up, vert_r)
                via = [up] if climb_in_place else []
                a = up if climb_in_place else cur
                if not leg_is_clear(scene, a, over, cruise_r if climb_in_place else vert_r):
                    raise PlanningError(f"{leg_name(i)}{fmt_point(p)} is blocked and its detour over the obstacle "
                                        f"(top z={top:.1f} m) is blocked too at {fmt_point(a)} -> {fmt_point(over)}")
                lifted = not leg_is_clear(scene, over, p, vert_r)
                for q in via + ([over] if not lifted else []):
                    if np.linalg.norm(q - (planned[-1].xyz if planned else cur)) > SAME_POINT_M:
                        planned.append(replace(wp, command="waypoint", position=tuple(q), hold_s=0.0, yaw=None))
                        planned_src.append(i)
                detours.append(Detour(i, tuple(cur), tuple(p), top, cruise, lifted))
                if lifted:
                    wp, p = replace(wp, position=tuple(over)), over
        planned.append(wp)
        planned_src.append(i)
        cur, cur_src = p.copy(), i
    return FlightPlan(tuple(planned), tuple(planned_src), tuple(detours))


def _down_clearance(scene: Scene, a, b, cruise_r: float, body_radius: float) -> float:
    """Clearance below a cruising leg: the full one, less where the leg itself flies lower (a
    low waypoint is the mission's choice, the ground under it is not an obstacle)."""
    agl = min(a[2] - scene.ground_height(a[0], a[1]), b[2] - scene.ground_height(b[0], b[1]))
    return float(np.clip(agl - body_radius, body_radius, cruise_r))
