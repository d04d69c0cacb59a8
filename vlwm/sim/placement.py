"""Where vehicles start: open takeoff sites for drones and road places for rovers near the scene origin.

Both ``vlwm sim-server`` backends place their vehicles here, so a vehicle index starts at the same
place in either: :func:`drone_sites` (drones, the vehicles 0 .. drones-1) then :func:`place_rovers`
(the vehicles after them).  Frame: the scene's local ENU frame (x east, y north, z up), metres.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.planning import PlanningError, nearest_open_site
from vlwm.sim.vehicles import Rover
from vlwm.world.scene import Scene

SPAWN_GRID_M = 12.0            #: drones are placed at the open sites nearest grid points this far apart ...
MIN_SPAWN_SEPARATION_M = 8.0   #: ... at least this far from each other (and from rovers)
SPAWN_CANDIDATES = 200         #: grid points / road edges tried before giving up


def _grid_by_distance(step: float, count: int) -> np.ndarray:
    """(count, 2) grid points ``step`` m apart, nearest the origin first."""
    r = int(math.ceil(math.sqrt(count))) + 1
    g = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1)), -1).reshape(-1, 2) * step
    return g[np.lexsort((g[:, 1], g[:, 0], np.hypot(g[:, 0], g[:, 1])))][:count]


def _far_from(p, others, min_dist: float) -> bool:
    return all(np.hypot(*(np.asarray(p)[:2] - np.asarray(o)[:2])) >= min_dist for o in others)


def drone_sites(scene: Scene, count: int) -> list[np.ndarray]:
    """``count`` open takeoff sites (3,) near the origin, at least MIN_SPAWN_SEPARATION_M apart."""
    sites: list[np.ndarray] = []
    for xy in _grid_by_distance(SPAWN_GRID_M, SPAWN_CANDIDATES):
        if len(sites) == count:
            break
        try:
            site = nearest_open_site(scene, xy)
        except PlanningError:
            continue
        if _far_from(site, sites, MIN_SPAWN_SEPARATION_M):
            sites.append(site)
    if len(sites) < count:
        raise PlanningError(f"found only {len(sites)} open takeoff sites for {count} drones near the origin")
    return sites


def place_rovers(scene: Scene, count: int, avoid: Sequence[np.ndarray] = ()) -> list[Rover]:
    """``count`` rovers in the left lane at the road edges nearest the origin, facing along them."""
    if count == 0:
        return []
    roads = scene.roads
    if roads.num_edges == 0:
        raise PlanningError("the scene has no road graph: rovers cannot be placed (use --rovers 0, or the "
                            "procedural city)")
    nodes = roads.nodes.astype(np.float64)
    mid = nodes[roads.edges].mean(axis=1)
    rovers: list[Rover] = []
    taken = list(avoid)
    for e in np.argsort(np.hypot(mid[:, 0], mid[:, 1]), kind="stable")[:SPAWN_CANDIDATES]:
        if len(rovers) == count:
            break
        a, b = (int(v) for v in roads.edges[e])
        spawn = Mission("spawn", "rover", tuple(nodes[a]), (Waypoint(tuple(nodes[a])), Waypoint(tuple(nodes[b]))))
        try:
            rover = Rover.at_route_start(scene, spawn)
        except PlanningError:
            continue
        if _far_from(rover.position, taken, MIN_SPAWN_SEPARATION_M):
            rovers.append(rover)
            taken.append(rover.position)
    if len(rovers) < count:
        raise PlanningError(f"found only {len(rovers)} road places for {count} rovers")
    return rovers
