"""The installed `vlwm` command end to end on tiny worlds (real subprocesses, real files)."""

import json
import subprocess
import sys


from vlwm.world.scene import Scene


def vlwm(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "vlwm.cli", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"vlwm {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_help_lists_the_verbs():
    out = vlwm("--help").stdout
    for verb in ("city", "export-gazebo", "demo"):
        assert verb in out


def test_city_procedural_info_and_export(tmp_path):
    scene_path = tmp_path / "city.npz"
    out = vlwm("city", "procedural", "--size", 200, "--seed", 3, "--out", scene_path).stdout
    assert out.startswith(f"wrote {scene_path}")
    info = json.loads(vlwm("city", "info", scene_path, "--json").stdout)
    scene = Scene.load(scene_path)
    assert info["buildings"] == scene.num_buildings > 0
    assert info["triangles"] == scene.num_triangles
    assert info["geo_origin"]["epsg"] == 6677
    text = vlwm("city", "info", scene_path).stdout
    assert f"buildings   {scene.num_buildings}" in text

    world_dir = tmp_path / "gz"
    vlwm("export-gazebo", scene_path, "--out", world_dir)
    assert (world_dir / "world.sdf").is_file()
    glb = tmp_path / "city.glb"
    vlwm("export-gazebo", scene_path, "--format", "glb", "--out", glb)
    assert glb.stat().st_size > 1000


def test_city_from_citygml(tmp_path, plateau_dir):
    scene_path = tmp_path / "chiyoda.npz"
    vlwm("city", plateau_dir / "13101_chiyoda_bldg_lod2_single.gml", "--out", scene_path)
    scene = Scene.load(scene_path)
    assert scene.num_buildings == 1 and scene.geo.epsg == 6677
    assert scene.meta["source"] == "plateau"


def test_errors_are_clear(tmp_path):
    p = vlwm("city", tmp_path / "missing.gml", "--out", tmp_path / "x.npz", check=False)
    assert p.returncode != 0 and "missing.gml" in p.stderr
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"garbage")
    p = vlwm("city", "info", bad, check=False)
    assert p.returncode == 2 and "broken.npz" in p.stderr
