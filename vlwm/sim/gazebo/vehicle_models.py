"""Gazebo vehicle models for ``--backend gazebo``: ArduPilot's models, one copy per vehicle, with our sensors.

ArduPilot's Gazebo plugin (``ArduPilotPlugin``) listens for its SITL on the UDP port
``<fdm_port_in>`` written *inside* the model's SDF, and SITL instance ``-I i`` talks to
``9002 + 10 i``; two vehicles therefore cannot share one model file (ArduPilot's multi-vehicle
instructions copy the model folder and change the port).  :func:`write_vehicle_model` does that
for each vehicle: it reads the installed base model (:data:`DRONE_MODEL`: ``iris_with_ardupilot``
from ArduPilot/ardupilot_gazebo; :data:`ROVER_MODEL`: ``wildthumper`` from ArduPilot/SITL_Models),
renames it, sets its port and adds

* a link ``vlwm_sensors`` fixed to the base link whose frame **is our vehicle body frame**
  (docs/conventions.md: x forward, y left, z up; origin at a drone's touch-down point, at a rover's
  kinematic reference point on the ground), carrying the sensors we record with the built-in
  simulator's mounts (:func:`vlwm.sim.camera.camera_rig`, :func:`vlwm.sim.lidar.drone_lidar` /
  :func:`~vlwm.sim.lidar.rover_lidar`), so ``T_body_sensor`` is the same in both backends;
* an ``OdometryPublisher`` offset to the body origin: ground-truth body pose in the world
  (local ENU) frame.

Sensor frames in Gazebo: a camera looks along its own +x (y left, z up), which is the camera
*view* frame of :class:`~vlwm.sim.camera.CameraConfig`, so its SDF pose is ``mount_xyz`` +
``mount_rpy`` (SDF's roll-pitch-yaw = our intrinsic Z-Y-X angles); its image is the OpenCV
optical frame's (x right, y down).  A ``gpu_lidar`` uses x forward, y left, z up like ours, but
scans all columns at one instant, counter-clockwise from azimuth -pi (ours: clockwise from +pi,
see :mod:`vlwm.sim.lidar`), and its points carry no label/instance columns.

:class:`Stack` finds the installed pieces these need (``gz``, the plugin library, the base
models, the SITL binaries and their parameter files, ``ros2``) from PATH and the GZ_SIM_*
variables that ``scripts/install_ardupilot_gazebo_stack.sh`` writes into ``~/.occworld_env.sh``.
"""

from __future__ import annotations

import math
import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from vlwm.sim.camera import CameraConfig, camera_rig
from vlwm.sim.lidar import LidarConfig, drone_lidar, rover_lidar
from vlwm.world import sdf

TOPIC_ROOT = "/vlwm"                     #: every recorded Gazebo/ROS topic is /vlwm/<vehicle id>/...
SENSOR_LINK = "vlwm_sensors"             #: the added link; its frame is the vehicle body frame
SENSOR_LINK_MASS_KG = 0.01               #: small enough not to change the vehicles' dynamics
SENSOR_LINK_INERTIA = 1e-5               #: kg m², diagonal
CAMERA_NEAR_CLIP_M = 0.1
CAMERA_IMAGE_FORMAT = "R8G8B8"
LIDAR_RANGE_RESOLUTION_M = 0.01
ODOMETRY_RATE_HZ = 50.0                  #: body poses for interpolation between sensor frames
ARDUPILOT_PLUGIN = "ArduPilotPlugin"     #: filename and name of ArduPilot's Gazebo system plugin
MODEL_FOLDER_PREFIX = "vlwm_"            #: models/<prefix><vehicle id>/, so they cannot shadow the user's models
PLUGIN_LIBRARY = "libArduPilotPlugin.so"
ARDUPILOT_DIR_ENV = "OCCWORLD_ARDUPILOT_DIR"   #: set by ~/.occworld_env.sh
SDF_DECIMALS = 9                         #: numbers in the vehicle SDF are rounded to 1e-9 m / rad


@dataclass(frozen=True)
class VehicleModel:
    """An ArduPilot Gazebo model and how our body frame and SITL relate to it."""

    kind: str
    """'drone' or 'rover'."""
    base_model: str
    """Folder name of the installed model (found on GZ_SIM_RESOURCE_PATH), with an ArduPilotPlugin."""
    base_link: str
    """Link (scoped name) the sensor link is fixed to."""
    body_origin: tuple[float, float, float]
    """Our body origin in the model frame, m (model axes are x forward, y left, z up like ours)."""
    spawn_height_m: float
    """Height of the model origin above the ground at spawn, m (it settles from there)."""
    sitl_binary: str
    """ArduPilot SITL program under ``build/sitl/bin``."""
    sitl_defaults: tuple[str, ...]
    """Parameter files (relative to ArduPilot's ``Tools/autotest``) sim_vehicle.py uses for this frame."""
    sitl_frame: str
    """sim_vehicle.py frame name these defaults belong to (for the record)."""


#: Iris quad (ardupilot_gazebo).  Its legs end 0.195 m below base_link (the height ArduPilot's
#: iris_runway.sdf spawns it at), so our touch-down origin is (0, 0, -0.195).
DRONE_MODEL = VehicleModel(
    kind="drone", base_model="iris_with_ardupilot", base_link="iris_with_standoffs::base_link",
    body_origin=(0.0, 0.0, -0.195), spawn_height_m=0.195, sitl_binary="arducopter",
    sitl_defaults=("default_params/copter.parm", "default_params/gazebo-iris.parm"), sitl_frame="gazebo-iris")
#: Wild Thumper 6WD skid-steer rover (SITL_Models).  Wheels of 0.062 m radius on axles 0.03 m below
#: base_link: the ground is 0.092 m below it.  A skid-steer vehicle turns about its centre, which
#: plays the role a car's rear axle has in the built-in rover, so the body origin is the ground
#: point under base_link.  SITL_Models' wildthumper_runway.sdf spawns it 0.15 m up.
ROVER_MODEL = VehicleModel(
    kind="rover", base_model="wildthumper", base_link="base_link",
    body_origin=(0.0, 0.0, -0.092), spawn_height_m=0.15, sitl_binary="ardurover",
    sitl_defaults=("default_params/rover.parm", "default_params/rover-skid.parm"), sitl_frame="rover-skid")
VEHICLE_MODELS = {"drone": DRONE_MODEL, "rover": ROVER_MODEL}


class BridgedTopic(NamedTuple):
    """One Gazebo topic and the ROS 2 topic/type ros_gz_bridge turns it into (same name in both)."""

    topic: str
    gz_type: str
    ros_type: str


@dataclass(frozen=True)
class SensorRig:
    """What one vehicle records: cameras and lidar (mounts in the body frame) at ``rate_hz``."""

    cameras: tuple[CameraConfig, ...]
    lidar: LidarConfig | None
    rate_hz: float
    """Camera and lidar update rate, Hz (one lidar sweep per recorded frame)."""

    @classmethod
    def for_vehicle(cls, kind: str, rate_hz: float, image_size: tuple[int, int] = (640, 360),
                    cameras: bool = True, lidar: bool = True) -> "SensorRig":
        """The built-in simulator's rig for a ``'drone'`` or ``'rover'``."""
        return cls(cameras=camera_rig(kind, *image_size) if cameras else (),
                   lidar=(drone_lidar() if kind == "drone" else rover_lidar()) if lidar else None,
                   rate_hz=float(rate_hz))


# ------------------------------------------------------------------------------ topics


def lidar_topic(vehicle_id: str) -> str:
    """gpu_lidar ``<topic>`` (LaserScan); the point cloud is published on ``<topic>/points``."""
    return f"{TOPIC_ROOT}/{vehicle_id}/lidar"


def camera_topic(vehicle_id: str, camera: str) -> str:
    """Camera image topic; gz-sensors publishes CameraInfo beside it, on ``.../camera_info``."""
    return f"{TOPIC_ROOT}/{vehicle_id}/{camera}/image"


def odometry_topic(vehicle_id: str) -> str:
    return f"{TOPIC_ROOT}/{vehicle_id}/odometry"


def body_frame(vehicle_id: str) -> str:
    """TF frame of the body (odometry ``child_frame_id``); the world frame is ``world``."""
    return f"{vehicle_id}/body"


def sensor_transforms(vehicle_id: str, rig: SensorRig) -> list[tuple[str, np.ndarray]]:
    """(frame, (4, 4) float64 T_body_sensor) for ``/tf_static``: the lidar frame ``<id>/lidar`` and each
    camera's *optical* frame ``<id>/<CAM>`` (the messages' ``frame_id``s), children of :func:`body_frame`."""
    out = [(f"{vehicle_id}/lidar", rig.lidar.T_body_sensor())] if rig.lidar is not None else []
    return out + [(f"{vehicle_id}/{cam.name}", cam.T_body_sensor()) for cam in rig.cameras]


def vehicle_topics(vehicle_id: str, rig: SensorRig) -> list[BridgedTopic]:
    """The topics one vehicle's recording needs: odometry, lidar points, camera images and infos."""
    topics = [BridgedTopic(odometry_topic(vehicle_id), "gz.msgs.Odometry", "nav_msgs/msg/Odometry")]
    if rig.lidar is not None:
        topics.append(BridgedTopic(lidar_topic(vehicle_id) + "/points", "gz.msgs.PointCloudPacked",
                                   "sensor_msgs/msg/PointCloud2"))
    for cam in rig.cameras:
        image = camera_topic(vehicle_id, cam.name)
        topics.append(BridgedTopic(image, "gz.msgs.Image", "sensor_msgs/msg/Image"))
        topics.append(BridgedTopic(image.rsplit("/", 1)[0] + "/camera_info", "gz.msgs.CameraInfo",
                                   "sensor_msgs/msg/CameraInfo"))
    return topics


# ------------------------------------------------------------------------------ model files


def find_model(name: str, resource_dirs: Sequence[os.PathLike | str]) -> Path | None:
    """The first ``<dir>/<name>/model.sdf`` on the resource path (what ``model://<name>`` resolves to)."""
    for d in resource_dirs:
        candidate = Path(d) / name
        if (candidate / "model.sdf").is_file():
            return candidate
    return None


def _pose(xyz, rpy=(0.0, 0.0, 0.0)) -> str:
    return sdf.vec((*xyz, *rpy), SDF_DECIMALS)


def _camera_sensor(cam: CameraConfig, vehicle_id: str, rate_hz: float) -> ET.Element:
    sensor = ET.Element("sensor", name=cam.name, type="camera")
    sdf.sub(sensor, "pose", _pose(cam.mount_xyz, cam.mount_rpy))     # looks along its +x = our view frame
    sdf.sub(sensor, "topic", camera_topic(vehicle_id, cam.name))
    sdf.sub(sensor, "gz_frame_id", f"{vehicle_id}/{cam.name}")
    sdf.sub(sensor, "update_rate", sdf.num(rate_hz, SDF_DECIMALS))
    sdf.sub(sensor, "always_on", "1")
    camera = sdf.sub(sensor, "camera")
    sdf.sub(camera, "horizontal_fov", sdf.num(math.radians(cam.fov_x_deg), SDF_DECIMALS))
    image = sdf.sub(camera, "image")
    sdf.sub(image, "width", cam.width)
    sdf.sub(image, "height", cam.height)
    sdf.sub(image, "format", CAMERA_IMAGE_FORMAT)
    clip = sdf.sub(camera, "clip")
    sdf.sub(clip, "near", sdf.num(CAMERA_NEAR_CLIP_M, SDF_DECIMALS))
    sdf.sub(clip, "far", sdf.num(cam.max_range, SDF_DECIMALS))
    return sensor


def _lidar_sensor(lidar: LidarConfig, vehicle_id: str, rate_hz: float) -> ET.Element:
    sensor = ET.Element("sensor", name="lidar", type="gpu_lidar")
    sdf.sub(sensor, "pose", _pose(lidar.mount_xyz, lidar.mount_rpy))
    sdf.sub(sensor, "topic", lidar_topic(vehicle_id))
    sdf.sub(sensor, "gz_frame_id", f"{vehicle_id}/lidar")
    sdf.sub(sensor, "update_rate", sdf.num(rate_hz, SDF_DECIMALS))
    sdf.sub(sensor, "always_on", "1")
    scan = sdf.sub(sdf.sub(sensor, "lidar"), "scan")
    # gz spaces samples from min to max inclusive: stop one column short of +pi so the
    # `columns` azimuths are distinct and 2 pi / columns apart, as in our sweep.
    for axis, samples, lo, hi in (
            ("horizontal", lidar.columns, -math.pi, math.pi - 2 * math.pi / lidar.columns),
            ("vertical", lidar.beams, math.radians(lidar.fov_down_deg), math.radians(lidar.fov_up_deg))):
        el = sdf.sub(scan, axis)
        sdf.sub(el, "samples", samples)
        sdf.sub(el, "resolution", "1")
        sdf.sub(el, "min_angle", sdf.num(lo, SDF_DECIMALS))
        sdf.sub(el, "max_angle", sdf.num(hi, SDF_DECIMALS))
    rng = sdf.sub(sensor.find("lidar"), "range")
    sdf.sub(rng, "min", sdf.num(lidar.min_range, SDF_DECIMALS))
    sdf.sub(rng, "max", sdf.num(lidar.max_range, SDF_DECIMALS))
    sdf.sub(rng, "resolution", sdf.num(LIDAR_RANGE_RESOLUTION_M, SDF_DECIMALS))
    return sensor


def sensor_link(spec: VehicleModel, vehicle_id: str, rig: SensorRig) -> list[ET.Element]:
    """The ``vlwm_sensors`` link (frame = body frame) with the rig's sensors, and its fixed joint."""
    link = ET.Element("link", name=SENSOR_LINK)
    sdf.sub(link, "pose", _pose(spec.body_origin))
    inertial = sdf.sub(link, "inertial")
    sdf.sub(inertial, "mass", sdf.num(SENSOR_LINK_MASS_KG, SDF_DECIMALS))
    inertia = sdf.sub(inertial, "inertia")
    for k in ("ixx", "iyy", "izz"):
        sdf.sub(inertia, k, sdf.num(SENSOR_LINK_INERTIA, SDF_DECIMALS))
    for k in ("ixy", "ixz", "iyz"):
        sdf.sub(inertia, k, "0")
    if rig.lidar is not None:
        link.append(_lidar_sensor(rig.lidar, vehicle_id, rig.rate_hz))
    for cam in rig.cameras:
        link.append(_camera_sensor(cam, vehicle_id, rig.rate_hz))
    joint = ET.Element("joint", name=f"{SENSOR_LINK}_joint", type="fixed")
    sdf.sub(joint, "parent", spec.base_link)
    sdf.sub(joint, "child", SENSOR_LINK)
    return [link, joint]


def odometry_plugin(spec: VehicleModel, vehicle_id: str) -> ET.Element:
    """gz-sim OdometryPublisher: world pose of the model frame times the offset = the body origin's pose."""
    plugin = ET.Element("plugin", filename="gz-sim-odometry-publisher-system",
                        name="gz::sim::systems::OdometryPublisher")
    sdf.sub(plugin, "odom_frame", "world")
    sdf.sub(plugin, "robot_base_frame", body_frame(vehicle_id))
    sdf.sub(plugin, "odom_topic", odometry_topic(vehicle_id))
    sdf.sub(plugin, "odom_publish_frequency", sdf.num(ODOMETRY_RATE_HZ, SDF_DECIMALS))
    sdf.sub(plugin, "dimensions", "3")
    sdf.sub(plugin, "xyz_offset", sdf.vec(spec.body_origin, SDF_DECIMALS))
    sdf.sub(plugin, "rpy_offset", "0 0 0")
    return plugin


def model_folder(vehicle_id: str) -> str:
    return MODEL_FOLDER_PREFIX + vehicle_id


def vehicle_model_sdf(base_dir: Path, spec: VehicleModel, vehicle_id: str, fdm_port: int,
                      rig: SensorRig) -> ET.Element:
    """The ``<sdf>`` of one vehicle: ``base_dir/model.sdf`` renamed, on ``fdm_port``, with sensors and odometry.

    Relative URIs of the base model are made absolute (the copy lives elsewhere); ``model://``
    URIs keep resolving on the resource path.
    """
    path = base_dir / "model.sdf"
    root = ET.parse(path).getroot()
    model = root.find("model")
    if root.tag != "sdf" or model is None:
        raise ValueError(f"{path}: expected <sdf><model ...>, got <{root.tag}>: not a Gazebo model file")
    plugins = [p for p in model.iter("plugin")
               if ARDUPILOT_PLUGIN in (p.get("filename", ""), p.get("name", ""))]
    if not plugins:
        raise ValueError(f"{path}: no {ARDUPILOT_PLUGIN} in model {model.get('name')!r}; the {spec.kind} model "
                         "must be an ArduPilot Gazebo model (see docs/gazebo.md)")
    for plugin in plugins:
        port = plugin.find("fdm_port_in")
        if port is None:
            port = sdf.sub(plugin, "fdm_port_in")
        port.text = str(fdm_port)
    for uri in model.iter("uri"):
        text = (uri.text or "").strip()
        if text and "://" not in text and not os.path.isabs(text):
            uri.text = str((base_dir / text).resolve())
    model.set("name", vehicle_id)
    model.extend(sensor_link(spec, vehicle_id, rig))
    model.append(odometry_plugin(spec, vehicle_id))
    return root


def write_vehicle_model(base_dir: Path, spec: VehicleModel, vehicle_id: str, fdm_port: int, rig: SensorRig,
                        models_dir: Path) -> Path:
    """Write ``models_dir/vlwm_<vehicle_id>/{model.sdf, model.config}``; return the folder."""
    root = vehicle_model_sdf(Path(base_dir), spec, vehicle_id, fdm_port, rig)
    folder = Path(models_dir) / model_folder(vehicle_id)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "model.sdf", root)
    config = ET.Element("model")
    sdf.sub(config, "name", model_folder(vehicle_id))
    sdf.sub(config, "version", "1.0")
    sdf.sub(config, "sdf", "model.sdf", version=root.get("version", "1.9"))
    sdf.sub(config, "description", f"vlwm {spec.kind} {vehicle_id}: {spec.base_model} ({base_dir}) on ArduPilot "
                                f"FDM port {fdm_port}, with the recorded sensors on link {SENSOR_LINK}")
    _write(folder / "model.config", config)
    return folder


def _write(path: Path, root: ET.Element) -> None:
    ET.indent(root, space="  ")
    path.write_text('<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The installed stack
# ---------------------------------------------------------------------------------------------


def _path_list(value: str | None) -> tuple[Path, ...]:
    return tuple(Path(p) for p in (value or "").split(os.pathsep) if p)


@dataclass(frozen=True)
class Stack:
    """Where the installed pieces are (None / empty = not found), from PATH and the GZ_SIM_* variables."""

    gz: str | None
    """``gz`` executable (Gazebo)."""
    ros2: str | None
    """``ros2`` executable (ROS 2, for ``--record``)."""
    ardupilot_dir: Path | None
    """ArduPilot checkout with ``build/sitl/bin``."""
    plugin_dirs: tuple[Path, ...]
    """GZ_SIM_SYSTEM_PLUGIN_PATH entries."""
    resource_dirs: tuple[Path, ...]
    """GZ_SIM_RESOURCE_PATH entries."""

    @classmethod
    def detect(cls, env: Mapping[str, str] = os.environ, ardupilot_dir: str | os.PathLike | None = None) -> "Stack":
        """ArduPilot: ``ardupilot_dir``, else $OCCWORLD_ARDUPILOT_DIR, else two levels above sim_vehicle.py on PATH."""
        path = env.get("PATH", "")
        if ardupilot_dir is None:
            ardupilot_dir = env.get(ARDUPILOT_DIR_ENV) or None
        if ardupilot_dir is None:
            sim_vehicle = shutil.which("sim_vehicle.py", path=path)
            ardupilot_dir = Path(sim_vehicle).resolve().parents[2] if sim_vehicle else None
        return cls(gz=shutil.which("gz", path=path), ros2=shutil.which("ros2", path=path),
                   ardupilot_dir=Path(ardupilot_dir) if ardupilot_dir else None,
                   plugin_dirs=_path_list(env.get("GZ_SIM_SYSTEM_PLUGIN_PATH")),
                   resource_dirs=_path_list(env.get("GZ_SIM_RESOURCE_PATH")))

    def sitl_binary(self, name: str) -> Path | None:
        if self.ardupilot_dir is None:
            return None
        binary = self.ardupilot_dir / "build" / "sitl" / "bin" / name
        return binary if binary.is_file() and os.access(binary, os.X_OK) else None

    def plugin(self) -> Path | None:
        return next((d / PLUGIN_LIBRARY for d in self.plugin_dirs if (d / PLUGIN_LIBRARY).is_file()), None)

    def base_model(self, spec: VehicleModel) -> Path | None:
        return find_model(spec.base_model, self.resource_dirs)

    def missing(self, kinds: Sequence[str], record: bool) -> list[str]:
        """One line per missing piece the session needs; empty = ready."""
        out = []
        if self.gz is None:
            out.append("`gz` (Gazebo Harmonic) is not on PATH")
        if self.plugin() is None:
            out.append(f"ArduPilot's Gazebo plugin ({PLUGIN_LIBRARY}) is in no GZ_SIM_SYSTEM_PLUGIN_PATH folder "
                       f"({os.pathsep.join(map(str, self.plugin_dirs)) or 'unset'})")
        for kind in dict.fromkeys(kinds):
            spec = VEHICLE_MODELS[kind]
            if self.base_model(spec) is None:
                out.append(f"the {kind} model '{spec.base_model}' is in no GZ_SIM_RESOURCE_PATH folder "
                           f"({os.pathsep.join(map(str, self.resource_dirs)) or 'unset'})")
            if self.ardupilot_dir is None:
                out.append(f"ArduPilot SITL ({spec.sitl_binary}): no ArduPilot checkout found (set "
                           f"{ARDUPILOT_DIR_ENV}, pass --ardupilot-dir, or put Tools/autotest/sim_vehicle.py on PATH)")
                continue
            if self.sitl_binary(spec.sitl_binary) is None:
                out.append(f"ArduPilot SITL {self.ardupilot_dir}/build/sitl/bin/{spec.sitl_binary} is not built")
            for rel in spec.sitl_defaults:
                if not (self.ardupilot_dir / "Tools" / "autotest" / rel).is_file():
                    out.append(f"ArduPilot parameter file {self.ardupilot_dir}/Tools/autotest/{rel} is missing")
        if record and self.ros2 is None:
            out.append("`ros2` (ROS 2 with ros_gz, needed by --record) is not on PATH")
        return out
