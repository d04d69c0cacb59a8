"""Missions: what a drone or rover is asked to do, as an ordered list of waypoints.

A :class:`~vlwm.sim.mission_types.Mission` (:mod:`vlwm.sim.mission_types`, imported here too) is
plain data in the scene's local ENU frame (x east, y north, z up,
metres).  Waypoint heights are **absolute local z**; the QGC WPL files ground stations use store
them as altitude relative to the home ground (``z - home[2]``, MAV_FRAME_GLOBAL_RELATIVE_ALT),
see :mod:`vlwm.sim.qgc_wpl`.  Mission builders choose the geometry; whether it can be flown
safely is decided by :mod:`vlwm.sim.planning` when a vehicle takes the mission.

Builders:

* :func:`survey_mission` — lawnmower lines over a square, at a height above home;
* :func:`orbit_mission` — a circle around a point or a building, camera facing the centre;
* :func:`patrol_mission` — seeded random goals a drone can reach, or road nodes a rover can;
* :func:`route_mission` — a rover along roads between two points;
* files: :func:`vlwm.sim.qgc_wpl.waypoints_mission`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from vlwm.sim.mission_types import VEHICLES, Mission, Waypoint
from vlwm.sim.planning import (DEFAULT_MIN_TURNING_RADIUS_M, PlannerConfig, PlanningError,
                               check_and_plan_drone_path, lane_path, nearest_open_site, road_route)
from vlwm.world.scene import Scene

#: Draws tried per accepted patrol goal before giving up.
PATROL_TRIES_PER_GOAL = 50


# ---------------------------------------------------------------------------------------------
# Drone missions
# ---------------------------------------------------------------------------------------------


def _home(scene: Scene, xy) -> np.ndarray:
    """An open takeoff site (3,) nearest ``xy``."""
    return nearest_open_site(scene, np.asarray(xy, np.float64)[:2])


def _ending(end: str, home: np.ndarray) -> list[Waypoint]:
    if end == "rtl":
        return [Waypoint(tuple(home), "rtl")]
    if end == "hover":
        return []
    raise ValueError(f"mission end must be 'rtl' or 'hover', got {end!r}")


def survey_mission(scene: Scene, center_xy=(0.0, 0.0), size: float = 100.0, spacing: float = 15.0,
                   altitude: float = 30.0, *, speed: float | None = None, home_xy=None, end: str = "rtl",
                   name: str = "survey") -> Mission:
    """Lawnmower survey of the square of side ``size`` m centred on ``center_xy`` (2,).

    Lines run east-west, ``ceil(size / spacing) + 1`` of them from the south edge to the north
    edge (so the actual spacing ``size / (count - 1)`` is at most ``spacing`` and both edges are
    covered), alternating direction, at ``altitude`` m above the home ground.  The drone takes off
    from the open site nearest ``home_xy`` (default: the centre), flies the lines and returns
    (``end='rtl'``) or hovers at the last one (``'hover'``).
    """
    if not (size > 0 and spacing > 0 and altitude > 0):
        raise ValueError(f"survey needs size, spacing and altitude > 0, got {size}, {spacing}, {altitude}")
    cx, cy = (float(v) for v in np.asarray(center_xy, np.float64)[:2])
    home = _home(scene, (cx, cy) if home_xy is None else home_xy)
    z = home[2] + altitude
    count = int(math.ceil(size / spacing - 1e-9)) + 1
    ys = np.linspace(cy - size / 2, cy + size / 2, count)
    x0, x1 = cx - size / 2, cx + size / 2
    wps = [Waypoint((home[0], home[1], z), "takeoff", speed=speed)]
    for k, y in enumerate(ys):
        a, b = (x0, x1) if k % 2 == 0 else (x1, x0)
        wps += [Waypoint((a, y, z), speed=speed), Waypoint((b, y, z), speed=speed)]
    return Mission(name, "drone", tuple(home), tuple(wps + _ending(end, home)))


def building_center(scene: Scene, name: str) -> np.ndarray:
    """(2,) centre (m) of the bounding box of the instance called ``name``."""
    idx = np.flatnonzero(scene.instance_names == name)
    if not len(idx):
        raise ValueError(f"no instance named {name!r} in the scene")
    tri = scene.faces[scene.instances == idx[0]]
    v = scene.vertices[np.unique(tri)]
    return (v[:, :2].min(0) + v[:, :2].max(0)).astype(np.float64) / 2


def orbit_mission(scene: Scene, center, radius: float, altitude: float, laps: float = 1, points_per_lap: int = 24,
                  *, clockwise: bool = False, face_center: bool = True, speed: float | None = None,
                  home_xy=None, end: str = "rtl", name: str = "orbit") -> Mission:
    """Fly ``laps`` circles of ``radius`` m around ``center`` at ``altitude`` m above home.

    ``center`` is a (2,) point or the name of a scene instance (a building: its bounding-box
    centre).  The circle is ``points_per_lap`` explicit waypoints per lap (closed: the last lap
    ends where the first began), starting on the side facing home; with ``face_center`` each
    waypoint asks the drone to look at the centre (an orbiting camera).  Home defaults to the open
    site nearest the first orbit point's ground projection, outward of the circle.
    """
    if not (radius > 0 and altitude > 0 and laps > 0 and points_per_lap >= 3):
        raise ValueError("orbit needs radius, altitude, laps > 0 and points_per_lap >= 3")
    c = building_center(scene, center) if isinstance(center, str) else np.asarray(center, np.float64)[:2]
    home = _home(scene, c + [radius + 10.0, 0.0] if home_xy is None else home_xy)
    z = home[2] + altitude
    a0 = math.atan2(home[1] - c[1], home[0] - c[0])
    n = int(round(laps * points_per_lap))
    sign = -1.0 if clockwise else 1.0
    ang = a0 + sign * 2 * np.pi * np.arange(n + 1) / points_per_lap
    wps = [Waypoint((home[0], home[1], z), "takeoff", speed=speed)]
    for a in ang:
        p = (c[0] + radius * math.cos(a), c[1] + radius * math.sin(a), z)
        yaw = math.atan2(c[1] - p[1], c[0] - p[0]) if face_center else None
        wps.append(Waypoint(p, speed=speed, yaw=yaw))
    return Mission(name, "drone", tuple(home), tuple(wps + _ending(end, home)))


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def patrol_mission(scene: Scene, vehicle: str, n_goals: int, rng, altitude: float = 30.0, *,
                   margin: float = 10.0, home_xy=(0.0, 0.0), planner: PlannerConfig = PlannerConfig(),
                   min_turning_radius: float = DEFAULT_MIN_TURNING_RADIUS_M, name: str = "patrol") -> Mission:
    """Visit ``n_goals`` random goals, the same ones for the same ``rng`` (a Generator or a seed).

    Drone: goals are uniform over the scene's extent (less ``margin`` m) at ``altitude`` m above
    home; a goal is kept only if the leg to it and the return home from it can be flown (checked,
    and re-planned over obstacles, by :func:`check_and_plan_drone_path`).  The drone returns home
    at the end.

    Rover: goals are road nodes that are not dead ends and from which the car can drive on (a
    route back to the start exists); the mission lists every node of the route joining them,
    found without U-turns and checked drivable with ``min_turning_radius``.
    """
    if n_goals < 1:
        raise ValueError(f"patrol needs n_goals >= 1, got {n_goals}")
    rng = _as_rng(rng)
    if vehicle == "drone":
        return _drone_patrol(scene, n_goals, rng, altitude, margin, home_xy, planner, name)
    if vehicle == "rover":
        return _rover_patrol(scene, n_goals, rng, min_turning_radius, name)
    raise ValueError(f"patrol vehicle must be one of {VEHICLES}, got {vehicle!r}")


def _drone_patrol(scene, n_goals, rng, altitude, margin, home_xy, planner, name) -> Mission:
    home = _home(scene, home_xy)
    z = home[2] + altitude
    lo, hi = scene.bounds[0, :2] + margin, scene.bounds[1, :2] - margin
    if np.any(hi <= lo):
        raise ValueError(f"scene extent {scene.bounds[:, :2].tolist()} is too small for a {margin} m margin")
    wps = [Waypoint((home[0], home[1], z), "takeoff")]
    cur = wps[0].xyz
    for _ in range(n_goals * PATROL_TRIES_PER_GOAL):
        if len(wps) > n_goals:
            break
        xy = rng.uniform(lo, hi)
        goal = Waypoint((xy[0], xy[1], z))
        try:  # the leg there, and the way home from there (the patrol may end at any goal)
            check_and_plan_drone_path(scene, [goal, Waypoint(tuple(home), "rtl")], start=cur, home=home,
                                      config=planner, airborne=True)
        except PlanningError:
            continue
        wps.append(goal)
        cur = goal.xyz
    if len(wps) <= n_goals:
        raise PlanningError(f"found only {len(wps) - 1} reachable patrol goals of {n_goals} in "
                            f"{n_goals * PATROL_TRIES_PER_GOAL} draws")
    return Mission(name, "drone", tuple(home), tuple(wps + _ending("rtl", home)))


def _rover_patrol(scene, n_goals, rng, min_turning_radius, name) -> Mission:
    roads = scene.roads
    if roads.num_edges == 0:
        raise PlanningError("the scene has no road graph: a rover cannot patrol")
    degree = np.bincount(roads.edges.reshape(-1), minlength=roads.num_nodes)
    candidates = np.flatnonzero(degree >= 2)
    route = [int(rng.choice(candidates))]
    goals = 0
    for _ in range(n_goals * PATROL_TRIES_PER_GOAL):
        if goals == n_goals:
            break
        goal = int(rng.choice(candidates))
        if goal == route[-1]:
            continue
        try:
            ext = road_route(roads, route[-1], [goal], prev=route[-2] if len(route) > 1 else None)
            lane_path(roads, route[-2:] + ext[1:], min_radius=min_turning_radius)   # the new corners
            # The car must be able to go on from the goal (not trapped towards a dead end).
            road_route(roads, goal, [route[0]], prev=(route + ext[1:])[-2])
        except PlanningError:
            continue
        route += ext[1:]
        goals += 1
    if goals < n_goals:
        raise PlanningError(f"found only {goals} drivable patrol goals of {n_goals}")
    return _road_mission(scene, route, name)


# ---------------------------------------------------------------------------------------------
# Rover missions
# ---------------------------------------------------------------------------------------------


def _road_mission(scene: Scene, route: Sequence[int], name: str) -> Mission:
    pts = scene.roads.nodes[list(route)].astype(np.float64)
    return Mission(name, "rover", tuple(pts[0]), tuple(Waypoint(tuple(p)) for p in pts))


def route_mission(scene: Scene, start_xy, goal_xy, name: str = "route") -> Mission:
    """Drive along roads from the node nearest ``start_xy`` to the node nearest ``goal_xy`` (2,).

    The route is :meth:`RoadGraph.shortest_path`; every node on it becomes a waypoint.
    """
    roads = scene.roads
    if roads.num_edges == 0:
        raise PlanningError("the scene has no road graph: a rover cannot drive a route")
    a, b = roads.nearest_node(start_xy), roads.nearest_node(goal_xy)
    if a == b:
        raise PlanningError(f"start {tuple(start_xy)} and goal {tuple(goal_xy)} are nearest the same road node {a}")
    try:
        route = roads.shortest_path(a, b)
    except ValueError as exc:
        raise PlanningError(str(exc)) from exc
    return _road_mission(scene, route, name)

