"""MAVLink: ArduPilot conventions, ENU <-> NED, the mission protocol, and a survey flown end to end over loopback."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vlwm.labels import CityClass
from vlwm.sim.cli import mission_main
from vlwm.io.frames import quat_from_euler
from vlwm.sim.mavlink.client import ClientConfig, fly, item_difference
from vlwm.sim.mavlink.endpoint import COPTER_MODES, ROVER_MODES, VehicleEndpoint
from vlwm.sim.mavlink.items import (MissionItem, attitude_ned, enu_to_ned, read_wpl_items, waypoint_item_seqs,
                                    write_wpl_items)
from vlwm.sim.mission_spec import MissionSpec
from vlwm.sim.qgc_wpl import read_qgc_wpl
from vlwm.sim.vehicles import Drone
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.procedural import CityConfig, generate_city
from vlwm.world.terrain import Terrain

REPO = Path(__file__).resolve().parents[2]
GEO = GeoOrigin.at_latlon(35.681236, 139.767125, height=3.5)


def free_port_base(vehicles: int = 1) -> int:
    """A UDP port base whose GCS and vehicle ports (base + 10 i, + 5) are all free now."""
    rng = np.random.default_rng(os.getpid())
    for base in rng.integers(200, 600, size=50) * 100:
        socks = []
        try:
            for i in range(vehicles):
                for port in (base + 10 * i, base + 10 * i + 5):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    socks.append(s)
                    s.bind(("127.0.0.1", int(port)))
            return int(base)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free UDP ports")


def field_scene():
    b = SceneBuilder()
    h = 300.0
    b.add_mesh([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], [[0, 1, 2], [0, 2, 3]], CityClass.TERRAIN)
    return b.build(Terrain.flat(0.0, (-h, -h, h, h)), GEO)


# ---------------------------------------------------------------------------------------------
# Conventions
# ---------------------------------------------------------------------------------------------


def test_mode_numbers_follow_ardupilot():
    assert [COPTER_MODES[m] for m in ("STABILIZE", "AUTO", "GUIDED", "LOITER", "RTL", "LAND")] == [0, 3, 4, 5, 6, 9]
    assert [ROVER_MODES[m] for m in ("MANUAL", "HOLD", "AUTO", "RTL", "GUIDED")] == [0, 4, 10, 11, 15]


def test_enu_ned_attitude():
    assert np.allclose(enu_to_ned([1.0, 2.0, 3.0]), [2.0, 1.0, -3.0])
    roll, pitch, yaw, *_ = attitude_ned(quat_from_euler(0.0, 0.0, 0.3), np.zeros(3))
    assert np.allclose([roll, pitch, yaw], [0.0, 0.0, math.pi / 2 - 0.3])   # yaw clockwise from north
    # ENU/FLU pitch +0.2 rotates the nose down: NED/FRD pitch -0.2; roll +0.1 drops the right side in both.
    roll, pitch, yaw, *_ = attitude_ned(quat_from_euler(0.1, 0.2, math.pi / 2), np.zeros(3))
    assert np.allclose([roll, pitch, yaw], [0.1, -0.2, 0.0])
    *_, p, q, r = attitude_ned(quat_from_euler(0, 0, 0), [0.1, 0.2, 0.3])
    assert np.allclose([p, q, r], [0.1, -0.2, -0.3])   # FLU rates -> FRD


def test_item_seqs_match_the_qgc_reader(tmp_path):
    lat, lon = 356812360, 1397671250
    items = [MissionItem(0, 0, 16, 0, 1, 0, 0, 0, 0, lat, lon, 3.5),
             MissionItem(1, 3, 22, 0, 1, 0, 0, 0, math.nan, lat, lon, 20.0),
             MissionItem(2, 3, 178, 0, 1, 1, 5.0, -1, 0, 0, 0, 0.0),
             MissionItem(3, 3, 16, 0, 1, 2.0, 0, 0, math.nan, lat + 2000, lon, 20.0),
             MissionItem(4, 3, 18, 0, 1, 0.5, 0, 15.0, 0, lat + 4000, lon, 25.0),
             MissionItem(5, 3, 20, 0, 1, 0, 0, 0, 0, 0, 0, 0.0)]
    path = write_wpl_items(items, tmp_path / "m.waypoints")
    back = read_wpl_items(path)
    assert item_difference(items, back) is None and back[0] == items[0]
    mission = read_qgc_wpl(path, GEO)
    seqs = waypoint_item_seqs(items)
    assert len(seqs) == len(mission.waypoints) and seqs[:2] == [1, 3] and seqs[-1] == 5
    assert seqs.count(4) == 13   # half a turn of NAV_LOITER_TURNS: 12 segments, 13 points


# ---------------------------------------------------------------------------------------------
# One endpoint, driven step by step by a raw MAVLink ground station
# ---------------------------------------------------------------------------------------------


class Gcs:
    """A bare ground station: a socket, a pymavlink encoder/decoder, everything received kept."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.mav = mavlink.MAVLink(self, srcSystem=255, srcComponent=190)
        self.to, self.got = None, []

    def write(self, buf):
        self.sock.sendto(buf, self.to)

    def drain(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            self.got += [m for m in self.mav.parse_buffer(data) or () if m.get_type() != "BAD_DATA"]

    def last(self, kind):
        self.drain()
        found = [m for m in self.got if m.get_type() == kind]
        return found[-1] if found else None


@pytest.fixture
def link(tmp_path):
    scene = field_scene()
    drone = Drone(scene, (10.0, -5.0))
    gcs = Gcs()
    ep = VehicleEndpoint(drone, scene, vehicle_id="drone_0", sysid=1, gcs_addr=gcs.sock.getsockname(),
                         bind_addr=("127.0.0.1", 0), mission_dir=tmp_path, log=lambda s: None)
    gcs.to = ep.sock.getsockname()
    yield gcs, ep, drone
    ep.close()
    gcs.sock.close()


def run(ep, drone, seconds, dt=0.05):
    for _ in range(int(round(seconds / dt))):
        ep.poll()
        drone.step(dt)
        ep.update(drone.t)
    time.sleep(0.01)


def statustext(gcs) -> str:
    """Every STATUSTEXT received, chunks joined."""
    gcs.drain()
    return "".join(m.text for m in gcs.got if m.get_type() == "STATUSTEXT")


def command(gcs, ep, cmd, *p):
    gcs.got.clear()
    gcs.mav.command_long_send(1, 1, cmd, 0, *(list(p) + [0.0] * 7)[:7])
    time.sleep(0.01)
    ep.poll()
    time.sleep(0.01)
    ack = gcs.last("COMMAND_ACK")
    assert ack is not None and ack.command == cmd
    return ack.result


def test_guided_targets_are_ned(link):
    gcs, ep, drone = link
    run(ep, drone, 0.1)
    hb = gcs.last("HEARTBEAT")
    assert hb.type == mavlink.MAV_TYPE_QUADROTOR and hb.autopilot == mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA
    assert hb.custom_mode == COPTER_MODES["STABILIZE"] and not hb.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert command(gcs, ep, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mavlink.MAV_RESULT_ACCEPTED
    assert command(gcs, ep, mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mavlink.MAV_RESULT_FAILED
    assert "switch to GUIDED first" in statustext(gcs)
    assert command(gcs, ep, mavlink.MAV_CMD_DO_SET_MODE, 1, COPTER_MODES["GUIDED"]) == mavlink.MAV_RESULT_ACCEPTED
    assert command(gcs, ep, mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == mavlink.MAV_RESULT_ACCEPTED
    run(ep, drone, 12.0)
    assert drone.position[2] == pytest.approx(10.0, abs=0.3)
    # 20 m north, 5 m east of the start (the local NED origin), 15 m up.
    gcs.mav.set_position_target_local_ned_send(0, 1, 1, mavlink.MAV_FRAME_LOCAL_NED, 0b110111111000,
                                               20.0, 5.0, -15.0, 0, 0, 0, 0, 0, 0, 0, 0)
    run(ep, drone, 25.0)
    assert np.allclose(drone.position, [15.0, 15.0, 15.0], atol=0.3)
    command(gcs, ep, mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT)
    gp, lp = gcs.last("GLOBAL_POSITION_INT"), gcs.last("LOCAL_POSITION_NED")
    assert gp.relative_alt == pytest.approx(15000, abs=300)
    assert (lp.x, lp.y, lp.z) == pytest.approx((20.0, 5.0, -15.0), abs=0.3)
    # A velocity target: 2 m/s east (NED y) for 5 s.
    gcs.mav.set_position_target_local_ned_send(0, 1, 1, mavlink.MAV_FRAME_LOCAL_NED, 0b110111000111,
                                               0, 0, 0, 0.0, 2.0, 0.0, 0, 0, 0, 0, 0)
    run(ep, drone, 5.0)
    assert drone.velocity == pytest.approx([2.0, 0.0, 0.0], abs=0.05)
    assert command(gcs, ep, mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT) == 0
    gp = gcs.last("GLOBAL_POSITION_INT")
    assert (gp.vx, gp.vy, gp.hdg) == pytest.approx((0, 200, 9000), abs=5)   # east: heading 90 deg
    assert command(gcs, ep, mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH) == mavlink.MAV_RESULT_ACCEPTED
    run(ep, drone, 90.0)
    assert drone.landed and not drone.armed and np.allclose(drone.position[:2], [10.0, -5.0], atol=0.3)
    assert gcs.last("HEARTBEAT").custom_mode == COPTER_MODES["RTL"]


def test_unflyable_mission_is_refused_with_the_reason(link):
    gcs, ep, drone = link
    lat, lon, msl = ep.latlon(drone.position)
    items = [MissionItem(0, 0, 16, 0, 1, 0, 0, 0, 0, lat, lon, msl),
             MissionItem(1, 3, 22, 0, 1, 0, 0, 0, math.nan, lat, lon, 20.0),
             MissionItem(2, 3, 16, 0, 1, 0, 0, 0, math.nan, lat + 3000, lon, 400.0)]   # above the ceiling
    gcs.mav.mission_count_send(1, 1, len(items))
    for _ in range(10):
        time.sleep(0.01)
        ep.poll()
        time.sleep(0.01)
        req = gcs.last("MISSION_REQUEST_INT")
        ack = gcs.last("MISSION_ACK")
        if ack is not None:
            break
        it = items[req.seq]
        gcs.got.clear()
        gcs.mav.mission_item_int_send(1, 1, it.seq, it.frame, it.command, 0, 1, *it[5:9], it.x, it.y, it.z)
    assert ack.type == mavlink.MAV_MISSION_INVALID
    assert "max altitude" in statustext(gcs)
    assert ep.items == []


# ---------------------------------------------------------------------------------------------
# End to end: the server in a process, the client here
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "city.npz"
    generate_city(CityConfig(size=220.0, seed=2)).save(path)
    return path


def test_client_fails_fast_without_a_server(capsys):
    base = free_port_base()
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"no heartbeat on udp:127.0.0.1:{base} after 0.5 s — is the "
                                              r"simulator running\? start it with scripts/launch_occworld_simulation"):
        fly(ClientConfig(connect=f"udp:127.0.0.1:{base}", heartbeat_timeout=0.5), log=lambda s: None)
    assert time.monotonic() - t0 < 5.0
    assert mission_main(["--connect", f"udp:127.0.0.1:{base}", "--heartbeat-timeout", "0.5"]) == 1
    assert "is the simulator running?" in capsys.readouterr().err


def test_survey_over_mavlink_end_to_end(tmp_path, city_file):
    base = free_port_base()
    out = tmp_path / "rec"
    cmd = [sys.executable, "-m", "vlwm.cli", "sim-server", "--world", str(city_file), "--drones", "1",
           "--rovers", "0", "--record", "--fast", "--no-traffic", "--no-lidar", "--no-cameras", "--rate", "4",
           "--out", str(out), "--port-base", str(base)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        mission = MissionSpec(pattern="survey", size=40.0, spacing=20.0, altitude=30.0)
        report = fly(ClientConfig(mission, connect=f"udp:127.0.0.1:{base}", heartbeat_timeout=30.0,
                                  mission_timeout=300.0), log=lambda s: None)
    finally:
        server.send_signal(signal.SIGINT)
        rc = server.wait(timeout=30)
    assert rc == 0, (tmp_path / "server.log").read_text()
    # The QGC side: what was read back is what was sent; every navigation item was reached, in order.
    assert report.downloaded is not None and item_difference(report.uploaded, report.downloaded) is None
    nav = [it.seq for it in report.uploaded[1:] if it.command < mavlink.MAV_CMD_NAV_LAST]
    assert report.reached == nav and report.armed is False
    assert abs(report.final[2]) < 0.3   # landed: relative altitude ~ 0

    (seq,) = sorted(out.glob("drone_*"))
    manifest = json.loads((seq / "sequence.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["mavlink"]["items_reached"] == nav
    assert len(manifest["mavlink"]["missions"]) == 1
    poses = [json.loads(p.read_text()) for p in sorted((seq / "poses").glob("*.json"))]
    xyz = np.array([p["pose_13d"][:3] for p in poses])
    t = np.array([p["timestamp"] for p in poses])
    assert np.allclose(np.diff(t), 0.25)
    home = xyz[0]
    # Lines east-west at y = home_y - 20, home_y, home_y + 20, from x = home_x - 20 to + 20, 30 m above home.
    for dy in (-20.0, 0.0, 20.0):
        for dx in (-20.0, 20.0):
            corner = home + [dx, dy, 30.0]
            d = np.linalg.norm(xyz - corner, axis=1)
            assert d.min() < 1.5, f"the drone never came near the survey corner {corner.round(1)} ({d.min():.1f} m)"
    on_lines = (np.abs(xyz[:, 0] - home[0]) < 18) & (np.abs(np.abs(xyz[:, 1] - home[1]) - 20) < 0.5)
    assert on_lines.sum() > 5 and np.allclose(xyz[on_lines, 2], home[2] + 30.0, atol=0.5)
    assert np.allclose(xyz[-1], home, atol=0.3)   # back home, on the ground
