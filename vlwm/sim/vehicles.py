"""Running a mission: build the vehicle it is for, and step it to the end.

:func:`fly` turns a :class:`Mission` into the vehicle's pose every ``dt`` seconds;
:func:`vehicle_for_mission` builds that vehicle, armed, with the mission planned and started
(AUTO).  The vehicles themselves live beside this module:

* :class:`Drone` (:mod:`vlwm.sim.drone`) — a point-mass multirotor under acceleration-limited
  velocity control, its missions checked and re-planned by :mod:`vlwm.sim.flight_planning`;
* :class:`Rover` (:mod:`vlwm.sim.rover`) — a kinematic bicycle model driving a left-lane path
  from :mod:`vlwm.sim.road_planning`.

Both live in the scene's local ENU frame (x east, y north, z up; metres, seconds, radians; yaw
counter-clockwise from east), advance with one ``step(dt)`` (:mod:`vlwm.sim.control_loop`) and
report :class:`vlwm.io.frames.Pose`.  Both fly/drive a mission on their own (mode AUTO) or take
commands from outside — the methods a MAVLink endpoint maps its messages onto (``arm``,
``takeoff``, ``goto``, ``set_velocity``, ``land``, ``rtl``, ``set_mode``).  A command that cannot
be carried out safely raises (:class:`PlanningError` for unsafe geometry, ``RuntimeError`` for a
wrong state).

The vehicles, their limits and constants are re-exported here: ``from vlwm.sim.vehicles import
Drone, Rover, ...`` keeps working.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vlwm.sim.control_loop import MAX_CONTROL_DT
from vlwm.sim.drone import (BRAKE_FRACTION, DRONE_MODES, GRAVITY, GUARD_MARGIN_M, HOVER_GAIN, LAND_GAIN, POSITION_GAIN,
                            STOP_RADIUS_M, STOP_SPEED, TILT_TIME_CONSTANT_S, TOUCHDOWN_HEIGHT_M, TOUCHDOWN_SPEED,
                            YAW_FROM_TRAVEL_SPEED, Drone, DroneLimits)
from vlwm.sim.flight_planning import FlightPlan, PlannerConfig, check_and_plan_drone_path, leg_is_clear, surface_below
from vlwm.io.frames import Pose
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.planning_errors import PlanningError
from vlwm.sim.road_planning import DEFAULT_MIN_TURNING_RADIUS_M, LanePath, lane_path, road_route, turn_angle
from vlwm.sim.rover import (CORNER_SLACK_M, HEADING_GAIN, LATERAL_GAIN, ROVER_MODES, ROVER_SEARCH_SAMPLES, ROVER_STOP_M,
                            STRAIGHT_ON_RAD, Rover, RoverLimits, speed_profile)
from vlwm.world.scene import Scene

__all__ = [
    # running a mission (this module)
    "vehicle_for_mission", "fly",
    # the vehicles and their settings
    "Drone", "DroneLimits", "Rover", "RoverLimits", "speed_profile",
    "MAX_CONTROL_DT", "GRAVITY", "BRAKE_FRACTION", "POSITION_GAIN", "HOVER_GAIN", "STOP_RADIUS_M", "STOP_SPEED",
    "YAW_FROM_TRAVEL_SPEED", "LAND_GAIN", "TOUCHDOWN_SPEED", "TOUCHDOWN_HEIGHT_M", "GUARD_MARGIN_M",
    "TILT_TIME_CONSTANT_S", "DRONE_MODES", "ROVER_MODES", "LATERAL_GAIN", "HEADING_GAIN", "ROVER_STOP_M",
    "ROVER_SEARCH_SAMPLES", "STRAIGHT_ON_RAD", "CORNER_SLACK_M",
    # what vehicle code takes and raises
    "Mission", "Waypoint", "Pose", "PlannerConfig", "FlightPlan", "LanePath", "PlanningError",
    "DEFAULT_MIN_TURNING_RADIUS_M",
    # the planners' functions the vehicles call (their home is vlwm.sim.planning)
    "check_and_plan_drone_path", "leg_is_clear", "surface_below", "lane_path", "road_route", "turn_angle",
]


def vehicle_for_mission(mission: Mission, scene: Scene, drone_limits: DroneLimits = DroneLimits(),
                        rover_limits: RoverLimits = RoverLimits(), planner: PlannerConfig = PlannerConfig()):
    """A :class:`Drone` on the ground at the mission's home, or a :class:`Rover` at its route's
    start, armed, with the mission planned and started (AUTO).  Planning errors raise here."""
    if mission.vehicle == "drone":
        vehicle = Drone(scene, mission.home[:2], limits=drone_limits, planner=planner)
    else:
        vehicle = Rover.at_route_start(scene, mission, rover_limits)
    vehicle.arm()
    vehicle.set_mission(mission)
    vehicle.start_mission()
    return vehicle


def fly(mission: Mission, scene: Scene, dt: float = 0.05, *, drone_limits: DroneLimits = DroneLimits(),
        rover_limits: RoverLimits = RoverLimits(), planner: PlannerConfig = PlannerConfig(),
        max_duration_s: float = 3600.0) -> Iterator[Pose]:
    """Run ``mission`` in ``scene`` and yield the vehicle's pose every ``dt`` s, from t = 0 to the end.

    The vehicle is built (and the mission planned) before the first pose, so a mission that
    cannot be flown raises here; one that has not ended after ``max_duration_s`` raises RuntimeError.
    """
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    vehicle = vehicle_for_mission(mission, scene, drone_limits, rover_limits, planner)
    return _run(vehicle, mission.name, dt, max_duration_s)


def _run(vehicle, name: str, dt: float, max_duration_s: float) -> Iterator[Pose]:
    yield vehicle.pose()
    while not vehicle.done:
        if vehicle.t > max_duration_s:
            raise RuntimeError(f"mission {name!r} did not finish within {max_duration_s:.0f} s "
                               f"(mode {vehicle.mode}, at {np.round(vehicle.position, 1).tolist()})")
        vehicle.step(dt)
        yield vehicle.pose()
