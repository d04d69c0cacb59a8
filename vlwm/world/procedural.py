"""Procedural Tokyo-like city: the project's embedded default world (nothing to download).

Layout, in the local ENU frame (x east, y north, z up, metres) over the square
``[-size/2, size/2]²`` with flat ground at ``z = 0``:

1. **Major roads** run across the whole city on both axes: arterials (22 m carriageway, 6 lanes,
   5 m sidewalks) every 350–500 m with one near the centre, and secondary roads (12 m, 4 lanes,
   3 m sidewalks) every 110–170 m between them.  They cut the city into *superblocks*.
2. A superblock becomes a **tower site** (likeliest at the centre and on arterials: one or two
   towers of 60–200 m on podiums, with stepped crowns, in a paved plaza), a **park** (grass,
   trees, a paved square) or — mostly — an **urban block** that narrow streets (4–6 m, 1–2
   lanes, no sidewalk) cut into lots of 28–45 m × 55–100 m.  Narrow streets end in T-junctions
   on the major roads, offset from one superblock to the next as in Tokyo.
3. A lot holds one or two rows of parcels facing its streets; each parcel gets a house (2–3
   storeys of 3 m, small, dense) or a mid-rise (4–10 storeys of 3.5 m, likelier on major roads
   and near the centre), some L-shaped.  A few lots are pocket parks or paved plazas.

Surfaces partition the square exactly, so a ray pointing down anywhere hits something:
carriageways (ROAD at ``z = 0``; CROSSWALK where a major road crosses a sidewalk line),
sidewalks (SIDEWALK, closed slabs raised ``kerb_height`` above the road; where a narrow street
meets a major road the sidewalk is cut and the carriageway runs through), and lot ground flush at
``z = 0`` (TERRAIN; GRASS in parks; SIDEWALK in plazas and tower forecourts) with the building
footprints cut out.  Buildings (``bldg_000123``) and trees (``tree_000045``) are instances made
of closed, outward-wound solids; roads and ground belong to no instance (-1).  The road graph
follows the carriageway centrelines.

Same config -> identical scene: one ``np.random.default_rng(seed)`` makes every draw, in a fixed
order.

Modules: this one holds the config and :func:`generate_city`; :mod:`vlwm.world.city_layout` lays
out the streets (1, and the cutting of 2), :mod:`vlwm.world.city_buildings` fills tower sites,
parks and lots (2, 3) and :mod:`vlwm.world.city_surfaces` turns it all into triangles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from vlwm.world.city_buildings import TOWER_PODIUM_STOREYS, BlockFiller
from vlwm.world.city_layout import MIN_EDGE_BLOCK_M, RoadSpec, StreetLayout, road_graph
from vlwm.world.city_surfaces import GROUND_Z, CitySurfaces
from vlwm.world.geo import TOKYO_STATION_LATLON, GeoOrigin
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain

__all__ = ["CityConfig", "RoadSpec", "generate_city"]

GENERATOR_VERSION = 1


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


def generate_city(config: CityConfig = CityConfig()) -> Scene:
    """A seeded Tokyo-like city: roads, sidewalks, blocks of buildings, parks, trees, road graph.

    Deterministic: the same ``config`` gives a byte-identical scene.
    """
    rng = np.random.default_rng(config.seed)
    half = config.size / 2
    surfaces = CitySurfaces(config.kerb_height)
    streets = StreetLayout(config, rng, surfaces, BlockFiller(config, rng, surfaces, half))
    lines = streets.lay_out()
    return surfaces.build(
        terrain=Terrain.flat(GROUND_Z, (-half, -half, half, half)),
        geo=GeoOrigin.at_latlon(config.latitude, config.longitude),
        roads=road_graph(lines),
        meta={"source": "procedural", "config": asdict(config), "generator_version": GENERATOR_VERSION},
    )
