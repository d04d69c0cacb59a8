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

Modules: this one holds :func:`generate_city`; :mod:`vlwm.world.city_config` the config it takes
(:class:`~vlwm.world.city_config.CityConfig`, imported here too); :mod:`vlwm.world.city_layout` lays
out the streets (1, and the cutting of 2), :mod:`vlwm.world.city_buildings` fills tower sites,
parks and lots (2, 3) and :mod:`vlwm.world.city_surfaces` turns it all into triangles.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from vlwm.world.city_buildings import BlockFiller
from vlwm.world.city_config import CityConfig
from vlwm.world.city_layout import StreetLayout, road_graph
from vlwm.world.city_surfaces import GROUND_Z, CitySurfaces
from vlwm.world.geo import GeoOrigin
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain

__all__ = ["CityConfig", "generate_city"]

GENERATOR_VERSION = 1


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
