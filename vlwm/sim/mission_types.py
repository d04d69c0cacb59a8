"""What a mission is: :class:`Waypoint` and :class:`Mission`, plain data in the scene's local ENU frame.

A leaf of the simulator: the mission builders (:mod:`vlwm.sim.missions`), the planners
(:mod:`vlwm.sim.flight_planning`), the vehicles, the QGC WPL files and the MAVLink endpoint all
read these types, and this module imports none of them.  Frame: x east, y north, z up, metres;
waypoint heights are absolute local z; yaw is radians counter-clockwise from east.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Verbs a mission waypoint may carry (MAVLink: NAV_TAKEOFF 22, NAV_WAYPOINT 16, NAV_LAND 21, NAV_RETURN_TO_LAUNCH 20).
MISSION_VERBS = ("takeoff", "waypoint", "land", "rtl")
VEHICLES = ("drone", "rover")


@dataclass(frozen=True)
class Waypoint:
    """One mission item.

    Attributes
    ----------
    position : (3,) float tuple
        Local ENU metres, z absolute.  'takeoff': (x, y) ignored (the vehicle climbs where it
        is), z the height to reach; 'land': (x, y) where to land, z the ground there; 'rtl':
        ignored (home).
    command : str
        One of :data:`MISSION_VERBS`.  A hover of ``hold_s`` seconds is a 'waypoint' with a hold
        (MAVLink NAV_LOITER_TIME reads into one).
    speed : float or None
        Cruise speed (m/s) from this item on; None for the vehicle's default.
    yaw : float or None
        Heading to hold at this item (rad, counter-clockwise from east); None: face the
        direction of travel.
    hold_s : float
        Seconds to wait on arrival.
    """

    position: tuple[float, float, float]
    command: str = "waypoint"
    speed: float | None = None
    yaw: float | None = None
    hold_s: float = 0.0

    def __post_init__(self):
        p = tuple(float(v) for v in np.asarray(self.position, np.float64).reshape(-1))
        if len(p) != 3 or not all(math.isfinite(v) for v in p):
            raise ValueError(f"waypoint position must be 3 finite numbers, got {self.position}")
        object.__setattr__(self, "position", p)
        if self.command not in MISSION_VERBS:
            raise ValueError(f"waypoint command {self.command!r} is not one of {MISSION_VERBS}")
        if self.speed is not None and not (math.isfinite(self.speed) and self.speed > 0):
            raise ValueError(f"waypoint speed must be positive m/s or None, got {self.speed}")
        if self.yaw is not None and not math.isfinite(self.yaw):
            raise ValueError(f"waypoint yaw must be finite radians or None, got {self.yaw}")
        if not (math.isfinite(self.hold_s) and self.hold_s >= 0):
            raise ValueError(f"waypoint hold_s must be >= 0 s, got {self.hold_s}")
        if self.speed is not None:
            object.__setattr__(self, "speed", float(self.speed))
        if self.yaw is not None:
            object.__setattr__(self, "yaw", float(self.yaw))
        object.__setattr__(self, "hold_s", float(self.hold_s))

    @property
    def xyz(self) -> np.ndarray:
        """(3,) float64 position."""
        return np.array(self.position, np.float64)


@dataclass(frozen=True)
class Mission:
    """An ordered list of waypoints for one vehicle.

    Attributes
    ----------
    name : str
    vehicle : str
        'drone' or 'rover'.
    home : (3,) float tuple
        Home on the ground (local ENU m): where a drone takes off and returns, where a rover
        starts; the altitude reference of QGC WPL files.
    waypoints : tuple of Waypoint
    """

    name: str
    vehicle: str
    home: tuple[float, float, float]
    waypoints: tuple[Waypoint, ...]

    def __post_init__(self):
        if self.vehicle not in VEHICLES:
            raise ValueError(f"mission vehicle {self.vehicle!r} is not one of {VEHICLES}")
        h = tuple(float(v) for v in np.asarray(self.home, np.float64).reshape(-1))
        if len(h) != 3:
            raise ValueError(f"mission home must be 3 numbers, got {self.home}")
        object.__setattr__(self, "home", h)
        object.__setattr__(self, "waypoints", tuple(self.waypoints))
        if not self.waypoints:
            raise ValueError(f"mission {self.name!r} has no waypoints")
        if self.vehicle == "rover":
            bad = [i for i, w in enumerate(self.waypoints) if w.command != "waypoint"]
            if bad:
                raise ValueError(f"rover mission {self.name!r}: item {bad[0]} is a {self.waypoints[bad[0]].command!r}; "
                                 f"rovers only drive to 'waypoint' items")

    @property
    def positions(self) -> np.ndarray:
        """(n, 3) float64 waypoint positions, local ENU m."""
        return np.array([w.position for w in self.waypoints], np.float64)

    def relative_altitudes(self) -> np.ndarray:
        """(n,) float64 waypoint heights above home (m), as QGC WPL stores them."""
        return self.positions[:, 2] - self.home[2]
