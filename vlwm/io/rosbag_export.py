"""``vlwm export-bag``: one recording in our layout -> a ROS 2 bag (sqlite3 or MCAP storage).

Topics (frames: ``map`` = our world, local ENU; ``base_link`` = the body, x forward, y left, z up;
``lidar`` = the lidar frame; ``cam_<name>_optical_frame`` = a camera's OpenCV optical frame):

==============================  ==========================  ============================================
topic                           type                        content, per frame unless said otherwise
==============================  ==========================  ============================================
``/tf_static``                  tf2_msgs/TFMessage          once: base_link -> lidar and each camera
                                                            (``T_body_sensor`` of ``sequence.json``; a
                                                            sensor without one gets no edge, reported)
``/tf``                         tf2_msgs/TFMessage          map -> base_link (the pose)
``/odom``                       nav_msgs/Odometry           the pose; twist in base_link (ROS): linear =
                                                            R_world_bodyᵀ · world velocity, angular as stored
``/lidar/points``               sensor_msgs/PointCloud2     one FLOAT32 field per lidar column (x, y, z,
                                                            intensity, label, instance, ring, t), lidar frame
``/cam_<name>/image/compressed``  sensor_msgs/CompressedImage  the recorded JPEG bytes, unchanged
``/cam_<name>/camera_info``     sensor_msgs/CameraInfo      K, size (no distortion), when calibrated
==============================  ==========================  ============================================

Stamps: ``start + timestamp`` of each pose file, where ``start`` is the original bag's start for an
imported recording (``sequence.json`` source.start_time_ns), else the recording's ``created`` time
read as UTC.  ``vlwm import-bag`` reads such a bag back to the same poses, points and JPEGs
(depth and semantic images are not exported).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vlwm.io import rosbag_messages as rm
from vlwm.io.frames import Pose, matrix_to_quat
from vlwm.io.manifest import LIDAR_SENSOR, Manifest, ManifestError, SensorCalibration, read_manifest
from vlwm.io.recording import LIDAR_COLUMNS, image_path, lidar_path, pose_frames, pose_path

WORLD_FRAME = "map"
BODY_FRAME = "base_link"
LIDAR_FRAME = "lidar"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"
ODOM_TOPIC = "/odom"
LIDAR_TOPIC = "/lidar/points"
STORAGES = ("sqlite3", "mcap")
#: ``images/NNNNNN_<CAM>.jpg`` (the RGB image; ``_depth``/``_sem`` PNGs are not exported).
_IMAGE_FILE = re.compile(r"^(\d{6})_(CAM_[A-Z0-9_]+)\.jpg$")


def camera_topic(name: str) -> str:
    """``/cam_front/image/compressed`` for ``CAM_FRONT``."""
    return f"/{name.lower()}/image/compressed"


def camera_info_topic(name: str) -> str:
    return f"/{name.lower()}/camera_info"


def camera_frame(name: str) -> str:
    """``cam_front_optical_frame`` for ``CAM_FRONT``."""
    return f"{name.lower()}_optical_frame"


class BagExportError(ValueError):
    """The recording cannot be exported (not a recording, output exists, bad storage)."""


@dataclass
class ExportReport:
    """What :func:`export_bag` wrote: frames, messages per topic, frames' files that were missing,
    and notes (sensors without calibration)."""

    recording: Path
    bag: Path
    frames: int
    messages: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"wrote {self.frames} frames ({sum(self.messages.values())} messages on {len(self.messages)} topics) "
                f"to {self.bag}; {len(self.skipped)} files skipped")


def export_bag(recording: str | os.PathLike, out: str | os.PathLike, storage: str = "sqlite3",
               progress: bool = True) -> ExportReport:
    """Write the recording folder ``recording`` as the rosbag2 folder ``out`` (must not exist).

    ``storage``: ``'sqlite3'`` (``.db3``) or ``'mcap'``.  Bags are rosbag2 version 9.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    seq, out = Path(recording), Path(out)
    if storage not in STORAGES:
        raise BagExportError(f"storage must be one of {STORAGES}, got {storage!r}")
    pose_files = [pose_path(seq, i) for i in pose_frames(seq)]
    if not pose_files:
        raise FileNotFoundError(f"{seq}: no poses/NNNNNN.json: not a recording folder")
    if out.exists():
        raise BagExportError(f"{out} already exists: remove it or choose another --out")
    try:
        manifest = read_manifest(seq)
    except ManifestError as exc:
        raise BagExportError(str(exc)) from None
    sensors = (manifest.sensors if manifest is not None else None) or {}
    start_ns = _start_ns(manifest)
    cameras = _camera_files(seq)
    report = ExportReport(seq, out, 0, {})
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        conns: dict[str, object] = {}

        def put(topic: str, msg, ns: int, qos=()):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=rm.typestore(),
                                                     offered_qos_profiles=qos)
            writer.write(conns[topic], int(ns), rm.serialize(msg))
            report.messages[topic] = report.messages.get(topic, 0) + 1

        for path in tqdm(pose_files, unit="frame", desc="export", disable=not progress):
            try:
                pose = Pose.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                report.skipped.append(f"{path}: unreadable pose ({exc}): frame not exported")
                continue
            ns = start_ns + int(round(pose.timestamp * rm.NS_PER_S))
            if TF_STATIC_TOPIC not in conns:                               # once, with the first frame
                put(TF_STATIC_TOPIC, _static_tf(sensors, cameras, ns, report.notes), ns, qos=(_latched_qos(),))
            put(ODOM_TOPIC, _odometry(pose, ns), ns)
            put(TF_TOPIC, rm.msg_type(rm.TF_MESSAGE)(transforms=[
                rm.transform_stamped_msg(ns, WORLD_FRAME, BODY_FRAME, pose.position, pose.orientation)]), ns)
            frame = int(path.stem)
            lidar = lidar_path(seq, frame)
            if lidar.is_file():
                try:
                    pts = np.load(lidar)                                  # (N, C) float32, lidar frame
                    put(LIDAR_TOPIC, rm.points_to_cloud(pts, _columns(manifest, pts), ns, LIDAR_FRAME), ns)
                except (OSError, ValueError) as exc:
                    report.skipped.append(f"{lidar}: unreadable ({exc})")
            for name in cameras.get(frame, ()):
                image = image_path(seq, frame, name)
                put(camera_topic(name), rm.jpeg_to_compressed(image.read_bytes(), ns, camera_frame(name)), ns)
                cal = sensors.get(name)
                if cal is not None and cal.type == "camera":
                    put(camera_info_topic(name), rm.camera_info_msg(cal.K, cal.width, cal.height,
                                                                    ns, camera_frame(name)), ns)
            report.frames += 1
    return report


def _start_ns(manifest: Manifest | None) -> int:
    """Stamp (ns) of timestamp 0: the imported bag's start, else ``created`` read as UTC, else 0."""
    if manifest is None:
        return 0
    source = manifest.source or {}
    if isinstance(source.get("start_time_ns"), int):
        return int(source["start_time_ns"])
    try:
        created = datetime.datetime.fromisoformat(manifest.created)
    except (TypeError, ValueError):
        return 0
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return int(round(created.timestamp())) * rm.NS_PER_S


def _camera_files(seq: Path) -> dict[int, list[str]]:
    """``{frame: [camera names]}`` of the RGB images in ``images/``."""
    out: dict[int, list[str]] = {}
    if (seq / "images").is_dir():
        for p in sorted((seq / "images").iterdir()):
            m = _IMAGE_FILE.match(p.name)
            if m:
                out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def _columns(manifest: Manifest | None, pts: np.ndarray) -> list[str]:
    """Names of the lidar file's columns: ``sequence.json`` lidar_columns, else ours, else x, y, z, intensity, c4..."""
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"expected a float array [N, >= 3], got shape {pts.shape}")
    for cols in (manifest.lidar_columns if manifest is not None else None, LIDAR_COLUMNS):
        if cols and len(cols) == pts.shape[1]:
            return list(cols)
    return ["x", "y", "z", "intensity", *(f"c{i}" for i in range(4, pts.shape[1]))][:pts.shape[1]]


def _static_tf(sensors: dict[str, SensorCalibration], cameras: dict[int, list[str]], ns: int, notes: list[str]):
    """``/tf_static``: base_link -> lidar and -> each camera's optical frame, for the sensors that
    ``sequence.json`` calibrates; an uncalibrated one gets no edge (its mount is unknown), noted in ``notes``."""
    names = sorted({n for frame in cameras.values() for n in frame})
    transforms = []
    for name, child in [(LIDAR_SENSOR, LIDAR_FRAME), *((n, camera_frame(n)) for n in names)]:
        if name not in sensors:
            notes.append(f"sequence.json sensors.{name}: no calibration, so no /tf_static edge "
                           f"{BODY_FRAME} -> {child}")
            continue
        T = sensors[name].T_body_sensor
        transforms.append(rm.transform_stamped_msg(ns, BODY_FRAME, child, T[:3, 3], matrix_to_quat(T[:3, :3])))
    return rm.msg_type(rm.TF_MESSAGE)(transforms=transforms)


def _odometry(pose: Pose, ns: int):
    """``nav_msgs/Odometry`` of ``pose``: map -> base_link, twist in base_link."""
    T = rm.msg_type
    v_body = pose.rotation.T @ pose.linear_velocity                       # world -> body frame
    w = pose.angular_velocity
    p, q = pose.position, pose.orientation
    point = T("geometry_msgs/msg/Point")(x=float(p[0]), y=float(p[1]), z=float(p[2]))
    quat = T("geometry_msgs/msg/Quaternion")(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
    twist = T("geometry_msgs/msg/Twist")(
        linear=T("geometry_msgs/msg/Vector3")(x=float(v_body[0]), y=float(v_body[1]), z=float(v_body[2])),
        angular=T("geometry_msgs/msg/Vector3")(x=float(w[0]), y=float(w[1]), z=float(w[2])))
    return T(rm.ODOMETRY)(
        header=rm.header_msg(ns, WORLD_FRAME), child_frame_id=BODY_FRAME,
        pose=T("geometry_msgs/msg/PoseWithCovariance")(pose=T("geometry_msgs/msg/Pose")(position=point, orientation=quat),
                                                       covariance=np.zeros(36)),
        twist=T("geometry_msgs/msg/TwistWithCovariance")(twist=twist, covariance=np.zeros(36)))


def _latched_qos():
    """Transient-local QoS, as ``/tf_static`` is published (so a replay latches it)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, zero, zero,
               QosLiveliness.AUTOMATIC, zero, False)


__all__ = ["BagExportError", "ExportReport", "camera_frame", "camera_info_topic", "camera_topic", "export_bag"]
