"""PLATEAU CityGML import: real tiles (counts, heights, georeferencing, ground) and crafted edge cases.

The real files live in ``<repo>/../shared/data/plateau`` (see its README.md); the roads,
vegetation and relief cases use small schema-correct snippets written here, with the namespaces
PLATEAU files declare.
"""

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from pyproj import Transformer

from tests.helpers.shared import require_path
from vlwm.labels import CityClass
from vlwm.world.citygml import PlateauImportConfig, load_plateau
from vlwm.world.geo import GeoOrigin
from vlwm.world.scene import NO_INSTANCE

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "plateau"
CHIYODA = DATA / "13101_chiyoda_bldg_lod2_single.gml"
NW_TOKYO = DATA / "53395404_bldg_6697_op.gml"
NAGANO = DATA / "53375768_bldg_6697_op.gml"
TOWER_ID = "BLD_6388028d-f1d9-4c57-a4e7-a73acd0d7290"
TOWER_HEIGHT = 114.7       # its bldg:measuredHeight, m
TOWER_LOD1_HEIGHT = 38.71  # extent of its lod1Solid, m

GML = "http://www.opengis.net/gml"
BLDG = "http://www.opengis.net/citygml/building/2.0"


@pytest.fixture(scope="session")
def plateau_files():
    """The three real tiles; missing ones skip the test (fail it under CI, see tests/helpers/shared.py)."""
    for path in (CHIYODA, NW_TOKYO, NAGANO):
        require_path(path.resolve(), "PLATEAU sample file")


needs_data = pytest.mark.usefixtures("plateau_files")


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def chiyoda():
    return load_plateau([CHIYODA])


@pytest.fixture(scope="module")
def nw_tokyo():
    return load_plateau([NW_TOKYO])


@pytest.fixture(scope="module")
def nagano():
    return load_plateau([NAGANO])


def instance_vertices(scene, name):
    """(n, 3) local vertices of the triangles of instance ``name``."""
    i = int(np.flatnonzero(scene.instance_names == name)[0])
    return scene.vertices[np.unique(scene.faces[scene.instances == i])].astype(np.float64)


def poslists(path, xpath):
    """(n, 3) float64 (lat, lon, h) of every posList under ``xpath`` elements of ``path``, read with lxml."""
    tree = etree.parse(str(path))
    ns = {"gml": GML, "bldg": BLDG}
    texts = [p.text for el in tree.xpath(xpath, namespaces=ns) for p in el.iter(f"{{{GML}}}posList")]
    return np.array(" ".join(texts).split(), dtype=np.float64).reshape(-1, 3)


def building_measured_heights(path):
    tree = etree.parse(str(path))
    return {b.get(f"{{{GML}}}id"): float(b.findtext(f"{{{BLDG}}}measuredHeight"))
            for b in tree.iter(f"{{{BLDG}}}Building")}


# ------------------------------------------------------------------------------ real tiles


@needs_data
def test_building_counts(chiyoda, nw_tokyo, nagano):
    for scene, n, lod in ((chiyoda, 1, "2"), (nw_tokyo, 657, "1"), (nagano, 329, "1")):
        report = scene.meta["import"]
        assert scene.num_buildings == n and report["buildings"] == n
        assert report["buildings_per_lod"] == {lod: n}
        assert report["skipped"] == [] and report["degenerate_polygons"] == 0
        assert scene.meta["source"] == "plateau" and len(scene.meta["files"]) == 1
        json.dumps(scene.meta)  # provenance must be JSON-ready
        # One instance per building, named by its gml:id, every building triangle in one.
        building = scene.semantics == CityClass.BUILDING
        assert np.all(scene.instances[building] >= 0)
        assert np.all(scene.instance_semantics == CityClass.BUILDING)
        assert np.all(scene.instances[scene.semantics == CityClass.TERRAIN] == NO_INSTANCE)
    assert set(nw_tokyo.instance_names) == set(building_measured_heights(NW_TOKYO))


@needs_data
def test_tower_lod2_height_and_lod1_fallback(chiyoda):
    z = instance_vertices(chiyoda, TOWER_ID)[:, 2]
    assert abs((z.max() - z.min()) - TOWER_HEIGHT) < 1.0
    lod1 = load_plateau([CHIYODA], PlateauImportConfig(lod_preference=(1,)))
    z1 = instance_vertices(lod1, TOWER_ID)[:, 2]
    assert lod1.meta["import"]["buildings_per_lod"] == {"1": 1}
    assert abs((z1.max() - z1.min()) - TOWER_LOD1_HEIGHT) < 0.1
    # LOD0 only: the roof edge extruded down by measuredHeight.
    lod0 = load_plateau([CHIYODA], PlateauImportConfig(lod_preference=(0,)))
    z0 = instance_vertices(lod0, TOWER_ID)[:, 2]
    assert abs((z0.max() - z0.min()) - TOWER_HEIGHT) < 1e-3


@needs_data
def test_solids_closed_and_wound_outwards(chiyoda, nw_tokyo):
    """Every building is a closed surface (normals cancel) enclosing a positive volume."""
    for scene in (chiyoda, nw_tokyo):
        for i in range(len(scene.instance_names)):
            tri = scene.vertices[scene.faces[scene.instances == i]].astype(np.float64)
            tri -= tri.reshape(-1, 3).mean(0)
            cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            area = 0.5 * np.linalg.norm(cross, axis=1).sum()
            assert np.linalg.norm(cross.sum(0)) / 2 < 1e-3 * area
            assert np.einsum("ij,ij->i", tri[:, 0], cross).sum() / 6 > 0


@needs_data
def test_lod1_solids_keep_their_own_geometry(nw_tokyo):
    """The extent of each LOD1 solid is the data's, not measuredHeight (which differs by ~0.7 m)."""
    heights = building_measured_heights(NW_TOKYO)
    diff = np.array([np.ptp(instance_vertices(nw_tokyo, name)[:, 2]) - h for name, h in heights.items()])
    assert 0.3 < np.median(np.abs(diff)) < 1.2
    assert np.mean(np.abs(diff) < 1e-3) < 0.2


@needs_data
def test_georeferencing_matches_independent_pyproj(chiyoda):
    assert chiyoda.geo.epsg == 6677 and chiyoda.geo.source_epsg == 6697
    llh = poslists(CHIYODA, "//bldg:boundedBy")  # the LOD2 surfaces the scene holds
    east, north = Transformer.from_crs("EPSG:6697", "EPSG:6677", always_xy=True).transform(llh[:, 1], llh[:, 0])
    expected = np.column_stack([east, north, llh[:, 2]])
    got = instance_vertices(chiyoda, TOWER_ID) + np.asarray(chiyoda.geo.origin)
    np.testing.assert_allclose(got.min(0), expected.min(0), atol=0.01)
    np.testing.assert_allclose(got.max(0), expected.max(0), atol=0.01)
    np.testing.assert_allclose((got.min(0) + got.max(0)) / 2, (expected.min(0) + expected.max(0)) / 2, atol=0.01)
    # The origin is the centre of the file's envelope; its height the tower's ground.
    lat, lon, _ = chiyoda.geo.latlon()
    assert abs(lat - (35.6745024961797 + 35.683338686491325) / 2) < 1e-6
    assert abs(lon - (139.74952568294003 + 139.7628945026216) / 2) < 1e-6
    assert abs(chiyoda.geo.origin[2] - expected[:, 2].min()) < 0.01


@needs_data
def test_nagano_zone_and_local_ground(nagano, nw_tokyo):
    assert nw_tokyo.geo.epsg == 6677 and nagano.geo.epsg == 6676
    # Origin height = median building ground, computed here from the LOD1 solids.  (The README's
    # "~668 m" is the tile's lowest ground, its envelope's lowerCorner; the median is ~684 m.)
    tree = etree.parse(str(NAGANO))
    bases = [min(float(v) for p in b.iter(f"{{{GML}}}posList") for v in p.text.split()[2::3])
             for b in tree.iter(f"{{{BLDG}}}lod1Solid")]
    assert abs(nagano.geo.origin[2] - np.median(bases)) < 0.01
    assert 667.8 <= nagano.geo.origin[2] <= 699.4
    # Local ground: the height field under each building is its base, within a few metres.
    gaps = []
    for name in nagano.instance_names:
        v = instance_vertices(nagano, name)
        x, y = v[:, :2].mean(0)
        gaps.append(nagano.ground_height(x, y) - v[:, 2].min())
    assert np.median(np.abs(gaps)) < 0.5 and np.max(np.abs(gaps)) < 3.0
    assert abs(np.median([instance_vertices(nagano, n)[:, 2].min() for n in nagano.instance_names])) < 0.01
    # The ground is a TERRAIN mesh covering the data plus the margin.
    assert nagano.meta["import"]["terrain_source"] == "buildings"
    assert np.count_nonzero(nagano.semantics == CityClass.TERRAIN) > 0
    xmin, ymin, xmax, ymax = nagano.terrain.bounds
    b = nagano.bounds
    assert xmin <= b[0, 0] and ymin <= b[0, 1] and xmax >= b[1, 0] and ymax >= b[1, 1]


@needs_data
def test_rays_down_hit_the_tower_roof(chiyoda):
    v = instance_vertices(chiyoda, TOWER_ID)
    lo, hi = v.min(0), v.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 40), np.linspace(lo[1], hi[1], 40))
    origins = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, 300.0)])
    hits = chiyoda.cast(origins, np.tile([0.0, 0.0, -1.0], (len(origins), 1)))
    on_tower = hits.semantic == CityClass.BUILDING
    assert on_tower.sum() > 0.3 * len(origins)
    assert set(chiyoda.instance_names[hits.instance[on_tower]]) == {TOWER_ID}
    top = 300.0 - hits.distance[on_tower]
    assert abs(top.max() - hi[2]) < 0.5                            # the tallest roof, ~114 m up
    assert abs(top.max() - chiyoda.ground_height(*origins[on_tower][np.argmax(top), :2]) - TOWER_HEIGHT) < 1.5
    assert np.all(top > 15.0)                                        # roofs (podium ~20 m up), never the ground
    assert np.mean(top > TOWER_LOD1_HEIGHT + 10) > 0.2               # the tower rises above the LOD1 block
    assert np.all(hits.normal[on_tower][:, 2] > 0)                   # seen from above


@needs_data
def test_merge_two_files_shares_one_origin(chiyoda):
    # The tiles lie ~20 km apart and the ground spans both: a coarse one keeps the test quick.
    both = load_plateau([CHIYODA, NW_TOKYO], PlateauImportConfig(ground_resolution=100.0))
    assert both.num_buildings == 1 + 657 and both.geo.epsg == 6677
    assert both.meta["files"] == [str(CHIYODA), str(NW_TOKYO)]
    alone = instance_vertices(chiyoda, TOWER_ID) + np.asarray(chiyoda.geo.origin)
    merged = instance_vertices(both, TOWER_ID) + np.asarray(both.geo.origin)
    np.testing.assert_allclose(merged.min(0), alone.min(0), atol=0.02)
    np.testing.assert_allclose(merged.max(0), alone.max(0), atol=0.02)


@needs_data
def test_fast_triangulation_matches_reference(monkeypatch, nw_tokyo):
    """The bulk convex-fan path gives the same surfaces as ear-cutting every polygon."""
    import vlwm.world.gml_geometry as gml_geometry

    reference = gml_geometry.triangulate_polygons
    monkeypatch.setattr(gml_geometry, "triangulate_polygons", lambda *a, **k: reference(*a, **k, fast=False))
    slow = load_plateau([NW_TOKYO])
    assert slow.num_buildings == nw_tokyo.num_buildings
    area_fast, area_slow = nw_tokyo.triangle_areas(), slow.triangle_areas()
    for i in range(0, len(slow.instance_names), 7):
        f, s_ = nw_tokyo.instances == i, slow.instances == i
        assert abs(area_fast[f].sum() - area_slow[s_].sum()) < 1e-3 * area_slow[s_].sum()
        normal_fast = (nw_tokyo.face_normals[f] * area_fast[f, None]).sum(0)   # zero for a closed solid
        normal_slow = (slow.face_normals[s_] * area_slow[s_, None]).sum(0)
        np.testing.assert_allclose(normal_fast, normal_slow, atol=1e-2)
        roof_fast = area_fast[f][nw_tokyo.face_normals[f][:, 2] > 0.5].sum()
        roof_slow = area_slow[s_][slow.face_normals[s_][:, 2] > 0.5].sum()
        assert abs(roof_fast - roof_slow) < 1e-3 * roof_slow


@needs_data
def test_truncated_file_names_file_and_line(tmp_path):
    broken = tmp_path / "truncated.gml"
    broken.write_bytes(NW_TOKYO.read_bytes()[:200_000])
    with pytest.raises(ValueError, match=r"truncated\.gml: malformed XML at line \d+"):
        load_plateau([broken])


@needs_data
def test_import_time_is_recorded(nw_tokyo):
    # speed is measured by benchmarks/, never asserted here: only that the figure is recorded
    seconds = nw_tokyo.meta["import"]["seconds"]
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds > 0


# ------------------------------------------------------------------------------ crafted files

TO_LATLON = Transformer.from_crs("EPSG:6677", "EPSG:6697", always_xy=True)
E0, N0 = -10_000.0, -35_000.0  # an arbitrary spot in Tokyo, EPSG:6677 metres

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml"
 xmlns:bldg="http://www.opengis.net/citygml/building/2.0"
 xmlns:tran="http://www.opengis.net/citygml/transportation/2.0"
 xmlns:veg="http://www.opengis.net/citygml/vegetation/2.0" xmlns:dem="http://www.opengis.net/citygml/relief/2.0"
 xmlns:luse="http://www.opengis.net/citygml/landuse/2.0" xmlns:gen="http://www.opengis.net/citygml/generics/2.0"
 xmlns:xlink="http://www.w3.org/1999/xlink"
 xmlns:uro="http://www.kantei.go.jp/jp/singi/tiiki/toshisaisei/itoshisaisei/iur/uro/1.4">
"""


def poslist(points):
    """posList text (lat lon h ...) of points given as (east, north, h) metres in EPSG:6677."""
    p = np.asarray(points, dtype=np.float64)
    lon, lat = TO_LATLON.transform(E0 + p[:, 0], N0 + p[:, 1])
    return " ".join(f"{a:.12f} {b:.12f} {h:.4f}" for a, b, h in zip(lat, lon, p[:, 2]))


def polygon(exterior, holes=(), gml_id=None):
    ring = lambda pts: f"<gml:LinearRing><gml:posList>{poslist(list(pts) + [pts[0]])}</gml:posList></gml:LinearRing>"
    ident = f' gml:id="{gml_id}"' if gml_id else ""
    inner = "".join(f"<gml:interior>{ring(h)}</gml:interior>" for h in holes)
    return f"<gml:Polygon{ident}><gml:exterior>{ring(exterior)}</gml:exterior>{inner}</gml:Polygon>"


def multisurface(polygons):
    return "<gml:MultiSurface>" + "".join(f"<gml:surfaceMember>{p}</gml:surfaceMember>" for p in polygons) + "</gml:MultiSurface>"


def solid(polygons):
    members = "".join(f"<gml:surfaceMember>{p}</gml:surfaceMember>" for p in polygons)
    return f"<gml:Solid><gml:exterior><gml:CompositeSurface>{members}</gml:CompositeSurface></gml:exterior></gml:Solid>"


def box(x, y, w, d, z0, z1):
    """Polygons of an axis box, each ring counter-clockwise seen from outside."""
    a, b, c, e = (x, y), (x + w, y), (x + w, y + d), (x, y + d)
    lo = [(*p, z0) for p in (a, b, c, e)]
    hi = [(*p, z1) for p in (a, b, c, e)]
    walls = [[lo[i], lo[(i + 1) % 4], hi[(i + 1) % 4], hi[i]] for i in range(4)]
    return [polygon(lo[::-1]), polygon(hi)] + [polygon(w_) for w_ in walls]


def citygml(members, srs="http://www.opengis.net/def/crs/EPSG/0/6697", envelope=True):
    env = ""
    if envelope:
        lo, hi = poslist([(-200, -200, 0)]).split(), poslist([(200, 200, 100)]).split()
        env = (f'<gml:boundedBy><gml:Envelope srsName="{srs}" srsDimension="3">'
               f"<gml:lowerCorner>{' '.join(lo)}</gml:lowerCorner><gml:upperCorner>{' '.join(hi)}</gml:upperCorner>"
               "</gml:Envelope></gml:boundedBy>")
    body = "".join(f"<core:cityObjectMember>{m}</core:cityObjectMember>" for m in members)
    return HEADER + env + body + "</core:CityModel>\n"


def building(gml_id, content, height=None):
    h = f'<bldg:measuredHeight uom="m">{height}</bldg:measuredHeight>' if height is not None else ""
    return f'<bldg:Building gml:id="{gml_id}">{h}{content}</bldg:Building>'


COLLINEAR = [(0, 0, 5), (5, 0, 5), (10, 0, 5)]


@pytest.fixture()
def crafted_buildings(tmp_path):
    good = building("good", "<bldg:lod1Solid>" + solid(box(0, 0, 10, 8, 5, 17)) + "</bldg:lod1Solid>", 12.0)
    one_bad = building("one_bad", "<bldg:lod1Solid>" + solid(box(30, 0, 10, 10, 5, 11) + [polygon(COLLINEAR)])
                       + "</bldg:lod1Solid>")
    all_bad = building("all_bad", "<bldg:lod1Solid>" + solid([polygon(COLLINEAR)] * 3) + "</bldg:lod1Solid>")
    empty = building("no_geometry", "<gen:stringAttribute name='x'><gen:value>1</gen:value></gen:stringAttribute>")
    footprint = building("footprint_only", "<bldg:lod0FootPrint>" + multisurface(
        [polygon([(60, 0, 6), (70, 0, 6), (70, 10, 6), (60, 10, 6)])]) + "</bldg:lod0FootPrint>", 9.5)
    courtyard = building("courtyard", "<bldg:boundedBy><bldg:RoofSurface gml:id='roof1'><bldg:lod2MultiSurface>"
                         + multisurface([polygon([(0, 40, 20), (20, 40, 20), (20, 60, 20), (0, 60, 20)],
                                                 holes=[[(5, 45, 20), (5, 55, 20), (15, 55, 20), (15, 45, 20)]])])
                         + "</bldg:lod2MultiSurface></bldg:RoofSurface></bldg:boundedBy>")
    parts = building("with_parts", "".join(
        "<bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id='part%d'><bldg:lod1Solid>%s</bldg:lod1Solid>"
        "</bldg:BuildingPart></bldg:consistsOfBuildingPart>" % (i, solid(box(90 + 15 * i, 0, 10, 10, 5, 8 + 4 * i)))
        for i in range(2)))
    lod2_broken = building("lod2_broken", "<bldg:boundedBy><bldg:WallSurface gml:id='w1'><bldg:lod2MultiSurface>"
                           + multisurface([polygon(COLLINEAR)]) + "</bldg:lod2MultiSurface></bldg:WallSurface>"
                           "</bldg:boundedBy><bldg:lod1Solid>" + solid(box(130, 0, 6, 6, 5, 9)) + "</bldg:lod1Solid>")
    path = tmp_path / "crafted_bldg.gml"
    path.write_text(citygml([good, one_bad, all_bad, empty, footprint, courtyard, parts, lod2_broken]),
                    encoding="utf-8")
    return path


def test_bad_buildings_are_skipped_counted_and_logged(crafted_buildings, caplog):
    with caplog.at_level(logging.WARNING, logger="vlwm.world.citygml"):
        scene = load_plateau([crafted_buildings])
    report = scene.meta["import"]
    assert sorted(scene.instance_names) == ["courtyard", "footprint_only", "good", "lod2_broken", "one_bad",
                                            "with_parts"]
    assert report["buildings"] == 6
    assert report["buildings_per_lod"] == {"0": 1, "1": 4, "2": 1}
    skipped = {s["gml_id"]: s for s in report["skipped"]}
    assert set(skipped) == {"all_bad", "no_geometry"}
    assert all(s["file"] == str(crafted_buildings) for s in skipped.values())
    assert "LOD1" in skipped["all_bad"]["reason"] and "area" in skipped["all_bad"]["reason"]
    assert report["degenerate_polygons"] == 1
    logged = caplog.text
    assert "all_bad" in logged and "no_geometry" in logged and "one_bad" in logged
    assert "lod2_broken: fell back to LOD1" in logged
    assert str(crafted_buildings) in logged
    # The good solid keeps its own 12 m, the footprint is extruded by its measuredHeight from its ground.
    assert abs(np.ptp(instance_vertices(scene, "good")[:, 2]) - 12.0) < 1e-3
    fp = instance_vertices(scene, "footprint_only")
    assert abs(fp[:, 2].min() + scene.geo.origin[2] - 6.0) < 1e-3 and abs(np.ptp(fp[:, 2]) - 9.5) < 1e-3
    # Both parts belong to their building's one instance.
    assert abs(instance_vertices(scene, "with_parts")[:, 2].max() + scene.geo.origin[2] - 12.0) < 1e-3
    # The courtyard roof: 20 x 20 m less its 10 x 10 m hole.
    i = int(np.flatnonzero(scene.instance_names == "courtyard")[0])
    assert abs(scene.triangle_areas()[scene.instances == i].sum() - 300.0) < 0.5


def test_origin_from_config_and_no_envelope(crafted_buildings, tmp_path):
    cfg = PlateauImportConfig(origin=(E0, N0), origin_height=0.0)
    scene = load_plateau([crafted_buildings], cfg)
    assert scene.geo.origin == (E0, N0, 0.0)
    v = instance_vertices(scene, "good")
    np.testing.assert_allclose(v.min(0), [0, 0, 5], atol=2e-3)
    np.testing.assert_allclose(v.max(0), [10, 8, 17], atol=2e-3)
    # Without an envelope the bounds come from a pass over the coordinates.
    text = crafted_buildings.read_text(encoding="utf-8")
    bare = tmp_path / "no_envelope.gml"
    bare.write_text(text[:text.index("<gml:boundedBy>")] + text[text.index("</gml:boundedBy>") + 16:]
                    .replace("<gml:Solid>", '<gml:Solid srsName="http://www.opengis.net/def/crs/EPSG/0/6697">', 1),
                    encoding="utf-8")
    assert load_plateau([bare], cfg).num_buildings == 6


def test_unknown_crs_names_file(tmp_path):
    path = tmp_path / "wgs84.gml"
    path.write_text(citygml([building("b", "<bldg:lod1Solid>" + solid(box(0, 0, 5, 5, 0, 3)) + "</bldg:lod1Solid>")],
                            srs="http://www.opengis.net/def/crs/EPSG/0/4326"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"wgs84\.gml: unsupported CRS .*4326"):
        load_plateau([path])


def test_not_citygml_and_garbage_name_file(tmp_path):
    other = tmp_path / "other.xml"
    other.write_text("<root><a/></root>", encoding="utf-8")
    with pytest.raises(ValueError, match=r"other\.xml: root element"):
        load_plateau([other])
    garbage = tmp_path / "garbage.gml"
    garbage.write_text(citygml([building("b", "<bldg:lod1Solid>")]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"garbage\.gml: malformed XML at line 9, column \d+: Opening and ending tag mismatch"):
        load_plateau([garbage])


def test_unreadable_coordinates_are_degenerate_polygons(tmp_path, caplog):
    walls = box(0, 0, 5, 5, 0, 3)
    one_bad = building("one_bad_ring", "<bldg:lod1Solid>" + solid(walls[:-1] + [walls[-1].replace(
        "<gml:posList>35.", "<gml:posList>xx.", 1)]) + "</bldg:lod1Solid>")
    all_bad = building("all_bad_rings", "<bldg:lod1Solid>" + solid([w.replace("<gml:posList>", "<gml:posList>1 ", 1)
                                                                      for w in walls]) + "</bldg:lod1Solid>")
    path = tmp_path / "numbers.gml"
    path.write_text(citygml([one_bad, all_bad]), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vlwm.world.citygml"):
        scene = load_plateau([path])
    assert "one_bad_ring: 1 degenerate polygon(s) skipped" in caplog.text and "non-numeric" in caplog.text
    assert list(scene.instance_names) == ["one_bad_ring"]
    assert scene.meta["import"]["degenerate_polygons"] == 1
    (skip,) = scene.meta["import"]["skipped"]
    assert skip["gml_id"] == "all_bad_rings" and "triples are required" in skip["reason"]


def dem_plane(e, n):
    """Height (m) of the crafted relief at (east, north) metres."""
    return 30.0 + 0.05 * e - 0.02 * n


def test_roads_vegetation_and_dem(tmp_path):
    # Relief: a 5 x 5 vertex TIN on a tilted plane, 32 triangles.
    step = 40.0
    grid = [[(-80 + step * i, -80 + step * j) for i in range(5)] for j in range(5)]
    triangles = []
    for j in range(4):
        for i in range(4):
            a, b, c, d = grid[j][i], grid[j][i + 1], grid[j + 1][i + 1], grid[j + 1][i]
            for tri in ((a, b, c), (a, c, d)):
                pts = [(e, n, dem_plane(e, n)) for e, n in tri]
                triangles.append(f"<gml:Triangle><gml:exterior><gml:LinearRing><gml:posList>"
                                 f"{poslist(pts + [pts[0]])}</gml:posList></gml:LinearRing></gml:exterior></gml:Triangle>")
    relief = ('<dem:ReliefFeature gml:id="dem1"><dem:lod>1</dem:lod><dem:reliefComponent>'
              '<dem:TINRelief gml:id="tin1"><dem:lod>1</dem:lod><dem:tin><gml:TriangulatedSurface><gml:trianglePatches>'
              + "".join(triangles) + "</gml:trianglePatches></gml:TriangulatedSurface></dem:tin></dem:TINRelief>"
              "</dem:reliefComponent></dem:ReliefFeature>")
    def flat(x0, y0, x1, y1, lift=0.1):  # a rectangle lying on the relief
        return [(e, n, dem_plane(e, n) + lift) for e, n in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]

    road = ('<tran:Road gml:id="road_lod2"><tran:function>4</tran:function>'
            "<tran:lod1MultiSurface>" + multisurface([polygon(flat(-60, 0, 60, 12))]) + "</tran:lod1MultiSurface>"
            '<tran:trafficArea><tran:TrafficArea gml:id="ta1"><tran:function>1000</tran:function>'
            "<tran:lod2MultiSurface>" + multisurface([polygon(flat(-60, 3, 60, 9))]) + "</tran:lod2MultiSurface>"
            '</tran:TrafficArea></tran:trafficArea><tran:trafficArea><tran:TrafficArea gml:id="ta2">'
            "<tran:function>2000</tran:function><tran:lod2MultiSurface>"
            + multisurface([polygon(flat(-60, 0, 60, 3)), polygon(flat(-60, 9, 60, 12))])
            + "</tran:lod2MultiSurface></tran:TrafficArea></tran:trafficArea></tran:Road>")
    road_lod1 = ('<tran:Road gml:id="road_lod1"><tran:lod1MultiSurface>'
                 + multisurface([polygon(flat(0, -60, 8, -20))]) + "</tran:lod1MultiSurface></tran:Road>")
    tree = ('<veg:SolitaryVegetationObject gml:id="tree1"><veg:height uom="m">6</veg:height><veg:lod1Geometry>'
            + solid(box(-40, 30, 3, 3, 28, 34)) + "</veg:lod1Geometry></veg:SolitaryVegetationObject>")
    cover = ('<veg:PlantCover gml:id="cover1"><veg:lod1MultiSurface>'
             + multisurface([polygon(flat(20, 30, 40, 50, 2.0))]) + "</veg:lod1MultiSurface></veg:PlantCover>")
    landuse = '<luse:LandUse gml:id="lu1"></luse:LandUse>'
    path = tmp_path / "synthetic_tran_veg_dem.gml"
    path.write_text(citygml([relief, road, road_lod1, tree, cover, landuse]), encoding="utf-8")

    scene = load_plateau([path])
    report = scene.meta["import"]
    assert report["roads"] == 2 and report["vegetation"] == 2 and report["dem_triangles"] == 32
    assert report["terrain_source"] == "dem" and report["ignored"] == {"LandUse": 1}
    count = lambda c: int(np.count_nonzero(scene.semantics == c))
    assert count(CityClass.TERRAIN) == 32        # the relief itself: no generated ground mesh on top
    assert count(CityClass.ROAD) == 2 + 2        # the lod2 carriageway and the lod1-only road
    assert count(CityClass.SIDEWALK) == 4        # the two lod2 sidewalk strips
    assert count(CityClass.VEGETATION) == 12 + 2
    assert sorted(scene.instance_names) == ["cover1", "tree1"]
    assert np.all(scene.instance_semantics == CityClass.VEGETATION)
    assert np.all(scene.instances[np.isin(scene.semantics, [CityClass.ROAD, CityClass.TERRAIN])] == NO_INSTANCE)
    # The relief drives the ground: local ground height at crafted points = the plane.
    geo = scene.geo
    to_local = Transformer.from_crs("EPSG:6697", "EPSG:6677", always_xy=True)
    for e, n in ((-70.0, -65.0), (0.0, 0.0), (35.0, 52.0), (75.0, 75.0)):
        lon, lat = TO_LATLON.transform(E0 + e, N0 + n)
        x, y = to_local.transform(lon, lat)
        got = scene.ground_height(x - geo.origin[0], y - geo.origin[1]) + geo.origin[2]
        assert abs(got - dem_plane(e, n)) < 0.05
    # Rays straight down off the road strips hit the relief, on the road they hit ROAD.
    lon, lat = TO_LATLON.transform(E0 + 30.0, N0 + 6.0)
    x, y = to_local.transform(lon, lat)
    hit = scene.cast([[x - geo.origin[0], y - geo.origin[1], 200.0]], [[0, 0, -1]])
    assert hit.semantic[0] == CityClass.ROAD


def test_roads_without_dem_get_a_ground_below_them(tmp_path):
    flat = [(0, 0, 12.0), (50, 0, 12.0), (50, 10, 12.0), (0, 10, 12.0)]
    road = '<tran:Road gml:id="r"><tran:lod1MultiSurface>' + multisurface([polygon(flat)]) + "</tran:lod1MultiSurface></tran:Road>"
    path = tmp_path / "road_only.gml"
    path.write_text(citygml([road]), encoding="utf-8")
    cfg = PlateauImportConfig(origin=(E0, N0))
    scene = load_plateau([path], cfg)
    assert scene.meta["import"]["terrain_source"] == "buildings"
    assert abs(scene.geo.origin[2] - 12.0) < 1e-6 and abs(scene.ground_height(25.0, 5.0)) < 1e-3
    hit = scene.cast([[25.0, 5.0, 50.0]], [[0, 0, -1]])
    assert hit.semantic[0] == CityClass.ROAD
    terrain = scene.vertices[scene.faces[scene.semantics == CityClass.TERRAIN]][..., 2]
    assert np.allclose(terrain, -cfg.road_ground_clearance, atol=1e-4)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="lod_preference"):
        PlateauImportConfig(lod_preference=(5,))
    with pytest.raises(ValueError, match="lod_preference"):
        PlateauImportConfig(lod_preference=())
    with pytest.raises(ValueError, match="ground_resolution"):
        PlateauImportConfig(ground_resolution=0)
    with pytest.raises(TypeError):
        PlateauImportConfig(lod_prefernce=(1,))  # a misspelt key is an error


def test_geo_origin_round_trips_through_scene_meta(crafted_buildings):
    scene = load_plateau([crafted_buildings])
    assert GeoOrigin.from_dict(scene.geo.to_dict()) == scene.geo
