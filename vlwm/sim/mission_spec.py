"""A mission as a user states it: :class:`MissionSpec`, the one typed config of mission patterns.

``vlwm simulate`` (:func:`vlwm.sim.jobs.build_mission`) and the MAVLink ground-station script
(:func:`vlwm.sim.mavlink.client.mission_around_home`) both take a :class:`MissionSpec`: the same
fields, the same checks.  They differ only in the frame the positions are given in:

* ``vlwm simulate``: the scene's local ENU frame (x east, y north, metres), origin the scene's;
* the mission client: metres east, north of the vehicle's home (its route starts at the vehicle).

Units: metres, m/s.  Which builder each pattern uses is in :mod:`vlwm.sim.missions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlwm.sim.mission_types import VEHICLES

#: Mission patterns: lawnmower survey, orbit, a QGC WPL file, seeded patrol goals, a road route.
PATTERNS = ("survey", "orbit", "waypoints", "patrol", "route")
#: The patterns a rover can drive (survey and orbit are flight patterns).
ROVER_PATTERNS = ("patrol", "route", "waypoints")


@dataclass(frozen=True)
class MissionSpec:
    """One mission, as a user states it (positions in the frame of the caller, see the module doc)."""

    vehicle: str = "drone"
    """'drone' or 'rover'."""
    pattern: str = "survey"
    """One of :data:`PATTERNS` (rovers: one of :data:`ROVER_PATTERNS`)."""
    size: float = 100.0
    """Survey square side, metres."""
    spacing: float = 15.0
    """Survey line spacing, metres."""
    altitude: float = 30.0
    """Flight height above the home ground, metres (survey, orbit, patrol)."""
    center: tuple[float, float] | None = None
    """Survey/orbit centre, metres.  None: ``vlwm simulate`` uses the scene origin for the first job
    and a seeded open site for the others; the mission client uses home (survey) or a point
    ``radius + 10`` m west of home (orbit)."""
    radius: float = 40.0
    """Orbit radius, metres."""
    laps: float = 1.0
    """Orbit laps."""
    target: str | None = None
    """Orbit around this scene instance (a building's name / gml:id) instead of ``center``."""
    waypoints_file: str | None = None
    """QGC WPL 110 mission file ('waypoints')."""
    goals: int = 4
    """Random goals of a patrol."""
    start: tuple[float, float] | None = None
    """Rover route start, metres (None: a seeded road node).  ``vlwm simulate`` only: the mission
    client's route starts where the rover is."""
    goal: tuple[float, float] | None = None
    """Rover route goal, metres (None: a seeded road node; the mission client needs one)."""
    seed: int = 0
    """Seed of what the pattern draws (patrol goals, route ends, job centres) and of the recording."""
    speed: float | None = None
    """Cruise speed of surveys and orbits, m/s; None: the vehicle's default."""

    def __post_init__(self):
        if self.vehicle not in VEHICLES:
            raise ValueError(f"vehicle must be 'drone' or 'rover', got {self.vehicle!r}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern {self.pattern!r} is not one of {PATTERNS}")
        if self.vehicle == "rover" and self.pattern not in ROVER_PATTERNS:
            raise ValueError(f"a rover cannot fly a {self.pattern!r}: use 'patrol', 'route' or 'waypoints'")
        if self.pattern == "waypoints" and not self.waypoints_file:
            raise ValueError("pattern 'waypoints' needs a QGC WPL file (--waypoints FILE)")
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be a positive number of m/s (or None for the vehicle's), got {self.speed}")
