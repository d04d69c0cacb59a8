"""The procedural Tokyo: determinism, layout invariants (roads clear, solids closed, ground
everywhere), a connected road graph on the carriageway, and a Tokyo-like height distribution."""

import json
import zipfile
from dataclasses import asdict

import numpy as np
import pytest
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from vlwm.labels import CityClass
from vlwm.world.city_config import CityConfig, RoadSpec
from vlwm.world.geo import TOKYO_STATION_LATLON
from vlwm.world.procedural import generate_city

SMALL = CityConfig(seed=3, size=260.0)
SKY = 300.0  #: ray origins (m) above every roof
DRIVEABLE = (CityClass.ROAD, CityClass.CROSSWALK)


@pytest.fixture(scope="module")
def small():
    return generate_city(SMALL)


@pytest.fixture(scope="module")
def default_city():
    return generate_city()


def down_from(xy: np.ndarray, z: float = SKY):
    """Origins (n, 3) at height ``z`` over ``xy`` (n, 2) and straight-down directions."""
    o = np.column_stack([xy, np.full(len(xy), z)])
    return o, np.tile([0.0, 0.0, -1.0], (len(xy), 1))


def instance_heights(scene) -> np.ndarray:
    """(I,) highest vertex z (m) of each instance."""
    top = np.full(len(scene.instance_names), -np.inf)
    own = scene.instances >= 0
    np.maximum.at(top, scene.instances[own], scene.vertices[scene.faces[own]][:, :, 2].max(1))
    return top


def instance_bboxes(scene, semantic) -> np.ndarray:
    """(k, 4) xy bounding boxes (xmin, ymin, xmax, ymax) of the instances of ``semantic``."""
    ids = np.flatnonzero(scene.instance_semantics == semantic)
    own = scene.instances >= 0
    inst = scene.instances[own]
    xy = scene.vertices[scene.faces[own]][:, :, :2]
    lo = np.full((len(scene.instance_names), 2), np.inf)
    hi = np.full((len(scene.instance_names), 2), -np.inf)
    np.minimum.at(lo, inst, xy.min(1))
    np.maximum.at(hi, inst, xy.max(1))
    return np.concatenate([lo, hi], 1)[ids]


def points_along_edges(roads, step: float = 1.0) -> np.ndarray:
    """(n, 2) points every ``step`` m along every road-graph edge, ends and midpoints included."""
    a, b = roads.nodes[roads.edges[:, 0], :2], roads.nodes[roads.edges[:, 1], :2]
    pts = [(a + b) / 2]
    for e in range(len(a)):
        n = max(2, int(np.linalg.norm(b[e] - a[e]) / step) + 1)
        pts.append(a[e] + np.linspace(0, 1, n)[:, None] * (b[e] - a[e]))
    return np.concatenate(pts)


def zip_members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


# ------------------------------------------------------------------------------ determinism


def test_same_config_gives_identical_files(tmp_path):
    cfg = CityConfig(seed=11, size=200.0)
    a = generate_city(cfg).save(tmp_path / "a.npz")
    b = generate_city(cfg).save(tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    assert len(zip_members(a)) > 10


def test_other_seed_gives_other_city():
    a, b = generate_city(CityConfig(seed=1, size=200.0)), generate_city(CityConfig(seed=2, size=200.0))
    assert a.vertices.shape != b.vertices.shape or not np.array_equal(a.vertices, b.vertices)
    assert not np.array_equal(a.roads.nodes, b.roads.nodes)


def test_meta_geo_and_config_round_trip(small):
    assert small.meta["source"] == "procedural" and small.meta["generator_version"] == 1
    assert small.meta["config"] == asdict(SMALL)
    assert CityConfig.from_dict(json.loads(json.dumps(small.meta["config"]))) == SMALL
    lat, lon, _ = small.geo.latlon()
    assert lat == pytest.approx(TOKYO_STATION_LATLON[0], abs=1e-7)
    assert lon == pytest.approx(TOKYO_STATION_LATLON[1], abs=1e-7)
    moved = generate_city(CityConfig(seed=3, size=200.0, latitude=35.6586, longitude=139.7454))
    assert moved.geo.latlon()[0] == pytest.approx(35.6586, abs=1e-7)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="size"):
        CityConfig(size=50.0)
    with pytest.raises(ValueError, match="lot_depth"):
        CityConfig(lot_depth=(40.0, 30.0))
    with pytest.raises(ValueError, match="arterial"):
        CityConfig(arterial=RoadSpec(22.0, 0, 5.0))
    with pytest.raises(ValueError, match="unknown keys.*colour"):
        CityConfig.from_dict({"seed": 1, "colour": "red"})


# ------------------------------------------------------------------------------ surfaces and solids


def test_class_mix_and_instances(small):
    present = set(np.unique(small.semantics).tolist())
    for c in (CityClass.ROAD, CityClass.CROSSWALK, CityClass.SIDEWALK, CityClass.BUILDING,
              CityClass.VEGETATION, CityClass.TERRAIN):
        assert c in present, c.name
    assert set(np.unique(small.instance_semantics).tolist()) == {CityClass.BUILDING, CityClass.VEGETATION}
    # Roads and ground belong to no instance; buildings and trees always do, with their own class.
    flat = np.isin(small.semantics, [CityClass.ROAD, CityClass.CROSSWALK, CityClass.SIDEWALK, CityClass.TERRAIN,
                                      CityClass.GRASS])
    assert np.all(small.instances[flat] == -1)
    solid = ~flat
    assert np.all(small.instances[solid] >= 0)
    assert np.array_equal(small.instance_semantics[small.instances[solid]], small.semantics[solid])
    names = small.instance_names[small.instance_semantics == CityClass.BUILDING]
    assert names[0] == "bldg_000000" and len(set(names.tolist())) == len(names)


def test_default_city_has_parks_and_fits_the_budget(default_city):
    present = set(np.unique(default_city.semantics).tolist())
    assert CityClass.GRASS in present
    assert 100_000 <= default_city.num_triangles <= 600_000


def test_every_downward_ray_hits_ground_or_an_object(small):
    half = SMALL.size / 2
    g = np.linspace(-half + 0.37, half - 0.41, 120)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    hits = small.cast(*down_from(xy))
    assert hits.hit.all()
    # Under every hit the column reaches the ground: the last surface is at z ~ 0 (or a kerb).
    below = small.cast(*down_from(xy, 0.5))
    assert below.hit.all()
    assert np.all(np.abs(0.5 - below.distance) <= SMALL.kerb_height + 1e-3)


def test_surfaces_tile_the_city_once(small):
    """Ground-level surfaces (roads, sidewalks, ground) and building floors cover the square exactly
    once: no gaps, no doubled ground under buildings."""
    area = small.triangle_areas()
    up = small.face_normals[:, 2] > 0.99
    down = small.face_normals[:, 2] < -0.99
    ground = (small.instances == -1) & up
    z = small.vertices[small.faces][:, :, 2].max(1)
    floors = (small.semantics == CityClass.BUILDING) & down & (z < 1e-6)
    assert area[ground].sum() + area[floors].sum() == pytest.approx(SMALL.size ** 2, rel=1e-6)
    # Seen from below, building footprints show their floors, not ground.
    centre = small.vertices[small.faces[floors]].mean(1)
    hits = small.cast(centre - [0.0, 0.0, 1.0], np.tile([0.0, 0.0, 1.0], (len(centre), 1)))
    assert np.all(hits.semantic == CityClass.BUILDING)


def test_building_and_tree_solids_are_closed(small):
    ids = np.flatnonzero(small.instance_semantics == CityClass.BUILDING)
    trees = np.flatnonzero(small.instance_semantics == CityClass.VEGETATION)[:20]
    assert len(ids) > 50 and len(trees) > 0
    for i in np.concatenate([ids, trees]):
        faces = small.faces[small.instances == i]
        mesh = trimesh.Trimesh(small.vertices, faces)
        assert mesh.is_watertight and mesh.is_winding_consistent, small.instance_names[i]
        assert mesh.volume > 0, small.instance_names[i]  # wound outwards


def test_instances_do_not_overlap(small):
    box = np.concatenate([instance_bboxes(small, CityClass.BUILDING), instance_bboxes(small, CityClass.VEGETATION)])
    sep = ((box[:, None, 2] <= box[None, :, 0]) | (box[None, :, 2] <= box[:, None, 0])
           | (box[:, None, 3] <= box[None, :, 1]) | (box[None, :, 3] <= box[:, None, 1]))
    np.fill_diagonal(sep, True)
    assert sep.all()


def test_nothing_stands_on_a_road(small):
    """Straight down over the centroid of every road triangle, the first thing hit is that road."""
    road = np.isin(small.semantics, DRIVEABLE)
    centroid = small.vertices[small.faces[road]].mean(1)
    hits = small.cast(*down_from(centroid[:, :2]))
    assert np.all(np.isin(hits.semantic, DRIVEABLE))
    assert np.allclose(SKY - hits.distance, 0.0, atol=1e-3)


@pytest.mark.parametrize("cfg", [
    CityConfig(seed=5, size=200.0, kerb_height=0.0),                                 # flush sidewalks
    CityConfig(seed=6, size=420.0, secondary=RoadSpec(10.0, 2, 0.0), street_tree_spacing=0.0),
])
def test_variants_stay_consistent(cfg):
    scene = generate_city(cfg)
    g = np.linspace(-cfg.size / 2 + 0.29, cfg.size / 2 - 0.31, 80)
    hits = scene.cast(*down_from(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)))
    assert hits.hit.all()
    on_road = scene.cast(*down_from(points_along_edges(scene.roads)))
    assert np.all(np.isin(on_road.semantic, DRIVEABLE))
    n = scene.roads.num_nodes
    adj = coo_matrix((np.ones(scene.roads.num_edges), tuple(scene.roads.edges.T)), shape=(n, n))
    assert connected_components(adj, directed=False)[0] == 1
    if cfg.kerb_height == 0:
        walk = scene.semantics == CityClass.SIDEWALK
        assert walk.any() and np.all(scene.vertices[scene.faces[walk]][:, :, 2] == 0.0)


# ------------------------------------------------------------------------------ road graph


@pytest.mark.parametrize("city", ["small", "default_city"])
def test_road_graph_is_connected(city, request):
    roads = request.getfixturevalue(city).roads
    assert roads.num_nodes > 10
    n = roads.num_nodes
    adj = coo_matrix((np.ones(roads.num_edges), (roads.edges[:, 0], roads.edges[:, 1])), shape=(n, n))
    count, _ = connected_components(adj, directed=False)
    assert count == 1
    assert roads.shortest_path(0, n - 1)[-1] == n - 1


@pytest.mark.parametrize("city", ["small", "default_city"])
def test_road_graph_lies_on_the_carriageway(city, request):
    scene = request.getfixturevalue(city)
    roads = scene.roads
    assert np.all(roads.nodes[:, 2] == 0.0)
    assert np.all(roads.edge_lengths() > 1.0)
    hits = scene.cast(*down_from(points_along_edges(roads)))
    assert np.all(np.isin(hits.semantic, DRIVEABLE))
    assert np.allclose(SKY - hits.distance, 0.0, atol=1e-3)


def test_road_graph_attributes(default_city):
    roads = default_city.roads
    widths = set(np.round(roads.width, 2).tolist())
    assert {22.0, 12.0} <= widths                                   # arterials and secondaries
    narrow = roads.width < 7.0
    assert narrow.any() and np.all((roads.width[narrow] >= 4.0) & (roads.width[narrow] <= 6.0))
    assert np.all(roads.sidewalk[narrow] == 0) and np.all(roads.sidewalk[~narrow] > 0)
    assert np.all(roads.lanes[roads.width == 22.0] == 6) and np.all(np.isin(roads.lanes[narrow], [1, 2]))


# ------------------------------------------------------------------------------ Tokyo-like heights


def test_height_distribution_is_tokyo_like(default_city):
    top = instance_heights(default_city)
    is_bldg = default_city.instance_semantics == CityClass.BUILDING
    h = top[is_bldg]
    assert len(h) > 1000
    assert 6.0 <= np.median(h) <= 20.0
    assert np.mean((h >= 2 * 3.0) & (h <= 6 * 3.5 + 1.2)) > 0.6      # most are 2-6 storeys
    assert h.max() <= 200.0 + 1e-3 and np.count_nonzero(h > 100.0) >= 1
    # Towers cluster near the centre: their distance from it is well below the buildings' median.
    box = instance_bboxes(default_city, CityClass.BUILDING)
    r = np.hypot((box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2)
    assert np.median(r[h > 60.0]) < 0.75 * np.median(r)
