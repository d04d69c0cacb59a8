"""The procedural city's config: :class:`CityConfig` and the road cross-sections it names (:class:`RoadSpec`).

A leaf of the city generator: :mod:`vlwm.world.procedural` (:func:`~vlwm.world.procedural.generate_city`),
:mod:`vlwm.world.city_layout` and :mod:`vlwm.world.city_buildings` all read it, and it imports none
of them.  The two layout constants the config's checks need live here too.  Lengths are metres.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from vlwm.world.geo import TOKYO_STATION_LATLON

__all__ = ["CityConfig", "RoadSpec", "MIN_EDGE_BLOCK_M", "TOWER_PODIUM_STOREYS"]

MIN_EDGE_BLOCK_M = 30.0       #: city kept between an arterial's sidewalk and the city edge
TOWER_PODIUM_STOREYS = (3, 6)  #: storey range (inclusive) of a tower's podium


@dataclass(frozen=True)
class RoadSpec:
    """Cross-section of one road class."""

    width: float
    """Carriageway width, kerb to kerb (m)."""
    lanes: int
    """Lane count, both directions together."""
    sidewalk: float
    """Sidewalk width on each side (m); 0 for none."""


@dataclass(frozen=True)
class CityConfig:
    """Everything that shapes a procedural city; ``generate_city(cfg)`` is a pure function of it."""

    seed: int = 0
    """Seed of the one random generator every draw comes from."""
    size: float = 1000.0
    """Side of the square city (m), centred on the local origin."""
    latitude: float = TOKYO_STATION_LATLON[0]
    """JGD2011 latitude (deg) of the local origin."""
    longitude: float = TOKYO_STATION_LATLON[1]
    """JGD2011 longitude (deg) of the local origin."""
    arterial: RoadSpec = RoadSpec(22.0, 6, 5.0)
    """Arterial roads (Tokyo's 'dōri')."""
    secondary: RoadSpec = RoadSpec(12.0, 4, 3.0)
    """Secondary roads."""
    narrow_width: tuple[float, float] = (4.0, 6.0)
    """Carriageway width range (m) of narrow streets (no sidewalk), uniform."""
    narrow_two_lane_width: float = 5.5
    """Narrow streets at least this wide (m) have two lanes, the others one."""
    arterial_spacing: tuple[float, float] = (350.0, 500.0)
    """Distance range (m) between neighbouring arterials."""
    secondary_spacing: tuple[float, float] = (110.0, 170.0)
    """Target distance range (m) between neighbouring major roads, arterials included."""
    lot_depth: tuple[float, float] = (28.0, 45.0)
    """Target narrow-street spacing (m) across the short side of lots."""
    lot_length: tuple[float, float] = (55.0, 100.0)
    """Target narrow-street spacing (m) across the long side of lots."""
    kerb_height: float = 0.15
    """Height (m) of sidewalk slabs above the carriageway."""
    house_storeys: tuple[int, int] = (2, 3)
    """Storey range of houses (inclusive)."""
    midrise_storeys: tuple[int, int] = (4, 10)
    """Storey range of mid-rise buildings (inclusive)."""
    storey_height: float = 3.0
    """Storey height (m) of houses."""
    office_storey_height: float = 3.5
    """Storey height (m) of mid-rises, podiums and towers."""
    house_frontage: tuple[float, float] = (6.0, 11.0)
    """Parcel width range (m) along the street for houses."""
    midrise_frontage: tuple[float, float] = (10.0, 24.0)
    """Parcel width range (m) along the street for mid-rises."""
    midrise_fraction: float = 0.12
    """Probability that a parcel on a narrow street at the city edge holds a mid-rise (higher on
    major roads and towards the centre)."""
    tower_fraction: float = 0.9
    """Probability that a superblock at the centre on an arterial is a tower site (falls linearly
    to 0 at ``tower_radius``, and by the factor ``TOWER_OFF_ARTERIAL`` off arterials)."""
    tower_radius: float = 0.7
    """Distance from the centre, as a fraction of ``size/2``, beyond which there are no towers."""
    tower_height: tuple[float, float] = (60.0, 200.0)
    """Tower height range (m)."""
    large_park_fraction: float = 0.04
    """Probability that a superblock is a park."""
    park_fraction: float = 0.05
    """Probability that a lot is a pocket park."""
    plaza_fraction: float = 0.02
    """Probability that a lot at the city edge is a paved plaza (doubling towards the centre)."""
    park_tree_spacing: float = 8.0
    """Grid spacing (m) of trees in parks (plazas: twice this)."""
    street_tree_spacing: float = 12.0
    """Spacing (m) of street trees on wide sidewalks; 0 for none."""

    def __post_init__(self):
        for name in ("narrow_width", "arterial_spacing", "secondary_spacing", "lot_depth", "lot_length",
                     "house_storeys", "midrise_storeys", "house_frontage", "midrise_frontage", "tower_height"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"CityConfig.{name} must be a range 0 < lo <= hi, got {(lo, hi)}")
        for name in ("arterial", "secondary"):
            spec = getattr(self, name)
            if not (spec.width > 0 and spec.lanes >= 1 and spec.sidewalk >= 0):
                raise ValueError(f"CityConfig.{name} needs width > 0, lanes >= 1, sidewalk >= 0; got {spec}")
        for name in ("midrise_fraction", "tower_fraction", "large_park_fraction", "park_fraction", "plaza_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"CityConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.park_fraction + 2 * self.plaza_fraction > 1:
            raise ValueError("CityConfig.park_fraction + 2 * plaza_fraction must not exceed 1")
        for name in ("storey_height", "office_storey_height", "park_tree_spacing", "narrow_two_lane_width",
                     "tower_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CityConfig.{name} must be positive, got {getattr(self, name)}")
        if self.kerb_height < 0 or self.street_tree_spacing < 0:
            raise ValueError("CityConfig.kerb_height and street_tree_spacing must not be negative")
        if self.tower_height[0] < 2 * TOWER_PODIUM_STOREYS[1] * self.office_storey_height:
            raise ValueError(f"CityConfig.tower_height must start at >= twice the tallest podium "
                             f"({2 * TOWER_PODIUM_STOREYS[1] * self.office_storey_height} m)")
        need = 2 * (self.arterial.width / 2 + self.arterial.sidewalk + MIN_EDGE_BLOCK_M)
        if self.size < need:
            raise ValueError(f"CityConfig.size {self.size} m is too small: an arterial with its edge blocks "
                             f"needs {need:.0f} m")

    @classmethod
    def from_dict(cls, d: dict) -> "CityConfig":
        """The config from ``asdict(config)`` (e.g. a scene's ``meta['config']``); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CityConfig: unknown keys {unknown}; known: {sorted(known)}")
        kw = {k: (RoadSpec(**v) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v)
              for k, v in d.items()}
        return cls(**kw)
