"""Shared sensor-test world: flat ground (a road strip along x, terrain either side) and box buildings."""

import numpy as np
import pytest

from vlwm.labels import CityClass
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.terrain import Terrain

GROUND_HALF = 220.0      # m: the ground square reaches past the lidar range from 150 m altitude
ROAD_HALF_WIDTH = 6.0    # m


def box_city(boxes):
    """The test world with ``boxes`` = [(bottom centre, (length, width, height), yaw)] as buildings."""
    b = SceneBuilder()
    g, r = GROUND_HALF, ROAD_HALF_WIDTH
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    for y0, y1, cls in ((-g, -r, CityClass.TERRAIN), (-r, r, CityClass.ROAD), (r, g, CityClass.TERRAIN)):
        b.add_mesh([[-g, y0, 0], [g, y0, 0], [g, y1, 0], [-g, y1, 0]], quad, cls)
    for i, (centre, size, yaw) in enumerate(boxes):
        b.add_box(centre, size, yaw, CityClass.BUILDING, b.new_instance(f"bldg_{i}", CityClass.BUILDING))
    return b.build(Terrain.flat(0.0, (-g, -g, g, g)), GeoOrigin.at_latlon(35.68, 139.76))


def box_distance(points, box):
    """(n,) unsigned distance (m) of world points to the surface of ``box`` (as in :func:`box_city`)."""
    (cx, cy, cz), (l, w, h), yaw = box
    c, s = np.cos(yaw), np.sin(yaw)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    local = np.stack([c * dx + s * dy, -s * dx + c * dy, points[:, 2] - cz - h / 2], 1)
    q = np.abs(local) - np.array([l, w, h]) / 2
    return np.abs(np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0))


@pytest.fixture(scope="session")
def make_box_city():
    return box_city


@pytest.fixture(scope="session")
def box_surface_distance():
    return box_distance
