"""``vlwm sim-server --backend gazebo``: plan and run a Gazebo Harmonic + ArduPilot SITL session.

What a session is (``<out>/gazebo_<YYYYmmdd_HHMMSS>/``, see docs/gazebo.md):

* ``world/world.sdf`` — the scene exported by :func:`vlwm.world.export.export_gazebo` with one
  ``<include>`` per vehicle (``world/models/vlwm_<vehicle id>/``, :mod:`vlwm.sim.gazebo.vehicle_models`),
  vehicles placed like the built-in backend places them (:func:`~vlwm.sim.placement.drone_sites`,
  :func:`~vlwm.sim.placement.place_rovers`), drones first.
* ``gz sim`` on it (``-s --headless-rendering`` with ``--headless``; ``--iterations`` for
  ``--duration``); real-time factor ``--speed`` (``--fast``: as fast as possible).
* one ArduPilot SITL per vehicle, run directly from ``<ardupilot>/build/sitl/bin`` with
  sim_vehicle.py's parameter files for the frame: vehicle ``i`` is SITL instance ``-I i``,
  ``--sysid i+1``, talks to its model's plugin on FDM port ``9002 + 10 i`` and sends MAVLink to
  UDP ``host:(port_base + 10 i)``, the port the built-in backend uses, so
  ``scripts/data_collection_mission.py --connect udp:127.0.0.1:14550`` flies vehicle 0 either way.
  SITL's home is the world origin (the JSON interface reports positions relative to it).
* with ``--record``: ``ros_gz_bridge`` (``ros_gz_bridge.yaml``), one ``static_transform_publisher``
  per sensor (its mount on ``/tf_static``) and ``ros2 bag record`` of those topics into ``bag/``,
  which ``vlwm import-bag`` turns into one recording per vehicle (the commands are printed).
  ``launch_plan.json`` records vehicles, ports, topics, calibrations and commands.

Child processes run in their own process groups with logs under ``logs/``; Ctrl-C, SIGTERM, the
end of ``--duration`` or any child exiting stops them all (bag first, so it closes cleanly).
Before anything is written, :class:`Stack` checks that the stack is installed; what is missing is
reported with exit code :data:`EXIT_STACK_MISSING`.  ``--dry-run`` prints the plan and writes nothing.
The command itself (options, stack check, dry run) is :func:`vlwm.sim.cli.cmd_gazebo`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from vlwm.io.frames import matrix_to_quat
from vlwm.sim.gazebo.vehicle_models import (VEHICLE_MODELS, BridgedTopic, SensorRig, Stack, VehicleModel, body_frame,
                                      model_folder, sensor_transforms, vehicle_topics, write_vehicle_model)
from vlwm.sim.mavlink.ports import GCS_PORT, sitl_ports
from vlwm.sim.placement import drone_sites, place_rovers
from vlwm.world.export import PHYSICS_MAX_STEP_S, WorldInclude, export_gazebo
from vlwm.world.scene import Scene

FAST_REAL_TIME_FACTOR = -1.0      #: <= 0: gz steps as fast as it can (the value ArduPilot's example worlds use)
FAST_SITL_SPEEDUP = 100.0         #: SITL's --speedup cap with --fast; lock-step with Gazebo sets the pace
GZ_VERBOSITY = 3
STOP_GRACE_S = 10.0               #: per signal (SIGINT, then SIGTERM) before SIGKILL
POLL_S = 0.2
EXIT_STACK_MISSING = 3
CITY_MODEL = "vlwm_city"


@dataclass(frozen=True)
class GazeboConfig:
    """What a Gazebo session runs (``vlwm sim-server --backend gazebo`` options)."""

    drones: int = 1
    """Number of drones (vehicles 0 .. drones-1)."""
    rovers: int = 1
    """Number of rovers (the vehicles after the drones)."""
    headless: bool = False
    """Server only, sensors rendered offscreen (no GUI)."""
    speed: float = 1.0
    """Real-time factor; ``math.inf`` = as fast as possible (``--fast``)."""
    duration_s: float | None = None
    """Sim seconds to run (gz ``--iterations``); None = until Ctrl-C."""
    rate_hz: float = 2.0
    """Camera and lidar update rate, Hz."""
    image_size: tuple[int, int] = (640, 360)
    """Camera width, height, pixels."""
    cameras: bool = True
    """Give vehicles the six cameras."""
    lidar: bool = True
    """Give vehicles the lidar."""
    record: bool = False
    """Bridge the sensor topics to ROS 2 and record them with ``ros2 bag``."""
    port_base: int = GCS_PORT
    """GCS UDP port of vehicle 0 (vehicle i: ``port_base + 10 i``)."""
    host: str = "127.0.0.1"
    """Address SITL sends MAVLink to."""
    seed: int = 0
    """gz ``--seed``."""

    def __post_init__(self):
        if self.drones < 0 or self.rovers < 0 or self.drones + self.rovers == 0:
            raise ValueError(f"GazeboConfig: need at least one vehicle, got {self.drones} drones, {self.rovers} rovers")
        if not self.speed > 0 or not self.rate_hz > 0:
            raise ValueError(f"GazeboConfig: speed ({self.speed}) and rate ({self.rate_hz}) must be positive")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"GazeboConfig: duration must be positive, got {self.duration_s}")

    @property
    def kinds(self) -> list[str]:
        return ["drone"] * self.drones + ["rover"] * self.rovers


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VehiclePlan:
    """One vehicle: its SITL instance, ports, model and where it starts."""

    vehicle_id: str
    """``drone_<k>`` / ``rover_<k>``."""
    kind: str
    index: int
    """Vehicle index = SITL instance (``-I``)."""
    sysid: int
    gcs_port: int
    """UDP port SITL sends MAVLink to (``port_base + 10 index``)."""
    fdm_port: int
    """ArduPilotPlugin ``fdm_port_in`` = SITL's JSON port (``9002 + 10 index``)."""
    pose: tuple[float, float, float, float, float, float]
    """Model origin at spawn: x, y, z (m, local ENU world), roll, pitch, yaw (rad)."""
    model: VehicleModel
    rig: SensorRig


@dataclass(frozen=True)
class ProcessSpec:
    """A child process: argv, working folder, extra environment, log file."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...]
    log: Path

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        return f"(cd {shlex.quote(str(self.cwd))} && {env + ' ' if env else ''}{shlex.join(self.argv)})"


@dataclass(frozen=True)
class LaunchPlan:
    """Everything a session writes and starts (see the module docstring)."""

    config: GazeboConfig
    session_dir: Path
    world_name: str
    home: tuple[float, float, float]
    """SITL home = world origin: latitude, longitude (deg), altitude (m AMSL)."""
    vehicles: tuple[VehiclePlan, ...]
    processes: tuple[ProcessSpec, ...]
    topics: tuple[BridgedTopic, ...]
    """Topics bridged and recorded (empty without --record); ``/tf_static`` is recorded too."""
    scene_ref: str

    @property
    def world_dir(self) -> Path:
        return self.session_dir / "world"

    @property
    def world_file(self) -> Path:
        return self.world_dir / "world.sdf"

    @property
    def bridge_config(self) -> Path:
        return self.session_dir / "ros_gz_bridge.yaml"

    @property
    def bag_dir(self) -> Path:
        return self.session_dir / "bag"

    @property
    def plan_file(self) -> Path:
        return self.session_dir / "launch_plan.json"

    def import_commands(self) -> list[tuple[str, ...]]:
        """``vlwm import-bag`` per vehicle: its topics from the bag into ``<out>/<vehicle id>_<stamp>``."""
        stamp = self.session_dir.name.removeprefix("gazebo_")
        return [("vlwm", "import-bag", str(self.bag_dir), "--out",
                 str(self.session_dir.parent / f"{v.vehicle_id}_{stamp}"), "--agent", v.kind,
                 "--topics", *[t.topic for t in vehicle_topics(v.vehicle_id, v.rig)]) for v in self.vehicles]

    def gt_commands(self) -> list[tuple[str, ...]]:
        """``vlwm gt`` per imported recording: exact semantic occupancy from the scene Gazebo ran.

        The Gazebo lidar carries no labels, so ``--source lidar`` would give geometry only; the
        world is our exported scene in the same local frame as the odometry, so the scene source
        applies (static city only: Gazebo runs no traffic).
        """
        stamp = self.session_dir.name.removeprefix("gazebo_")
        scene = self.scene_ref.split(" (", 1)[0]
        return [("vlwm", "gt", "--input", str(self.session_dir.parent / f"{v.vehicle_id}_{stamp}"),
                 "--source", "scene", "--scene", scene) for v in self.vehicles]

    def files(self) -> list[tuple[Path, str]]:
        """(path, what) of every file or folder the session writes."""
        out = [(self.world_file, f"SDF world: scene as model '{CITY_MODEL}' + {len(self.vehicles)} vehicle includes"),
               (self.world_dir / "models" / CITY_MODEL, "city mesh model")]
        for v in self.vehicles:
            out.append((self.world_dir / "models" / model_folder(v.vehicle_id) / "model.sdf",
                        f"{v.model.base_model} renamed '{v.vehicle_id}', fdm_port_in {v.fdm_port}, sensors on "
                        f"link vlwm_sensors"))
        out += [(self.session_dir / "sitl" / v.vehicle_id, "SITL working folder (eeprom, logs)") for v in self.vehicles]
        out.append((self.plan_file, "this plan (vehicles, ports, topics, calibrations) for vlwm import-bag"))
        if self.config.record:
            out += [(self.bridge_config, f"ros_gz_bridge config, {len(self.topics)} topics GZ_TO_ROS"),
                    (self.bag_dir, "ros2 bag (written by ros2 bag record)")]
        out.append((self.session_dir / "logs", "one log per child process"))
        return out

    def describe(self) -> list[str]:
        """The plan for people: vehicles and ports, files, commands."""
        c = self.config
        pace = "as fast as possible (--fast)" if math.isinf(c.speed) else f"real-time factor {c.speed:g}"
        lines = [f"session {self.session_dir}: world '{self.world_name}' ({self.scene_ref}), home "
                 f"{self.home[0]:.7f}, {self.home[1]:.7f}, {self.home[2]:.1f} m AMSL, {pace}, "
                 + (f"{c.duration_s:g} s of sim time" if c.duration_s else "until Ctrl-C")]
        for v in self.vehicles:
            x, y, z, _, _, yaw = v.pose
            lines.append(f"{v.vehicle_id}: sysid {v.sysid}, SITL -I{v.index} ({v.model.sitl_binary}, frame "
                         f"{v.model.sitl_frame}), model {v.model.base_model} at ({x:.1f}, {y:.1f}, {z:.2f}) yaw "
                         f"{math.degrees(yaw):.0f} deg, FDM port {v.fdm_port}; MAVLink to udp {c.host}:{v.gcs_port} "
                         f"(client: --connect udp:{c.host}:{v.gcs_port})")
        lines.append("files:")
        lines += [f"  {p}  ({what})" for p, what in self.files()]
        lines.append("commands:")
        lines += [f"  [{p.name}] {p.shell()}  > {p.log}" for p in self.processes]
        if c.record:
            lines.append("afterwards, one recording per vehicle:")
            lines += [f"  {shlex.join(cmd)}" for cmd in self.import_commands()]
            lines.append("and its semantic occupancy from the scene Gazebo ran:")
            lines += [f"  {shlex.join(cmd)}" for cmd in self.gt_commands()]
        return lines

    def to_json(self) -> dict:
        return {"world": self.world_name, "world_file": str(self.world_file), "scene": self.scene_ref,
                "home": dict(zip(("lat", "lon", "alt_amsl_m"), self.home)),
                "speed": "fast" if math.isinf(self.config.speed) else self.config.speed,
                "rate_hz": self.config.rate_hz, "duration_s": self.config.duration_s,
                "bag": str(self.bag_dir) if self.config.record else None,
                "vehicles": [{"id": v.vehicle_id, "kind": v.kind, "sysid": v.sysid, "sitl_instance": v.index,
                              "gcs_udp": f"{self.config.host}:{v.gcs_port}", "fdm_port": v.fdm_port,
                              "model": v.model.base_model, "spawn_pose": list(v.pose),
                              "body_origin_in_model": list(v.model.body_origin),
                              "topics": [t.topic for t in vehicle_topics(v.vehicle_id, v.rig)],
                              "sensors": _calibration(v), "gazebo_sensors": GAZEBO_SENSOR_NOTE}
                             for v in self.vehicles],
                "processes": [{"name": p.name, "argv": list(p.argv), "cwd": str(p.cwd)} for p in self.processes],
                "import_commands": [list(cmd) for cmd in self.import_commands()] if self.config.record else [],
                "gt_commands": [list(cmd) for cmd in self.gt_commands()] if self.config.record else []}


GAZEBO_SENSOR_NOTE = ("T_body_sensor as in the built-in backend (body frame = vlwm_sensors link); gpu_lidar "
                      "points in the lidar frame (x forward, y left, z up), all columns at one instant, fields "
                      "x, y, z, intensity, ring (no label/instance); camera intrinsics: Gazebo's, from each "
                      "camera_info topic")


def _calibration(v: "VehiclePlan") -> dict:
    """``sequence.json``-style sensor entries of a vehicle's rig (only the sensors it has)."""
    from vlwm.sim.lidar import drone_lidar, rover_lidar
    from vlwm.sim.simulator import sensor_calibration

    lidar = v.rig.lidar or (drone_lidar() if v.kind == "drone" else rover_lidar())
    sensors = sensor_calibration(v.kind, lidar, v.rig.cameras)
    if v.rig.lidar is None:
        del sensors["LIDAR"]
    return sensors


def spawn_poses(scene: Scene, drones: int, rovers: int) -> list[tuple[float, float, float, float, float, float]]:
    """Model-independent starts (x, y, ground z, 0, 0, yaw), drones first, placed as the built-in backend does."""
    sites = drone_sites(scene, drones)
    poses = [(float(s[0]), float(s[1]), float(s[2]), 0.0, 0.0, 0.0) for s in sites]
    for rover in place_rovers(scene, rovers, avoid=sites):
        p = rover.position
        poses.append((float(p[0]), float(p[1]), float(p[2]), 0.0, 0.0, float(rover.yaw)))
    return poses


def plan_launch(config: GazeboConfig, scene: Scene, session_dir: str | os.PathLike, stack: Stack,
                scene_ref: str = "", world_name: str = CITY_MODEL) -> LaunchPlan:
    """The full plan; pure (writes and starts nothing).  Unfound stack pieces appear as ``<...>`` placeholders."""
    session_dir = Path(session_dir)
    lat, lon, alt = scene.geo.latlon()
    vehicles = []
    counts = {"drone": 0, "rover": 0}
    for i, (kind, ground) in enumerate(zip(config.kinds, spawn_poses(scene, config.drones, config.rovers))):
        spec = VEHICLE_MODELS[kind]
        gcs, fdm = sitl_ports(i, config.port_base)
        pose = (ground[0], ground[1], ground[2] + spec.spawn_height_m, *ground[3:])
        rig = SensorRig.for_vehicle(kind, config.rate_hz, config.image_size, config.cameras, config.lidar)
        vehicles.append(VehiclePlan(f"{kind}_{counts[kind]}", kind, i, i + 1, gcs, fdm, pose, spec, rig))
        counts[kind] += 1
    topics = [BridgedTopic("/clock", "gz.msgs.Clock", "rosgraph_msgs/msg/Clock")]
    for v in vehicles:
        topics += vehicle_topics(v.vehicle_id, v.rig)
    plan = LaunchPlan(config, session_dir, world_name, (lat, lon, alt), tuple(vehicles), (),
                      tuple(topics) if config.record else (), scene_ref)
    return replace(plan, processes=tuple(_processes(plan, stack)))


def _processes(plan: LaunchPlan, stack: Stack) -> list[ProcessSpec]:
    c, logs = plan.config, plan.session_dir / "logs"
    resources = os.pathsep.join([str(plan.world_dir / "models"), *map(str, stack.resource_dirs)])
    gz = [stack.gz or "gz", "sim", "-v", str(GZ_VERBOSITY)]
    if c.headless:
        gz += ["-s", "--headless-rendering"]
    gz += ["-r", "--seed", str(c.seed)]
    if c.duration_s is not None:
        gz += ["--iterations", str(int(round(c.duration_s / PHYSICS_MAX_STEP_S)))]
    procs = [ProcessSpec("gz", (*gz, str(plan.world_file)), plan.world_dir,
                         (("GZ_SIM_RESOURCE_PATH", resources),), logs / "gz.log")]
    speedup = FAST_SITL_SPEEDUP if math.isinf(c.speed) else c.speed
    home = ",".join(f"{v:.9f}".rstrip("0").rstrip(".") for v in plan.home) + ",0"
    for v in plan.vehicles:
        ardupilot = stack.ardupilot_dir or Path("<ardupilot>")
        binary = stack.sitl_binary(v.model.sitl_binary) or ardupilot / "build" / "sitl" / "bin" / v.model.sitl_binary
        defaults = ",".join(str(ardupilot / "Tools" / "autotest" / rel) for rel in v.model.sitl_defaults)
        argv = (str(binary), "--model", "JSON", "--speedup", f"{speedup:g}", "--defaults", defaults,
                "-I", str(v.index), "--sysid", str(v.sysid), "--home", home,
                "--serial0", f"udpclient:{c.host}:{v.gcs_port}")
        procs.append(ProcessSpec(f"sitl_{v.vehicle_id}", argv, plan.session_dir / "sitl" / v.vehicle_id, (),
                                 logs / f"sitl_{v.vehicle_id}.log"))
    if c.record:
        ros2 = stack.ros2 or "ros2"
        for v in plan.vehicles:            # sensor mounts on /tf_static, for vlwm import-bag
            for frame, t in sensor_transforms(v.vehicle_id, v.rig):
                q = matrix_to_quat(t[:3, :3])                                  # (x, y, z, w)
                values = [*t[:3, 3], *q]
                argv = [ros2, "run", "tf2_ros", "static_transform_publisher"]
                for key, value in zip(("--x", "--y", "--z", "--qx", "--qy", "--qz", "--qw"), values):
                    argv += [key, f"{float(value):.9g}"]
                argv += ["--frame-id", body_frame(v.vehicle_id), "--child-frame-id", frame]
                name = "tf_" + frame.replace("/", "_")
                procs.append(ProcessSpec(name, tuple(argv), plan.session_dir, (), logs / f"{name}.log"))
        procs.append(ProcessSpec("bridge", (ros2, "run", "ros_gz_bridge", "parameter_bridge", "--ros-args", "-p",
                                            f"config_file:={plan.bridge_config}"), plan.session_dir, (),
                                 logs / "bridge.log"))
        procs.append(ProcessSpec("bag", (ros2, "bag", "record", "-o", str(plan.bag_dir), "/tf_static",
                                         *[t.topic for t in plan.topics]), plan.session_dir, (), logs / "bag.log"))
    return procs


def bridge_yaml(topics: Sequence[BridgedTopic], world_name: str) -> str:
    """ros_gz_bridge ``config_file``: one GZ_TO_ROS entry per topic (``/clock`` from the world's clock)."""
    lines = [f"# ros_gz_bridge parameter_bridge config written by vlwm (world '{world_name}'): Gazebo -> ROS 2"]
    for t in topics:
        gz_topic = f"/world/{world_name}/clock" if t.topic == "/clock" else t.topic
        lines += [f"- ros_topic_name: {json.dumps(t.topic)}", f"  gz_topic_name: {json.dumps(gz_topic)}",
                  f"  ros_type_name: {json.dumps(t.ros_type)}", f"  gz_type_name: {json.dumps(t.gz_type)}",
                  "  direction: GZ_TO_ROS", "  lazy: false"]
    return "\n".join(lines) + "\n"


def write_session(plan: LaunchPlan, scene: Scene, stack: Stack) -> None:
    """Write the world, vehicle models, SITL folders, bridge config and ``launch_plan.json``."""
    models = plan.world_dir / "models"
    includes = []
    for v in plan.vehicles:
        base = stack.base_model(v.model)
        if base is None:
            raise FileNotFoundError(f"{v.model.base_model}: not found on GZ_SIM_RESOURCE_PATH")
        write_vehicle_model(base, v.model, v.vehicle_id, v.fdm_port, v.rig, models)
        includes.append(WorldInclude(f"model://{model_folder(v.vehicle_id)}", v.vehicle_id, v.pose))
    rtf = FAST_REAL_TIME_FACTOR if math.isinf(plan.config.speed) else plan.config.speed
    export_gazebo(scene, plan.world_dir, model_name=CITY_MODEL, world_name=plan.world_name, includes=includes,
                  real_time_factor=rtf)
    for p in plan.processes:
        p.cwd.mkdir(parents=True, exist_ok=True)
        p.log.parent.mkdir(parents=True, exist_ok=True)
    if plan.config.record:
        plan.bridge_config.write_text(bridge_yaml(plan.topics, plan.world_name), encoding="utf-8")
    plan.plan_file.write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


class Supervisor:
    """Child processes in their own process groups; :meth:`stop_all` ends them in reverse start order."""

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log
        self.running: list[tuple[ProcessSpec, subprocess.Popen]] = []

    def start(self, spec: ProcessSpec) -> subprocess.Popen:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log_file:
            proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env={**os.environ, **dict(spec.env)},
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.running.append((spec, proc))
        return proc

    def exited(self) -> list[tuple[ProcessSpec, int]]:
        return [(spec, proc.returncode) for spec, proc in self.running if proc.poll() is not None]

    def stop_all(self) -> None:
        for spec, proc in reversed(self.running):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.log(f"sim-server: {spec.name} (pid {proc.pid}) ignored {sig.name}")
            proc.wait()


def run_session(plan: LaunchPlan, log: Callable[[str], None] = print,
                stop: threading.Event | None = None) -> int:
    """Start the plan's processes and supervise them until gz ends, a child fails, or ``stop`` is set."""
    stop = stop or threading.Event()
    supervisor = Supervisor(log)
    status = 0
    try:
        for spec in plan.processes:
            supervisor.start(spec)
            log(f"sim-server: started {spec.name}: {shlex.join(spec.argv)}")
        while not stop.is_set():
            done = supervisor.exited()
            if done:
                spec, code = done[0]
                if spec.name == "gz" and code == 0:
                    log("sim-server: gz finished (--duration reached)")
                else:
                    log(f"sim-server: {spec.name} exited with code {code}; see {spec.log}")
                    status = 1
                break
            stop.wait(POLL_S)
    finally:
        alive = [s.name for s, p in supervisor.running if p.poll() is None]
        if alive:
            log(f"sim-server: stopping {len(alive)} process(es): {', '.join(reversed(alive))}")
        supervisor.stop_all()
    return status


# ---------------------------------------------------------------------------------------------
# The session folder
# ---------------------------------------------------------------------------------------------


def new_session_dir(out: Path) -> Path:
    """A session folder path that does not exist yet: ``<out>/gazebo_<YYYYmmdd_HHMMSS>[_k]`` (not created)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    path, k = out / f"gazebo_{stamp}", 1
    while path.exists():
        path, k = out / f"gazebo_{stamp}_{k}", k + 1
    return path
