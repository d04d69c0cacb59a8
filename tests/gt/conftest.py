"""Tiny seeded worlds for the ground-truth tests: a 120 m square of road and terrain at z = 0, three
box buildings (one of two tiers), a tree, and a 40 x 40 x 20 grid of 0.5 m voxels around them."""

from types import SimpleNamespace

import numpy as np
import pytest

from vlwm.gt.grid import GridSpec
from vlwm.gt.priority import priority_ranks
from vlwm.labels import OCC3D_CLASS_NAMES, CityClass
from vlwm.world.builder import SceneBuilder, cylinder_mesh, ellipsoid_mesh
from vlwm.world.geo import GeoOrigin
from vlwm.world.terrain import Terrain

GROUND_HALF = 60.0   # m
ROAD_HALF = 4.0      # m: the road strip |y| < 4
#: Buildings: (bottom centre, (length, width, height), yaw); the last two are one two-tier instance.
BUILDINGS = [((6.0, 6.0, 0.0), (4.0, 3.0, 5.0), 0.3), ((-5.0, -6.0, 0.0), (5.0, 4.0, 3.0), 0.0)]
TIERED = [((4.0, -7.0, 0.0), (6.0, 4.0, 2.0), 0.0), ((4.0, -7.0, 2.0), (2.0, 2.0, 6.0), 0.0)]
TREE = (-6.0, 5.0)   # m: trunk foot
#: 40 x 40 x 20 voxels of 0.5 m; the ground (z = 0) lies mid-layer (voxel k = 2 spans [-0.25, 0.25]).
SPEC = GridSpec((-10.0, -10.0, -1.25, 10.0, 10.0, 8.75), (0.5, 0.5, 0.5))


def build_city(extra_boxes=()):
    """The tiny city; ``extra_boxes`` = [(centre, size, yaw, CityClass, instance name)], e.g. actors frozen
    at one time."""
    b = SceneBuilder()
    g, r = GROUND_HALF, ROAD_HALF
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    for y0, y1, cls in ((-g, -r, CityClass.TERRAIN), (-r, r, CityClass.ROAD), (r, g, CityClass.TERRAIN)):
        b.add_mesh([[-g, y0, 0], [g, y0, 0], [g, y1, 0], [-g, y1, 0]], quad, cls)
    for i, (centre, size, yaw) in enumerate(BUILDINGS):
        b.add_box(centre, size, yaw, CityClass.BUILDING, b.new_instance(f"bldg_{i}", CityClass.BUILDING))
    tiered = b.new_instance("bldg_tiered", CityClass.BUILDING)
    for centre, size, yaw in TIERED:
        b.add_box(centre, size, yaw, CityClass.BUILDING, tiered)
    tree = b.new_instance("tree_0", CityClass.VEGETATION)
    b.add_mesh(*cylinder_mesh((*TREE, 0.0), 0.2, 2.5, segments=6), CityClass.VEGETATION, tree)
    b.add_mesh(*ellipsoid_mesh((*TREE, 3.5), (1.5, 1.5, 1.2)), CityClass.VEGETATION, tree)
    for centre, size, yaw, cls, name in extra_boxes:
        b.add_box(centre, size, yaw, cls, b.new_instance(name, cls))
    return b.build(Terrain.flat(0.0, (-g, -g, g, g)), GeoOrigin.at_latlon(35.68, 139.76))


@pytest.fixture(scope="session")
def tiny():
    """The tiny city, its grid, and the Occ3D priority ranks."""
    return SimpleNamespace(scene=build_city(), spec=SPEC, ranks=priority_ranks(OCC3D_CLASS_NAMES),
                           build_city=build_city, buildings=BUILDINGS, tiered=TIERED, tree=TREE,
                           road_half=ROAD_HALF)
