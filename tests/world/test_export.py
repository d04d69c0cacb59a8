"""Scene export: OBJ/GLB/DAE meshes with per-label materials, and the gz-sim world folder.

Gazebo cannot be installed here, so the world is checked by parsing what it would parse: SDF
versions, plugin attributes, the geo-origin, and that every ``model://`` URI resolves to a file
under ``out_dir/models`` (what ``GZ_SIM_RESOURCE_PATH=out_dir/models`` gives gz-sim).
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import trimesh
from lxml import etree

import vlwm.world.export as export
from vlwm.labels import OCC3D_ID, OCC3D_PALETTE, CityClass, LabelMap
from vlwm.world.builder import SceneBuilder, box_mesh
from vlwm.world.export import ENU_TO_GLTF, GZ_WORLD_SYSTEMS, export_gazebo, export_mesh
from vlwm.world.geo import GeoOrigin
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain

LAT, LON, HEIGHT = 35.68, 139.76, 40.0
COLLADA = {"c": "http://www.collada.org/2005/11/COLLADASchema"}


@pytest.fixture(scope="module")
def scene() -> Scene:
    """Two buildings and a pole (all 'manmade'), a tree, a yawed car, a road and the ground."""
    b = SceneBuilder()
    b.add_prism(np.array([[0, 0], [10, 0], [10, 8], [0, 8]]), 0.0, 12.0, CityClass.BUILDING,
                b.new_instance("bldg_0", CityClass.BUILDING))
    b.add_prism(np.array([[15, 0], [25, 0], [25, 4], [19, 4], [19, 9], [15, 9]]), 0.0, 21.5, CityClass.BUILDING,
                b.new_instance("bldg_1", CityClass.BUILDING))
    b.add_box((-5, 12, 0), (0.3, 0.3, 6), 0.0, CityClass.POLE)
    b.add_box((30, 20, 0), (3, 3, 7), 0.4, CityClass.VEGETATION, b.new_instance("tree", CityClass.VEGETATION))
    b.add_box((5, -12, 0), (4.5, 1.8, 1.5), 0.3, CityClass.CAR, b.new_instance("car", CityClass.CAR))
    b.add_mesh([[-40, -16, 0.01], [40, -16, 0.01], [40, -8, 0.01], [-40, -8, 0.01]], [[0, 1, 2], [0, 2, 3]],
               CityClass.ROAD)
    b.add_mesh([[-40, -40, 0], [40, -40, 0], [40, 40, 0], [-40, 40, 0]], [[0, 1, 2], [0, 2, 3]], CityClass.TERRAIN)
    return b.build(Terrain.flat(0.0, (-40, -40, 40, 40)), GeoOrigin.at_latlon(LAT, LON, HEIGHT),
                   meta={"source": "test"})


def _label_faces(scene: Scene, name: str) -> np.ndarray:
    return scene.faces[scene.classes == OCC3D_ID[name]]


def _present(scene: Scene) -> set[str]:
    return {scene.label_map.names[c] for c in np.unique(scene.classes)}


# ------------------------------------------------------------------------------ meshes


def test_obj_round_trip(scene, tmp_path):
    path = export_mesh(scene, tmp_path / "city.obj")
    lines = path.read_text().splitlines()
    assert "mtllib city.mtl" in lines and (tmp_path / "city.mtl").is_file()
    assert sum(line.startswith("v ") for line in lines) == len(scene.vertices)
    loaded = trimesh.load(path, process=False)
    assert set(loaded.geometry) == _present(scene) == {"manmade", "vegetation", "car", "driveable_surface",
                                                       "terrain"}
    assert sum(len(g.faces) for g in loaded.geometry.values()) == scene.num_triangles
    assert len(loaded.geometry["manmade"].faces) == np.count_nonzero(scene.classes == OCC3D_ID["manmade"])
    for name, geom in loaded.geometry.items():
        mask = scene.classes == OCC3D_ID[name]
        # Same triangles, in scene order, with the flat face normal at every corner.
        np.testing.assert_allclose(geom.vertices[geom.faces], scene.vertices[scene.faces[mask]], atol=1e-5)
        np.testing.assert_allclose(geom.vertex_normals[geom.faces],
                                   np.repeat(scene.face_normals[mask][:, None], 3, axis=1), atol=1e-5)
        np.testing.assert_allclose(geom.visual.material.diffuse[:3], OCC3D_PALETTE[OCC3D_ID[name]], atol=1)
    np.testing.assert_allclose(loaded.bounds, scene.bounds, atol=1e-4)


def test_glb_round_trip(scene, tmp_path):
    path = export_mesh(scene, tmp_path / "city.glb")
    loaded = trimesh.load(path, process=False)
    assert set(loaded.geometry) == _present(scene)
    # Each label keeps only its own vertices; no vertex of this scene is shared between labels.
    assert sum(len(g.vertices) for g in loaded.geometry.values()) == len(scene.vertices)
    assert sum(len(g.faces) for g in loaded.geometry.values()) == scene.num_triangles
    for name, geom in loaded.geometry.items():
        tris = scene.vertices[_label_faces(scene, name)]
        np.testing.assert_array_equal(geom.vertices[geom.faces].astype(np.float32), tris)
        np.testing.assert_array_equal(geom.visual.material.baseColorFactor, np.r_[OCC3D_PALETTE[OCC3D_ID[name]], 255])
        # Vertices stay in ENU; one root node turns them into glTF's y-up frame.
        np.testing.assert_allclose(loaded.graph[name][0], ENU_TO_GLTF)
    raw = np.concatenate([g.vertices for g in loaded.geometry.values()])
    np.testing.assert_allclose([raw.min(0), raw.max(0)], scene.bounds, atol=1e-4)
    assert loaded.metadata["geo_origin"] == scene.geo.to_dict()


def test_dae_structure(scene, tmp_path):
    path = export_mesh(scene, tmp_path / "city.dae")
    root = ET.parse(path).getroot()
    assert root.findtext("c:asset/c:up_axis", namespaces=COLLADA) == "Z_UP"
    assert root.find("c:asset/c:unit", COLLADA).get("meter") == "1"
    arrays = {a.get("id"): np.array(a.text.split(), float).reshape(-1, 3)
              for a in root.iterfind(".//c:float_array", COLLADA)}
    positions, normals = arrays["city-positions-array"], arrays["city-normals-array"]
    np.testing.assert_allclose(positions, scene.vertices, atol=1e-5)
    material_ids = {m.get("id") for m in root.iterfind(".//c:library_materials/c:material", COLLADA)}
    bound = {m.get("symbol"): m.get("target") for m in root.iterfind(".//c:instance_material", COLLADA)}
    seen = set()
    for tris in root.iterfind(".//c:triangles", COLLADA):
        name = tris.get("material")
        seen.add(name)
        assert bound[name].lstrip("#") in material_ids
        p = np.array(tris.findtext("c:p", namespaces=COLLADA).split(), int).reshape(-1, 6)
        assert int(tris.get("count")) == len(p)
        np.testing.assert_array_equal(p[:, 0::2], _label_faces(scene, name))
        np.testing.assert_allclose(normals[p[:, 1]], scene.face_normals[scene.classes == OCC3D_ID[name]], atol=1e-5)
    assert seen == _present(scene)


def test_format_given_without_suffix(scene, tmp_path):
    path = export_mesh(scene, tmp_path / "city_mesh", format="GLB")
    assert path == tmp_path / "city_mesh"
    loaded = trimesh.load(path, file_type="glb", process=False)
    assert sum(len(g.faces) for g in loaded.geometry.values()) == scene.num_triangles


def test_bad_requests_are_clear_errors(scene, tmp_path):
    with pytest.raises(ValueError, match="unknown mesh format 'stl'"):
        export_mesh(scene, tmp_path / "a.obj", format="stl")
    with pytest.raises(ValueError, match=r"cannot infer.*'\.ply'"):
        export_mesh(scene, tmp_path / "a.ply")
    with pytest.raises(ValueError, match="contradicts"):
        export_mesh(scene, tmp_path / "a.obj", format="glb")
    with pytest.raises(ValueError, match="'glb' not supported"):
        export_gazebo(scene, tmp_path, mesh_format="glb")
    with pytest.raises(ValueError, match="model name"):
        export_gazebo(scene, tmp_path, model_name="my city")
    empty = SceneBuilder().build(Terrain.flat(), scene.geo)
    with pytest.raises(ValueError, match="no triangles"):
        export_mesh(empty, tmp_path / "e.obj")
    custom = scene.with_label_map(LabelMap.from_mapping({c: "thing" for c in CityClass}, names=("thing", "free")))
    with pytest.raises(ValueError, match="thing.*OCC3D_PALETTE"):
        export_mesh(custom, tmp_path / "c.glb")
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_old_file_and_no_temp(scene, tmp_path, monkeypatch):
    path = tmp_path / "city.obj"
    path.write_text("previous export\n")

    def broken(row_format, rows):
        yield "v 0 0 0\n"
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_format_rows", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_mesh(scene, path)
    assert path.read_text() == "previous export\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_large_scene_exports_whole(tmp_path, monkeypatch):
    """12k triangles in all three formats: the chunked writers lose and duplicate nothing."""
    monkeypatch.setattr(export, "_CHUNK_ROWS", 997)  # many chunks, the last one partial
    n = 1_000
    v, f = box_mesh((0, 0, 0), (1, 1, 1))
    offsets = np.c_[np.arange(n) % 100 * 3.0, np.arange(n) // 100 * 3.0, np.zeros(n)]
    scene = Scene(vertices=(v[None] + offsets[:, None]).reshape(-1, 3),
                  faces=(f[None] + 8 * np.arange(n)[:, None, None]).reshape(-1, 3),
                  semantics=np.repeat(np.arange(n) % 3 + CityClass.BUILDING, 12).astype(np.uint8),
                  instances=np.full(12 * n, -1), instance_names=[], instance_semantics=[],
                  terrain=Terrain.flat(), geo=GeoOrigin.at_latlon(LAT, LON))
    for fmt in ("obj", "glb", "dae"):
        export_mesh(scene, tmp_path / f"big.{fmt}")
    obj_faces = sum(1 for line in (tmp_path / "big.obj").read_text().splitlines() if line.startswith("f "))
    assert obj_faces == 12 * n
    loaded = trimesh.load(tmp_path / "big.glb", process=False)
    assert sum(len(g.faces) for g in loaded.geometry.values()) == 12 * n


# ------------------------------------------------------------------------------ Gazebo


def _resolve_model_uri(uri: str, models: Path) -> Path:
    assert uri.startswith("model://"), uri
    return models / uri[len("model://"):]


@pytest.mark.parametrize("mesh_format", ["obj", "dae"])
def test_gazebo_world_folder(scene, tmp_path, mesh_format):
    out = tmp_path / "gz"
    world_path = export_gazebo(scene, out, model_name="tokyo", mesh_format=mesh_format)
    models = out / "models"
    assert world_path == out / "world.sdf"
    assert world_path.read_text().startswith('<?xml version="1.0"?>\n<sdf version="1.9">')

    sdf = etree.parse(str(world_path)).getroot()
    assert sdf.tag == "sdf" and sdf.get("version") == "1.9"
    comments = " ".join(c.text for c in sdf.iter(etree.Comment))
    assert "GZ_SIM_RESOURCE_PATH" in comments and "JGD2011" in comments
    world = sdf.find("world")
    assert world.get("name") == "tokyo"

    plugins = world.findall("plugin")
    assert all(p.get("filename") and p.get("name") for p in plugins)
    assert {(p.get("filename"), p.get("name")) for p in plugins} == set(GZ_WORLD_SYSTEMS)
    assert world.findtext("plugin[@name='gz::sim::systems::Sensors']/render_engine") == "ogre2"
    assert float(world.findtext("physics/max_step_size")) == 0.001
    assert float(world.findtext("physics/real_time_factor")) == 1.0
    assert [float(g) for g in world.findtext("gravity").split()] == pytest.approx([0, 0, -9.80665])
    assert world.find("light[@name='sun']").get("type") == "directional"

    sph = world.find("spherical_coordinates")
    assert sph.findtext("surface_model") == "EARTH_WGS84"
    assert sph.findtext("world_frame_orientation") == "ENU"
    lat, lon, height = scene.geo.latlon()
    assert float(sph.findtext("latitude_deg")) == pytest.approx(lat, abs=1e-7) == pytest.approx(LAT, abs=1e-7)
    assert float(sph.findtext("longitude_deg")) == pytest.approx(lon, abs=1e-7) == pytest.approx(LON, abs=1e-7)
    assert float(sph.findtext("elevation")) == height == HEIGHT
    assert float(sph.findtext("heading_deg")) == 0.0

    model_dir = _resolve_model_uri(world.findtext("include/uri"), models)
    assert model_dir == models / "tokyo" and model_dir.is_dir()
    config = etree.parse(str(model_dir / "model.config")).getroot()
    assert config.findtext("name") == "tokyo"
    assert (model_dir / config.findtext("sdf")).is_file() and config.find("sdf").get("version") == "1.9"

    model_sdf = etree.parse(str(model_dir / "model.sdf")).getroot()
    assert model_sdf.get("version") == "1.9"
    model = model_sdf.find("model")
    assert model.get("name") == "tokyo" and model.findtext("static") == "true"
    uris = {tag: model.findtext(f"link/{tag}/geometry/mesh/uri") for tag in ("visual", "collision")}
    assert None not in uris.values() and len(set(uris.values())) == 1
    mesh = _resolve_model_uri(uris["visual"], models)
    assert mesh.is_file() and mesh.suffix == f".{mesh_format}"
    assert models in mesh.resolve().parents
    if mesh_format == "obj":
        assert mesh.with_suffix(".mtl").is_file()
        loaded = trimesh.load(mesh, process=False)
        assert sum(len(g.faces) for g in loaded.geometry.values()) == scene.num_triangles
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
