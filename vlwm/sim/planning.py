"""Paths vehicles can follow without hitting the scene: one import point for both planners.

Two planners turn a mission's intent into geometry a vehicle can execute, and both refuse
clearly when that is impossible (:class:`PlanningError`, :mod:`vlwm.sim.planning_errors`):

* **Drone legs** (:mod:`vlwm.sim.flight_planning`, :func:`check_and_plan_drone_path`).  Mission
  items are expanded into vertical climbs, straight legs and vertical descents; every leg is
  tested against the scene with a bundle of rays, and a blocked leg is re-planned over the
  obstacle (climb, cross, descend) or rejected when that would break the altitude ceiling.
* **Road routes** (:mod:`vlwm.sim.road_planning`, :func:`road_route`, :func:`lane_path`).  Routes
  over directed road edges without U-turns, turned into a left-lane (Japan) reference path with
  corners filleted no tighter than the car's minimum turning radius.

This module only re-exports the two planners' public names, so ``from vlwm.sim.planning import
X`` works for all of them.

Frames and units: the scene's local ENU frame (x east, y north, z up), metres, radians.
"""

from __future__ import annotations

from vlwm.sim.flight_planning import (GROUND_SITE_TOLERANCE_M, LAND_CHECK_STOP_M, LIFT_OFF_SURFACE_M, MAX_ALTITUDE_M,
                                      RING_RAYS, SAME_POINT_M, SKY_MARGIN_M, VERTICAL_LEG_M, Detour, FlightPlan,
                                      PlannerConfig, check_and_plan_drone_path, leg_is_clear, nearest_open_site,
                                      obstacle_top, point_is_clear, surface_below)
from vlwm.sim.planning_errors import PlanningError
from vlwm.sim.road_planning import (DEFAULT_MIN_TURNING_RADIUS_M, FILLET_RADIUS_FACTOR, LANE_SWING_FACTORS,
                                    MIN_FILLET_FACTOR, MIN_SEGMENT_M, PATH_SPACING_M, STRAIGHT_TURN_RAD, LanePath,
                                    carriageway_excess, lane_offset, lane_path, road_route, turn_angle)

__all__ = [
    # errors
    "PlanningError",
    # drone legs
    "MAX_ALTITUDE_M", "LIFT_OFF_SURFACE_M", "LAND_CHECK_STOP_M", "SAME_POINT_M", "VERTICAL_LEG_M", "RING_RAYS",
    "GROUND_SITE_TOLERANCE_M", "SKY_MARGIN_M", "PlannerConfig", "Detour", "FlightPlan", "surface_below",
    "point_is_clear", "leg_is_clear", "obstacle_top", "nearest_open_site", "check_and_plan_drone_path",
    # road routes
    "DEFAULT_MIN_TURNING_RADIUS_M", "FILLET_RADIUS_FACTOR", "MIN_FILLET_FACTOR", "LANE_SWING_FACTORS",
    "STRAIGHT_TURN_RAD", "MIN_SEGMENT_M", "PATH_SPACING_M", "turn_angle", "road_route", "lane_offset", "LanePath",
    "carriageway_excess", "lane_path",
]
