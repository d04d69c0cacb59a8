"""QGC WPL 110 files: round trips, parity with pymavlink's reader, clear errors."""

import math

import numpy as np
import pytest

from vlwm.labels import CityClass
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.missions import orbit_mission, survey_mission
from vlwm.sim.qgc_wpl import (MAV_CMD_DO_CHANGE_SPEED, MAV_CMD_NAV_LAND, MAV_CMD_NAV_RETURN_TO_LAUNCH,
                              MAV_CMD_NAV_TAKEOFF, MAV_CMD_NAV_WAYPOINT, WPLFormatError, heading_deg_to_yaw,
                              latlon_to_local, local_to_latlon, read_qgc_wpl, waypoints_mission, write_qgc_wpl,
                              yaw_to_heading_deg)
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.terrain import Terrain

GEO = GeoOrigin.at_latlon(35.681236, 139.767125, height=3.5)


def field_scene(ground_z: float = 2.0):
    b = SceneBuilder()
    h = 200.0
    b.add_mesh([[-h, -h, ground_z], [h, -h, ground_z], [h, h, ground_z], [-h, h, ground_z]], [[0, 1, 2], [0, 2, 3]],
               CityClass.TERRAIN)
    return b.build(Terrain.flat(ground_z, (-h, -h, h, h)), GEO)


def sample_mission() -> Mission:
    home = (5.0, -3.0, 2.0)
    return Mission("sample", "drone", home, (
        Waypoint((5.0, -3.0, 32.0), "takeoff", yaw=0.5),
        Waypoint((60.0, 40.0, 32.0), speed=6.0, hold_s=2.5),
        Waypoint((-80.0, 40.0, 52.0), speed=6.0, yaw=-2.0),
        Waypoint((-80.0, -70.0, 52.0)),
        Waypoint((-80.0, -70.0, 2.0), "land"),
        Waypoint((-80.0, -70.0, 22.0), "takeoff"),
        Waypoint(home, "rtl"),
    ))


def angle_diff(a, b):
    return abs(math.remainder(a - b, 2 * math.pi))


def test_latlon_round_trip_and_origin():
    xyz = np.array([[0.0, 0.0, 0.0], [123.4, -567.8, 9.0], [-1000.0, 2000.0, -3.0]])
    lla = local_to_latlon(GEO, xyz)
    np.testing.assert_allclose(lla[0, :2], [35.681236, 139.767125], atol=1e-9)
    np.testing.assert_allclose(lla[:, 2], xyz[:, 2] + 3.5)
    np.testing.assert_allclose(latlon_to_local(GEO, lla[:, 0], lla[:, 1], lla[:, 2]), xyz, atol=1e-6)
    assert lla[1, 0] < lla[0, 0] and lla[1, 1] > lla[0, 1]        # south-east of the origin
    for yaw in (-3.0, -1.0, 0.0, 0.7, math.pi / 2, 3.1):
        assert angle_diff(heading_deg_to_yaw(yaw_to_heading_deg(yaw)), yaw) < 1e-12
    assert yaw_to_heading_deg(0.0) == pytest.approx(90.0)            # east
    assert yaw_to_heading_deg(math.pi / 2) == pytest.approx(0.0)     # north


def test_write_read_round_trip(tmp_path):
    m = sample_mission()
    path = write_qgc_wpl(m, tmp_path / "m.waypoints", GEO)
    back = read_qgc_wpl(path, GEO, name="sample")
    assert back.name == "sample" and back.vehicle == "drone"
    np.testing.assert_allclose(back.home, m.home, atol=1e-5)
    assert [w.command for w in back.waypoints] == [w.command for w in m.waypoints]
    for a, b in zip(m.waypoints, back.waypoints):
        np.testing.assert_allclose(a.position, b.position, atol=1e-5)
        assert a.speed == b.speed and a.hold_s == pytest.approx(b.hold_s)
        assert (a.yaw is None) == (b.yaw is None)
        if a.yaw is not None:
            assert angle_diff(a.yaw, b.yaw) < 1e-6
    # A second write of what was read is the same file.
    assert write_qgc_wpl(back, tmp_path / "again.waypoints", GEO).read_text() == path.read_text()


def test_pymavlink_reads_our_file(tmp_path):
    mavwp = pytest.importorskip("pymavlink.mavwp")
    scene = field_scene()
    m = survey_mission(scene, size=60.0, spacing=20.0, altitude=25.0)
    path = write_qgc_wpl(m, tmp_path / "survey.waypoints", GEO)
    loader = mavwp.MAVWPLoader()
    n = loader.load(str(path))
    items = [loader.wp(i) for i in range(n)]
    nav = [w for w in items[1:] if w.command != MAV_CMD_DO_CHANGE_SPEED]
    assert n == 1 + len(m.waypoints) and len(nav) == len(m.waypoints)   # home, then the items (default speed)
    assert items[0].frame == 0 and items[0].command == MAV_CMD_NAV_WAYPOINT
    lla_home = local_to_latlon(GEO, m.home)[0]
    np.testing.assert_allclose([items[0].x, items[0].y], lla_home[:2], atol=1e-5)   # float32 in MAVLink 1
    assert items[0].z == pytest.approx(lla_home[2], abs=1e-3)
    expected = {"takeoff": MAV_CMD_NAV_TAKEOFF, "waypoint": MAV_CMD_NAV_WAYPOINT, "rtl": MAV_CMD_NAV_RETURN_TO_LAUNCH}
    assert [w.command for w in nav] == [expected[w.command] for w in m.waypoints]
    assert all(w.frame == 3 for w in nav)
    assert [w.seq for w in items] == list(range(n))
    lla = local_to_latlon(GEO, m.positions)
    for w, wp, ll in zip(nav, m.waypoints, lla):
        if wp.command == "rtl":
            continue
        np.testing.assert_allclose([w.x, w.y], ll[:2], atol=1e-5)
        assert w.z == pytest.approx(wp.position[2] - m.home[2], abs=1e-3)
    # ... and the lines are 25 m above home, as written.
    assert {round(w.z, 3) for w in nav if w.command == MAV_CMD_NAV_WAYPOINT} == {25.0}
    # Speeds, holds, yaw and a landing mid-mission, as a ground station sees them.
    loader.load(str(write_qgc_wpl(sample_mission(), tmp_path / "sample.waypoints", GEO)))
    cmds = [loader.wp(i).command for i in range(loader.count())]
    assert cmds == [MAV_CMD_NAV_WAYPOINT, MAV_CMD_NAV_TAKEOFF, MAV_CMD_DO_CHANGE_SPEED, MAV_CMD_NAV_WAYPOINT,
                    MAV_CMD_NAV_WAYPOINT, MAV_CMD_DO_CHANGE_SPEED, MAV_CMD_NAV_WAYPOINT, MAV_CMD_NAV_LAND,
                    MAV_CMD_NAV_TAKEOFF, MAV_CMD_NAV_RETURN_TO_LAUNCH]
    assert loader.wp(2).param2 == 6.0 and loader.wp(5).param2 == -2.0     # 6 m/s, then back to default
    assert loader.wp(3).param1 == 2.5                                     # hold (s)
    assert loader.wp(1).param4 == pytest.approx(yaw_to_heading_deg(0.5), abs=1e-4)


def test_orbit_written_as_explicit_waypoints(tmp_path):
    m = orbit_mission(field_scene(), (0.0, 0.0), radius=40.0, altitude=30.0, points_per_lap=12)
    back = read_qgc_wpl(write_qgc_wpl(m, tmp_path / "o.waypoints", GEO), GEO)
    p = back.positions[1:-1]
    np.testing.assert_allclose(np.hypot(p[:, 0], p[:, 1]), 40.0, atol=1e-4)


def test_reads_loiter_commands_and_terrain_frames(tmp_path):
    scene = field_scene(ground_z=2.0)
    lat, lon, msl = local_to_latlon(GEO, [0.0, 0.0, 2.0])[0]
    clat, clon, _ = local_to_latlon(GEO, [50.0, 0.0, 0.0])[0]
    text = "\n".join([
        "QGC WPL 110",
        f"0\t1\t0\t16\t0\t0\t0\t0\t{lat:.10f}\t{lon:.10f}\t{msl:.4f}\t1",
        f"1\t0\t3\t22\t0\t0\t0\t0\t{lat:.10f}\t{lon:.10f}\t20\t1",
        "# a comment line",
        f"2\t0\t10\t19\t7.5\t0\t0\t0\t{clat:.10f}\t{clon:.10f}\t15\t1",
        f"3\t0\t3\t18\t2\t0\t-30\t0\t{clat:.10f}\t{clon:.10f}\t20\t1",
        "4\t0\t3\t20\t0\t0\t0\t0\t0\t0\t0\t1",
    ]) + "\n"
    path = tmp_path / "loiter.waypoints"
    path.write_text(text)
    m = waypoints_mission(path, scene)
    np.testing.assert_allclose(m.home, [0.0, 0.0, 2.0], atol=1e-4)
    assert m.waypoints[0].command == "takeoff" and m.waypoints[0].position[2] == pytest.approx(22.0, abs=1e-4)
    hold = m.waypoints[1]
    assert hold.hold_s == 7.5 and hold.position[2] == pytest.approx(17.0, abs=1e-4)   # 15 m over the terrain
    circle = m.positions[2:-1]
    assert len(circle) == 2 * 24 + 1
    np.testing.assert_allclose(np.hypot(circle[:, 0] - 50.0, circle[:, 1]), 30.0, atol=1e-3)
    ang = np.unwrap(np.arctan2(circle[:, 1], circle[:, 0] - 50.0))
    assert np.all(np.diff(ang) > 0)                       # negative radius: counter-clockwise
    assert m.waypoints[-1].command == "rtl"
    with pytest.raises(WPLFormatError, match=r"loiter.waypoints:5: .*terrain"):
        read_qgc_wpl(path, GEO)                           # no ground height to resolve frame 10


@pytest.mark.parametrize("lines,line,message", [
    (["QGC WPL 100"], 1, "header"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5"], 2, "12 fields"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\tabc\t3.5\t1"], 2, "not a number"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5\t1", "2\t0\t3\t16\t0\t0\t0\t0\t35.6\t139.7\t9\t1"],
     3, "sequence number 2, expected 1"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5\t1", "1\t0\t3\t183\t0\t0\t0\t0\t35.6\t139.7\t9\t1"],
     3, "unsupported MAVLink command 183"),
    (["QGC WPL 110", "0\t1\t3\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5\t1", "1\t0\t3\t16\t0\t0\t0\t0\t35.6\t139.7\t9\t1"],
     2, "home in frame 0"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5\t1", "1\t0\t7\t16\t0\t0\t0\t0\t35.6\t139.7\t9\t1"],
     3, "unsupported frame 7"),
    (["QGC WPL 110", "0\t1\t0\t16\t0\t0\t0\t0\t35.6\t139.7\t3.5\t1", "1\t0\t3\t16\t-4\t0\t0\t0\t35.6\t139.7\t9\t1"],
     3, "hold_s"),
])
def test_malformed_files_name_file_and_line(tmp_path, lines, line, message):
    path = tmp_path / "bad.waypoints"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WPLFormatError, match=rf"bad\.waypoints:{line}: .*{message}"):
        read_qgc_wpl(path, GEO)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.waypoints"):
        read_qgc_wpl(tmp_path / "nope.waypoints", GEO)
