"""Scene container: persistence, merging, summaries, terrain, road graph and label mapping."""

import json

import numpy as np
import pytest

from vlwm.labels import DEFAULT_LABEL_MAP, FREE, OCC3D_ID, CityClass, LabelMap
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin, geographic_to_projected, plane_rectangular_zone
from vlwm.world.roads import RoadGraph
from vlwm.world.scene import Scene, merge_scenes
from vlwm.world.terrain import Terrain


def two_building_scene(offset=0.0, name="a"):
    b = SceneBuilder()
    for i in range(2):
        inst = b.new_instance(f"{name}_{i}", CityClass.BUILDING)
        b.add_prism(np.array([[0, 0], [10, 0], [10, 8], [0, 8]]) + [offset + 20 * i, 0], 0.0, 12.0 + i,
                    CityClass.BUILDING, inst)
    b.add_box((offset, -20, 0), (4, 2, 1.5), 0.0, CityClass.CAR, b.new_instance("car", CityClass.CAR))
    roads = RoadGraph(nodes=[[offset, -20, 0], [offset + 50, -20, 0]], edges=[[0, 1]], width=[8], lanes=[2],
                      sidewalk=[2])
    return b.build(Terrain.flat(0.0, (-100, -100, 100, 100)), GeoOrigin.at_latlon(35.68, 139.76), roads,
                   meta={"source": "test"})


def test_save_load_round_trip(tmp_path):
    scene = two_building_scene()
    path = scene.save(tmp_path / "s.npz")
    back = Scene.load(path)
    for attr in ("vertices", "faces", "semantics", "instances", "instance_names", "instance_semantics"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(scene, attr))
    np.testing.assert_array_equal(back.terrain.heights, scene.terrain.heights)
    np.testing.assert_array_equal(back.roads.edges, scene.roads.edges)
    assert back.geo == scene.geo and back.meta == scene.meta
    np.testing.assert_array_equal(back.classes, scene.classes)
    # Re-saving a loaded scene is byte-identical: the format has no hidden state.
    assert back.save(tmp_path / "t.npz").read_bytes() == path.read_bytes()


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        Scene.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="bad.npz"):
        Scene.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz.*not a valid vlwm scene"):
        Scene.load(other)


def test_info_counts():
    info = two_building_scene().info()
    assert info["buildings"] == 2 and info["instances"] == 3
    assert info["triangles"] == 2 * 12 + 12
    assert info["building_height_range"] == [0.0, 13.0]
    assert info["triangles_per_city_class"] == {"building": 24, "car": 12}
    assert info["triangles_per_label"] == {"car": 12, "manmade": 24}
    json.dumps(info)


def test_merge_renumbers_instances_and_roads():
    a, b = two_building_scene(0, "a"), two_building_scene(200, "b")
    m = merge_scenes([a, b])
    assert m.num_triangles == a.num_triangles + b.num_triangles
    assert m.num_buildings == 4 and list(m.instance_names[3:5]) == ["b_0", "b_1"]
    # Instances of b's triangles point at b's names after renumbering.
    tail = m.instances[a.num_triangles:]
    np.testing.assert_array_equal(m.instance_names[tail], b.instance_names[b.instances])
    np.testing.assert_array_equal(m.roads.edges, [[0, 1], [2, 3]])
    h = m.cast([[205, 4, 50]], [[0, 0, -1]])
    assert m.instance_names[h.instance[0]] == "b_0" and h.distance[0] == pytest.approx(38.0, abs=1e-4)


def test_merge_refuses_different_origins():
    a = two_building_scene()
    b = Scene(**{**{k: getattr(a, k) for k in ("vertices", "faces", "semantics", "instances", "instance_names",
                                               "instance_semantics", "terrain", "roads")},
                 "geo": GeoOrigin.at_latlon(35.0, 139.0)})
    with pytest.raises(ValueError, match="different geo-origins"):
        merge_scenes([a, b])


def test_custom_label_map_changes_classes_only():
    scene = two_building_scene()
    mapping = {c: "others" for c in CityClass}
    mapping[CityClass.CAR] = "truck"
    remapped = scene.with_label_map(LabelMap.from_mapping(mapping))
    assert set(np.unique(remapped.classes)) == {0, OCC3D_ID["truck"]}
    np.testing.assert_array_equal(remapped.semantics, scene.semantics)


def test_label_map_validation():
    with pytest.raises(ValueError, match="without a label"):
        LabelMap.from_mapping({CityClass.ROAD: "driveable_surface"})
    with pytest.raises(ValueError, match="not one of"):
        LabelMap.from_mapping({c: "lava" for c in CityClass})
    with pytest.raises(ValueError, match="unknown city class"):
        LabelMap.from_mapping({"spaceship": "others"})
    assert DEFAULT_LABEL_MAP.free == FREE
    assert DEFAULT_LABEL_MAP(np.array([CityClass.BUILDING, CityClass.ROAD, CityClass.DRONE])).tolist() == [15, 11, 0]


def test_terrain_bilinear_and_clamped():
    t = Terrain(0.0, 0.0, 10.0, np.array([[0.0, 10.0], [20.0, 30.0]]))
    assert t.height(5, 5) == pytest.approx(15.0)
    assert t.height(0, 10) == pytest.approx(20.0)
    assert t.height(-100, -100) == pytest.approx(0.0) and t.height(1e4, 1e4) == pytest.approx(30.0)
    v, f = t.mesh()
    assert v.shape == (4, 3) and f.shape == (2, 3)
    with pytest.raises(ValueError, match="NaN"):
        Terrain(0, 0, 1, np.array([[np.nan]]))


def test_road_graph_shortest_path():
    g = RoadGraph(nodes=[[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0], [50, 50, 0]],
                  edges=[[0, 1], [1, 2], [2, 3], [3, 0]], width=[6] * 4, lanes=[2] * 4, sidewalk=[1] * 4)
    assert g.shortest_path(0, 2) in ([0, 1, 2], [0, 3, 2])
    assert g.nearest_node([9, 9]) == 2
    with pytest.raises(ValueError, match="no road route"):
        g.shortest_path(0, 4)
    with pytest.raises(ValueError, match="width"):
        RoadGraph(nodes=[[0, 0, 0], [1, 0, 0]], edges=[[0, 1]], width=[1, 2], lanes=[1], sidewalk=[0])


def test_plane_rectangular_zones():
    assert plane_rectangular_zone(35.68, 139.77) == 6677  # Tokyo: zone IX
    assert plane_rectangular_zone(35.80, 137.98) == 6676  # Nagano: zone VIII
    assert plane_rectangular_zone(34.69, 135.50) == 6674  # Osaka: zone VI
    # The zone IX origin (36 N, 139 50' E) projects to (0, 0).
    e, n = geographic_to_projected(36.0, 139 + 50 / 60, 6677)
    assert abs(float(e)) < 1e-6 and abs(float(n)) < 1e-6
    g = GeoOrigin.at_latlon(35.681236, 139.767125)
    lat, lon, _ = g.latlon()
    assert lat == pytest.approx(35.681236, abs=1e-9) and lon == pytest.approx(139.767125, abs=1e-9)
    with pytest.raises(ValueError, match="outside Japan"):
        plane_rectangular_zone(48.85, 2.35)
