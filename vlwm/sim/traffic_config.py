"""What traffic to simulate: :class:`TrafficConfig` (counts, speeds, sizes, the seed).

A leaf read by :class:`vlwm.sim.traffic.Traffic` (the actors) and
:class:`vlwm.sim.traffic_routes.RoutePlanner` (their routes), which imports nothing of theirs.
Units: metres, seconds, m/s.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class TrafficConfig:
    """How many actors of each kind, how fast, how big; ``Traffic(scene, cfg)`` is a pure function."""

    seed: int = 0
    """Seed of the one random generator every route and speed comes from."""
    cars: int = 20
    """Number of cars."""
    buses: int = 2
    """Number of buses."""
    trucks: int = 3
    """Number of trucks."""
    pedestrians: int = 30
    """Number of pedestrians."""
    drones: int = 3
    """Number of other drones."""
    car_speed: tuple[float, float] = (6.0, 12.0)
    """Mean speed range (m/s) of cars, uniform."""
    bus_speed: tuple[float, float] = (5.0, 9.0)
    """Mean speed range (m/s) of buses."""
    truck_speed: tuple[float, float] = (5.0, 10.0)
    """Mean speed range (m/s) of trucks."""
    pedestrian_speed: tuple[float, float] = (1.1, 1.5)
    """Mean walking speed range (m/s)."""
    drone_speed: tuple[float, float] = (4.0, 10.0)
    """Mean flying speed range (m/s)."""
    speed_variation: float = 0.15
    """Each actor's speed swings by this fraction of its mean, sinusoidally (0 <= k < 1)."""
    speed_period: tuple[float, float] = (20.0, 60.0)
    """Period range (s) of that swing."""
    car_size: tuple[float, float, float] = (4.5, 1.8, 1.5)
    """Car box (length, width, height), metres."""
    bus_size: tuple[float, float, float] = (12.0, 2.5, 3.2)
    """Bus box, metres."""
    truck_size: tuple[float, float, float] = (8.0, 2.4, 3.0)
    """Truck box, metres."""
    pedestrian_size: tuple[float, float, float] = (0.6, 0.6, 1.75)
    """Pedestrian box, metres (the mesh is a cylinder inside it)."""
    drone_size: tuple[float, float, float] = (0.8, 0.8, 0.3)
    """Drone box, metres (the mesh is a body, arms and rotors inside it)."""
    heavy_min_road_width: float = 10.0
    """Buses and trucks only drive on carriageways at least this wide (m)."""
    pedestrian_walk: tuple[float, float] = (30.0, 150.0)
    """Length range (m) of the sidewalk stretch a pedestrian walks back and forth."""
    drone_altitude: tuple[float, float] = (30.0, 80.0)
    """Flight height range (m) above the ground at the loop centre."""
    drone_radius: tuple[float, float] = (15.0, 60.0)
    """Radius range (m) of drone loops."""
    drone_clearance: float = 5.0
    """Least height (m) of a drone's bottom above anything below its loop."""

    def __post_init__(self):
        for name in ("cars", "buses", "trucks", "pedestrians", "drones"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise ValueError(f"TrafficConfig.{name} must be a non-negative int, got {getattr(self, name)!r}")
        for name in ("car_speed", "bus_speed", "truck_speed", "pedestrian_speed", "drone_speed",
                     "speed_period", "pedestrian_walk", "drone_altitude", "drone_radius"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"TrafficConfig.{name} must be a range 0 < lo <= hi, got {(lo, hi)}")
        for name in ("car_size", "bus_size", "truck_size", "pedestrian_size", "drone_size"):
            size = getattr(self, name)
            if len(size) != 3 or min(size) <= 0:
                raise ValueError(f"TrafficConfig.{name} must be three positive lengths (l, w, h), got {size}")
        if not 0 <= self.speed_variation < 1:
            raise ValueError(f"TrafficConfig.speed_variation must lie in [0, 1), got {self.speed_variation}")
        if self.heavy_min_road_width < 0 or self.drone_clearance < 0:
            raise ValueError("TrafficConfig.heavy_min_road_width and drone_clearance must not be negative")

    @classmethod
    def from_dict(cls, d: dict) -> "TrafficConfig":
        """The config from a dict (e.g. JSON); unknown keys are errors that name them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrafficConfig: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
