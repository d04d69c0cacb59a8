"""``--backend gazebo``: the launch plan, the files it writes, and the launcher around it.

Gazebo and ArduPilot cannot be installed here, so the stack is faked: a resource folder with
minimal ArduPilot-style base models, an empty plugin library, an ArduPilot tree whose SITL
"binaries" are shell scripts, and ``gz``/``ros2`` scripts that log their arguments.  The files are
checked by parsing them as Gazebo would (SDF, ``model://`` resolution, the bridge YAML); the
processes by what they were started with and that none outlives the launcher.
"""

import json
import os
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from vlwm.sim.camera import CAMERA_NAMES, camera_rig
from vlwm.io.frames import quat_to_matrix
from vlwm.sim.gazebo.backend import (EXIT_STACK_MISSING, FAST_REAL_TIME_FACTOR, GazeboConfig, bridge_yaml,
                                     plan_launch, write_session)
from vlwm.sim.gazebo.vehicle_models import (DRONE_MODEL, PLUGIN_LIBRARY, ROVER_MODEL, SENSOR_LINK, SensorRig, Stack,
                                      vehicle_model_sdf)
from vlwm.sim.lidar import drone_lidar, rover_lidar
from vlwm.sim.placement import MIN_SPAWN_SEPARATION_M
from vlwm.world.export import WorldInclude, export_gazebo
from vlwm.world.procedural import CityConfig, generate_city

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "launch_occworld_simulation.sh"

IRIS_SDF = """<?xml version='1.0'?>
<sdf version="1.9">
  <model name="iris_with_ardupilot">
    <include><uri>model://iris_with_standoffs</uri></include>
    <link name="marker"><visual name="v"><geometry><mesh><uri>meshes/marker.dae</uri></mesh></geometry></visual></link>
    <plugin name="ArduPilotPlugin" filename="ArduPilotPlugin">
      <fdm_addr>127.0.0.1</fdm_addr>
      <fdm_port_in>9002</fdm_port_in>
      <imuName>iris_with_standoffs::imu_link::imu_sensor</imuName>
    </plugin>
  </model>
</sdf>
"""
WILDTHUMPER_SDF = """<sdf version='1.9'>
  <model name='wildthumper'>
    <link name='base_link'/>
    <plugin name="ArduPilotPlugin" filename="ArduPilotPlugin">
      <fdm_addr>127.0.0.1</fdm_addr>
      <fdm_port_in>9002</fdm_port_in>
    </plugin>
  </model>
</sdf>
"""
FAKE_SITL = """#!/usr/bin/env bash
printf '%s\\n' "$0" "$@" > "$FAKE_LOG_DIR/sitl_$$.args"
touch "$FAKE_LOG_DIR/$$.started"
exec sleep 120
"""
FAKE_ROS2 = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_LOG_DIR/ros2_$$.args"
touch "$FAKE_LOG_DIR/$$.started"
exec sleep 120
"""
# gz "runs" until every other child has started, then ends as after --iterations.
FAKE_GZ = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_LOG_DIR/gz.args"
echo "$GZ_SIM_RESOURCE_PATH" > "$FAKE_LOG_DIR/gz.resource_path"
for _ in $(seq 600); do
    [ "$(ls "$FAKE_LOG_DIR" | grep -c '\\.started$')" -ge "$FAKE_EXPECT" ] && exit 0
    sleep 0.1
done
exit 1
"""


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture(scope="module")
def city():
    return generate_city(CityConfig(seed=2, size=220.0))


@pytest.fixture(scope="module")
def city_file(city, tmp_path_factory):
    return city.save(tmp_path_factory.mktemp("scene") / "city.npz")


@pytest.fixture
def fake_stack(tmp_path) -> dict:
    """Environment variables of a complete fake stack (``gz``, plugin, models, SITL, ``ros2``)."""
    root = tmp_path / "stack"
    models = root / "models"
    (models / "iris_with_ardupilot").mkdir(parents=True)
    (models / "iris_with_ardupilot" / "model.sdf").write_text(IRIS_SDF)
    (models / "wildthumper").mkdir()
    (models / "wildthumper" / "model.sdf").write_text(WILDTHUMPER_SDF)
    (root / "plugin").mkdir()
    (root / "plugin" / PLUGIN_LIBRARY).write_bytes(b"")
    ardupilot = root / "ardupilot"
    for binary in ("arducopter", "ardurover"):
        _script(ardupilot / "build" / "sitl" / "bin" / binary, FAKE_SITL)
    for spec in (DRONE_MODEL, ROVER_MODEL):
        for rel in spec.sitl_defaults:
            (ardupilot / "Tools" / "autotest" / rel).parent.mkdir(parents=True, exist_ok=True)
            (ardupilot / "Tools" / "autotest" / rel).write_text("# params\n")
    _script(root / "bin" / "gz", FAKE_GZ)
    _script(root / "bin" / "ros2", FAKE_ROS2)
    (root / "logs").mkdir()
    return {"PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", "OCCWORLD_ARDUPILOT_DIR": str(ardupilot),
            "GZ_SIM_SYSTEM_PLUGIN_PATH": str(root / "plugin"), "GZ_SIM_RESOURCE_PATH": str(models),
            "FAKE_LOG_DIR": str(root / "logs"), "OCCWORLD_ENV_FILE": str(tmp_path / "no_env_file.sh")}


def launch(*args, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def make_plan(city, tmp_path, stack_env, **config):
    config = GazeboConfig(**{"drones": 2, "rovers": 1, "headless": True, "record": True, "image_size": (64, 36),
                             **config})
    return plan_launch(config, city, tmp_path / "session", Stack.detect(stack_env), "city.npz")


# ------------------------------------------------------------------------------ the plan


def test_plan_gives_each_vehicle_its_own_sitl_ports_and_place(city, tmp_path, fake_stack):
    plan = make_plan(city, tmp_path, fake_stack, duration_s=2.0)
    v = plan.vehicles
    assert [x.vehicle_id for x in v] == ["drone_0", "drone_1", "rover_0"]
    assert [x.index for x in v] == [0, 1, 2] and [x.sysid for x in v] == [1, 2, 3]
    assert [x.gcs_port for x in v] == [14550, 14560, 14570]          # the built-in backend's ports
    assert [x.fdm_port for x in v] == [9002, 9012, 9022]             # SITL -I i talks JSON to 9002 + 10 i
    xy = np.array([x.pose[:2] for x in v])
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1)[np.triu_indices(3, 1)]
    assert gaps.min() >= MIN_SPAWN_SEPARATION_M
    assert v[0].pose[2] == pytest.approx(city.ground_height(*v[0].pose[:2]) + DRONE_MODEL.spawn_height_m, abs=0.3)

    procs = {p.name: p for p in plan.processes}
    assert [n for n in procs if not n.startswith("tf_")] == ["gz", "sitl_drone_0", "sitl_drone_1", "sitl_rover_0",
                                                              "bridge", "bag"]
    assert sum(n.startswith("tf_") for n in procs) == 3 * (1 + len(CAMERA_NAMES))   # one static TF per sensor
    gz = procs["gz"].argv
    assert gz[:2] == (fake_stack["PATH"].split(os.pathsep)[0] + "/gz", "sim")
    assert {"-s", "--headless-rendering", "-r"} <= set(gz) and gz[-1] == str(plan.world_file)
    assert gz[gz.index("--iterations") + 1] == "2000"                # 2 s of 1 ms physics steps
    lat, lon, alt = city.geo.latlon()
    for x in v:
        argv = procs[f"sitl_{x.vehicle_id}"].argv
        assert Path(argv[0]).name == x.model.sitl_binary
        assert argv[argv.index("-I") + 1] == str(x.index) and argv[argv.index("--sysid") + 1] == str(x.sysid)
        assert argv[argv.index("--model") + 1] == "JSON"
        assert argv[argv.index("--serial0") + 1] == f"udpclient:127.0.0.1:{x.gcs_port}"
        home = [float(h) for h in argv[argv.index("--home") + 1].split(",")]
        assert home == pytest.approx([lat, lon, alt, 0.0], abs=1e-6)    # SITL's origin = the world's
        assert all(Path(d).is_file() for d in argv[argv.index("--defaults") + 1].split(","))
        assert procs[f"sitl_{x.vehicle_id}"].cwd == plan.session_dir / "sitl" / x.vehicle_id
    assert "--iterations" not in make_plan(city, tmp_path, fake_stack).processes[0].argv


def test_written_world_has_vehicle_includes_with_sensors_and_own_ports(city, tmp_path, fake_stack):
    plan = make_plan(city, tmp_path, fake_stack, rate_hz=2.0)
    write_session(plan, city, Stack.detect(fake_stack))
    world = ET.parse(plan.world_file).getroot().find("world")
    assert float(world.findtext("physics/real_time_factor")) == 1.0
    includes = {inc.findtext("name"): inc for inc in world.findall("include")}
    assert list(includes) == ["vlwm_city", "drone_0", "drone_1", "rover_0"]
    models = plan.world_dir / "models"
    for v in plan.vehicles:
        inc = includes[v.vehicle_id]
        assert [float(p) for p in inc.findtext("pose").split()] == pytest.approx(v.pose)
        folder = models / inc.findtext("uri").removeprefix("model://")
        assert (folder / "model.config").is_file()
        model = ET.parse(folder / "model.sdf").getroot().find("model")
        assert model.get("name") == v.vehicle_id
        plugin = model.find("plugin[@name='ArduPilotPlugin']")
        assert int(plugin.findtext("fdm_port_in")) == v.fdm_port
        joint = model.find(f"joint[child='{SENSOR_LINK}']")
        assert joint.get("type") == "fixed" and joint.findtext("parent") == v.model.base_link
        link = model.find(f"link[@name='{SENSOR_LINK}']")
        assert [float(p) for p in link.findtext("pose").split()] == pytest.approx([*v.model.body_origin, 0, 0, 0])
        lidar = link.findall("sensor[@type='gpu_lidar']")
        cams = link.findall("sensor[@type='camera']")
        assert len(lidar) == 1 and [c.get("name") for c in cams] == list(CAMERA_NAMES)
        expected = drone_lidar() if v.kind == "drone" else rover_lidar()
        assert int(lidar[0].findtext("lidar/scan/horizontal/samples")) == expected.columns
        assert int(lidar[0].findtext("lidar/scan/vertical/samples")) == expected.beams
        assert float(lidar[0].findtext("lidar/scan/vertical/min_angle")) == pytest.approx(
            np.deg2rad(expected.fov_down_deg))
        assert lidar[0].findtext("topic") == f"/vlwm/{v.vehicle_id}/lidar"
        for cam, cfg in zip(cams, camera_rig(v.kind, 64, 36)):       # same mounts as the built-in backend
            assert [float(p) for p in cam.findtext("pose").split()] == pytest.approx([*cfg.mount_xyz,
                                                                                     *cfg.mount_rpy])
            assert (int(cam.findtext("camera/image/width")), int(cam.findtext("camera/image/height"))) == (64, 36)
            assert float(cam.findtext("update_rate")) == 2.0
        odom = model.find("plugin[@name='gz::sim::systems::OdometryPublisher']")
        assert [float(p) for p in odom.findtext("xyz_offset").split()] == pytest.approx(v.model.body_origin)
    drone = ET.parse(models / "vlwm_drone_0" / "model.sdf").getroot()
    mesh_uri = drone.find(".//link[@name='marker']//uri").text
    assert Path(mesh_uri).is_absolute() and mesh_uri.endswith("iris_with_ardupilot/meshes/marker.dae")
    assert drone.find("model/include/uri").text == "model://iris_with_standoffs"   # still on the resource path

    saved = json.loads(plan.plan_file.read_text())
    assert [(x["id"], x["fdm_port"], x["gcs_udp"]) for x in saved["vehicles"]] == [
        ("drone_0", 9002, "127.0.0.1:14550"), ("drone_1", 9012, "127.0.0.1:14560"),
        ("rover_0", 9022, "127.0.0.1:14570")]
    assert set(saved["vehicles"][0]["sensors"]) == {"LIDAR", *CAMERA_NAMES}
    assert all(p.cwd.is_dir() for p in plan.processes)


def test_fast_runs_unpaced_and_sensors_can_be_left_out(city, tmp_path, fake_stack):
    plan = make_plan(city, tmp_path, fake_stack, speed=float("inf"), cameras=False, record=False)
    write_session(plan, city, Stack.detect(fake_stack))
    world = ET.parse(plan.world_file).getroot().find("world")
    assert float(world.findtext("physics/real_time_factor")) == FAST_REAL_TIME_FACTOR
    sitl = plan.processes[1].argv
    assert float(sitl[sitl.index("--speedup") + 1]) > 1
    model = ET.parse(plan.world_dir / "models" / "vlwm_rover_0" / "model.sdf").getroot()
    assert [s.get("type") for s in model.iter("sensor")] == ["gpu_lidar"]
    assert [p.name for p in plan.processes] == ["gz", "sitl_drone_0", "sitl_drone_1", "sitl_rover_0"]
    assert not plan.bridge_config.exists()


def test_bridge_config_lists_every_recorded_topic(city, tmp_path, fake_stack):
    yaml = pytest.importorskip("yaml")
    plan = make_plan(city, tmp_path, fake_stack)
    entries = yaml.safe_load(bridge_yaml(plan.topics, plan.world_name))
    assert all(e["direction"] == "GZ_TO_ROS" and e["lazy"] is False for e in entries)
    by_topic = {e["ros_topic_name"]: e for e in entries}
    assert by_topic["/clock"]["gz_topic_name"] == f"/world/{plan.world_name}/clock"
    for v in plan.vehicles:
        root = f"/vlwm/{v.vehicle_id}"
        assert by_topic[f"{root}/lidar/points"]["ros_type_name"] == "sensor_msgs/msg/PointCloud2"
        assert by_topic[f"{root}/lidar/points"]["gz_type_name"] == "gz.msgs.PointCloudPacked"
        assert by_topic[f"{root}/odometry"]["ros_type_name"] == "nav_msgs/msg/Odometry"
        for cam in CAMERA_NAMES:
            assert by_topic[f"{root}/{cam}/image"]["gz_type_name"] == "gz.msgs.Image"
            assert by_topic[f"{root}/{cam}/camera_info"]["ros_type_name"] == "sensor_msgs/msg/CameraInfo"
    assert len(entries) == len(by_topic) == 1 + 3 * (2 + 2 * len(CAMERA_NAMES))
    bag = next(p for p in plan.processes if p.name == "bag").argv
    assert bag[1:4] == ("bag", "record", "-o") and set(bag[5:]) == set(by_topic) | {"/tf_static"}


def test_static_transforms_give_the_sensor_mounts_in_the_message_frames(city, tmp_path, fake_stack):
    """/tf_static (recorded for import-bag) holds T_body_sensor under the frame_ids the sensors publish."""
    plan = make_plan(city, tmp_path, fake_stack)
    write_session(plan, city, Stack.detect(fake_stack))
    rig = {"rover_0/lidar": rover_lidar().T_body_sensor(),
           **{f"rover_0/{c.name}": c.T_body_sensor() for c in camera_rig("rover", 64, 36)}}
    model = ET.parse(plan.world_dir / "models" / "vlwm_rover_0" / "model.sdf").getroot()
    assert {s.findtext("gz_frame_id") for s in model.iter("sensor")} == set(rig)
    seen = set()
    for p in plan.processes:
        if not p.name.startswith("tf_rover_0"):
            continue
        a = p.argv
        value = {k: float(a[a.index(k) + 1]) for k in ("--x", "--y", "--z", "--qx", "--qy", "--qz", "--qw")}
        child = a[a.index("--child-frame-id") + 1]
        assert a[a.index("--frame-id") + 1] == "rover_0/body"
        expected = rig[child]
        assert [value["--x"], value["--y"], value["--z"]] == pytest.approx(expected[:3, 3], abs=1e-6)
        q = np.array([value["--qx"], value["--qy"], value["--qz"], value["--qw"]])
        assert quat_to_matrix(q) == pytest.approx(expected[:3, :3], abs=1e-6)
        seen.add(child)
    assert seen == set(rig)
    odom = model.find("model/plugin[@name='gz::sim::systems::OdometryPublisher']")
    assert odom.findtext("odom_frame") == "world" and odom.findtext("robot_base_frame") == "rover_0/body"


def test_world_model_names_must_be_unique(city, tmp_path):
    same = WorldInclude("model://x", "vlwm_city", (0.0,) * 6)
    with pytest.raises(ValueError, match="unique"):
        export_gazebo(city, tmp_path, includes=[same])
    assert not tmp_path.joinpath("world.sdf").exists()


def test_base_model_without_ardupilot_plugin_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.sdf").write_text(
        "<sdf version='1.9'><model name='box'><link name='base_link'/></model></sdf>")
    with pytest.raises(ValueError, match="no ArduPilotPlugin"):
        vehicle_model_sdf(tmp_path / "m", ROVER_MODEL, "rover_0", 9002, SensorRig.for_vehicle("rover", 2.0))


# ------------------------------------------------------------------------------ the stack check


def test_stack_names_each_missing_piece(tmp_path, fake_stack):
    assert Stack.detect(fake_stack).missing(["drone", "rover"], record=True) == []
    bare = Stack.detect({"PATH": "/nonexistent"})
    text = "\n".join(bare.missing(["drone", "rover"], record=True))
    for piece in ("`gz`", PLUGIN_LIBRARY, "iris_with_ardupilot", "wildthumper", "arducopter", "ardurover", "`ros2`"):
        assert piece in text
    no_models = {**fake_stack, "GZ_SIM_RESOURCE_PATH": str(tmp_path / "empty")}
    text = "".join(Stack.detect(no_models).missing(["drone"], record=False))     # only what drones need
    assert "iris_with_ardupilot" in text and "wildthumper" not in text and "ros2" not in text


def test_missing_gz_stops_before_writing_anything(tmp_path, fake_stack, city_file):
    path = os.pathsep.join(p for p in fake_stack["PATH"].split(os.pathsep) if not (Path(p) / "gz").exists())
    out = tmp_path / "out"
    run = launch("--backend", "gazebo", "--drones", "1", "--rovers", "0", "--world", str(city_file),
                 "--out", str(out), env={**fake_stack, "PATH": path}, cwd=tmp_path)
    assert run.returncode == EXIT_STACK_MISSING, run.stdout + run.stderr
    assert "`gz` (Gazebo Harmonic) is not on PATH" in run.stderr
    assert "scripts/install_ardupilot_gazebo_stack.sh" in run.stderr and "--backend builtin" in run.stderr
    assert "plugin" not in run.stderr.split("not on PATH")[1]         # only gz is missing
    assert not out.exists()


# ------------------------------------------------------------------------------ the launcher


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    run = launch("--backend", "gazebo", "--dry-run", "--drones", "2", "--rovers", "1", "--record", "--headless",
                 "--fast", "--world", "procedural", "--city-size", "220", "--out", str(out),
                 env={"OCCWORLD_ENV_FILE": str(tmp_path / "none.sh")}, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    text = run.stdout
    for port in (14550, 14560, 14570, 9002, 9012, 9022):
        assert str(port) in text
    for needle in ("gz sim", "--headless-rendering", "-I 2", "udpclient:127.0.0.1:14570", "ros_gz_bridge",
                   "ros2 bag record", "/vlwm/rover_0/lidar/points", "world.sdf", "launch_plan.json",
                   "stack incomplete: `gz`"):
        assert needle in text, needle
    assert not out.exists()


def test_session_starts_every_process_and_leaves_none_behind(tmp_path, fake_stack, city_file):
    out = tmp_path / "out"
    env = {**fake_stack, "FAKE_EXPECT": str(3 + 3 * 7 + 2)}      # 3 SITL, 3 x 7 static TFs, bridge, bag
    run = launch("--backend", "gazebo", "--drones", "2", "--rovers", "1", "--record", "--headless", "--duration", "1",
                 "--world", str(city_file), "--image-size", "32x18", "--out", str(out), env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "complete" in run.stdout
    logs = Path(fake_stack["FAKE_LOG_DIR"])
    session = next(out.glob("gazebo_*"))
    gz_args = (logs / "gz.args").read_text().split()
    assert gz_args[-1] == str(session / "world" / "world.sdf") and (session / "world" / "world.sdf").is_file()
    assert (logs / "gz.resource_path").read_text().startswith(str(session / "world" / "models"))
    sitl = [f.read_text().split("\n") for f in logs.glob("sitl_*.args")]
    assert sorted(a[a.index("--serial0") + 1] for a in sitl) == [f"udpclient:127.0.0.1:{p}"
                                                                  for p in (14550, 14560, 14570)]
    ros2 = sorted(" ".join(f.read_text().split("\n")[:3]) for f in logs.glob("ros2_*.args"))
    assert ros2 == (["bag record -o", "run ros_gz_bridge parameter_bridge"]
                    + ["run tf2_ros static_transform_publisher"] * 21)
    for started in logs.glob("*.started"):
        with pytest.raises(ProcessLookupError):
            os.kill(int(started.stem), 0)
    assert (session / "ros_gz_bridge.yaml").is_file() and (session / "launch_plan.json").is_file()
    assert {"gz.log", "sitl_drone_0.log", "sitl_drone_1.log", "sitl_rover_0.log", "bridge.log", "bag.log",
            "tf_rover_0_lidar.log"} <= {p.name for p in (session / "logs").iterdir()}
    assert "vlwm import-bag" in run.stdout and "--topics /vlwm/rover_0/odometry" in run.stdout


def test_follow_up_commands_import_each_vehicle_then_voxelise_the_scene_gazebo_ran(city, tmp_path, fake_stack):
    from vlwm.cli import build_parser

    plan = make_plan(city, tmp_path, fake_stack)
    imports, gts = plan.import_commands(), plan.gt_commands()
    assert len(imports) == len(gts) == 3
    parser = build_parser()
    for imp, gt in zip(imports, gts):
        a = parser.parse_args(list(imp[1:]))
        g = parser.parse_args(list(gt[1:]))
        assert g.input == [a.out] and g.source == "scene" and g.scene == "city.npz"
    described = "\n".join(plan.describe())
    assert "vlwm gt --input" in described and "--source scene --scene city.npz" in described
    assert plan.to_json()["gt_commands"] == [list(c) for c in gts]
