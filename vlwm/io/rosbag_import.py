"""``vlwm import-bag``: a ROS 2 bag (sqlite3 ``.db3`` or MCAP) -> one recording in our layout.

The result is what :class:`vlwm.io.sequence_writer.SequenceWriter` writes — ``lidar/NNNNNN_LIDAR.npy``,
``images/NNNNNN_CAM_*.jpg``, ``poses/NNNNNN.json`` and ``sequence.json`` — so ``vlwm gt --source
lidar`` and the dataset read it like a simulated recording.

* **Frames**: one per ``sensor_msgs/PointCloud2`` message of the lidar topic, in header-stamp order
  (the bag's receive time when the stamp is zero).  Pose timestamps count from the first frame.
* **Poses** (body in the world): from ``nav_msgs/Odometry`` when the bag has it (its
  ``header.frame_id`` is the world, ``child_frame_id`` the body; the twist, given in the body
  frame, becomes a world-frame linear and a body-frame angular velocity), else from the TF chain
  world -> body (``map`` or ``odom`` -> ``base_link``, see :mod:`vlwm.io.rosbag_poses`).  Both are
  interpolated to the lidar stamps, linearly in position and by slerp in orientation; a lidar
  message outside the poses' time span is skipped (and reported).
* **Points** keep their cloud's frame (REP 103: x forward, y left, z up at the sensor, as our lidar
  frame); its mount ``T_body_sensor`` in ``sequence.json`` is the ``/tf_static`` chain body -> cloud
  frame.  Clouds in another frame (a second frame_id) are moved into that lidar frame at their
  stamp; when the cloud frame is joined to the body by moving TF edges (e.g. clouds already in
  ``odom``) the points are moved into the body frame and ``T_body_sensor`` is the identity.  Columns:
  x, y, z, intensity (0 when absent), then the cloud's other fields; rows with NaN x/y/z are dropped.
* **Images** (``sensor_msgs/Image`` rgb8/bgr8/rgba8/bgra8/mono8, ``sensor_msgs/CompressedImage``
  jpeg/png) go to the frame whose lidar stamp is nearest, within a tolerance; topics map to camera
  names by keywords (``front_left`` -> ``CAM_FRONT_LEFT``, ``front`` -> ``CAM_FRONT``, …; a lone
  image topic is ``CAM_FRONT``), overridable per camera.  JPEG bytes are kept as they are; other
  images are encoded as JPEG.  A camera's calibration (K, ``T_body_sensor``) is written when the
  bag has its ``sensor_msgs/CameraInfo`` and a static TF from the body to its frame.

Messages that do not decode or convert are reported (topic, index, reason) and skipped; a bag
without a lidar topic or a pose source is an error naming the bag and what is missing.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vlwm.io import rosbag_messages as rm
from vlwm.io.rosbag_poses import (TfTree, TransformTrack, finite_difference_velocities, matrices_to_pose_arrays,
                                  pose_matrix)
from vlwm.io.rosbag_topics import BagImportError, TopicPlan, camera_for_topic, plan_topics
from vlwm.io.atomic import atomic_write, atomic_write_bytes
from vlwm.io.frames import Pose, invert_transform, quat_to_matrix, transform_points
from vlwm.io.image_io import save_rgb_jpeg
from vlwm.io.recording import OPTICAL_FRAME, POSE_CONVENTION, image_path, lidar_path
from vlwm.io.sequence_writer import SequenceWriter, remove_sequence

DEFAULT_IMAGE_TOLERANCE_S = 0.05     #: an image further than this from every lidar stamp is dropped
WORLD_FRAMES = ("map", "odom")       #: world frames tried, in order, for the TF pose source
BODY_FRAMES = ("base_link", "base_footprint")   #: body frames tried, in order


@dataclass(frozen=True)
class ImportOptions:
    """How :func:`import_bag` reads a bag."""

    topics: tuple[str, ...] | None = None
    """Sensor topics to use (lidar, odometry, images, camera info); None = every topic, found by
    message type.  ``/tf`` and ``/tf_static`` are always read."""
    camera_topics: dict[str, str] = field(default_factory=dict)
    """Camera name -> image topic, replacing the keyword mapping for those (e.g. ``{"CAM_FRONT": "/front/image_raw"}``)."""
    agent: str = "rover"
    """``sequence.json`` agent_type: 'drone' or 'rover'."""
    world_frame: str | None = None
    """World frame of the poses (default: the odometry's frame, else ``map``, else ``odom``)."""
    body_frame: str | None = None
    """Body frame (default: the odometry's child frame, else ``base_link``, else ``base_footprint``)."""
    image_tolerance_s: float = DEFAULT_IMAGE_TOLERANCE_S
    """Largest |image stamp - lidar stamp| (s) for an image to join a frame."""
    overwrite: bool = False
    """Replace an existing recording at the output folder."""
    progress: bool = True
    """tqdm progress bars."""


@dataclass
class ImportReport:
    """What :func:`import_bag` did: frames written, images per camera, messages skipped and why."""

    bag: Path
    out: Path
    frames: int
    lidar_topic: str
    pose_source: str
    images: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        cams = ", ".join(f"{k} {v}" for k, v in self.images.items()) or "none"
        return (f"wrote {self.frames} frames to {self.out} (lidar {self.lidar_topic}, poses from {self.pose_source}, "
                f"images: {cams}; {len(self.skipped)} messages skipped)")


# ------------------------------------------------------------------------------ pass 1: scan


@dataclass
class _Scan:
    """What the first pass learns: message stamps and frames, odometry samples, TF, calibration."""

    lidar: list[tuple[int, int, str]] = field(default_factory=list)          # (index, stamp ns, frame_id)
    columns: tuple[str, ...] | None = None
    images: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    odom: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, str, str]] = field(default_factory=list)
    static: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    dynamic: dict[tuple[str, str], list] = field(default_factory=dict)
    camera_info: dict[str, dict] = field(default_factory=dict)              # frame_id -> calibration
    skipped: list[str] = field(default_factory=list)


def _roles(plan: TopicPlan) -> dict[str, str]:
    """Topic -> what it feeds.  Both passes read exactly these topics, so that a message's index
    within its topic (how the second pass finds what the first planned) is the same in both."""
    roles = {plan.lidar: "lidar", **{t: "image" for t in plan.cameras.values()}, **{t: "tf" for t in plan.tf},
             **{t: "info" for t in plan.camera_info}}
    if plan.odometry:
        roles[plan.odometry] = "odom"
    return roles


def _frame_id(name: str) -> str:
    return name.lstrip("/")


def _stamp(msg, bag_ns: int) -> int:
    ns = rm.stamp_ns(msg.header.stamp)
    return ns if ns > 0 else int(bag_ns)


def _scan(reader, plan: TopicPlan, progress: bool) -> _Scan:
    """First pass: decode every planned message, keep stamps, frames, TF, odometry and calibration
    (not the clouds' and images' data); a message that fails is reported in ``skipped``."""
    scan = _Scan()
    roles = _roles(plan)
    conns = [c for c in reader.connections if c.topic in roles]
    counts: Counter = Counter()
    total = sum(c.msgcount for c in conns)
    for conn, bag_ns, raw in tqdm(reader.messages(connections=conns), total=total, unit="msg", desc="scan",
                                  disable=not progress):
        index = counts[conn.topic]
        counts[conn.topic] += 1
        role = roles[conn.topic]
        try:
            msg = rm.deserialize(raw, conn.msgtype)
            if role == "lidar":
                cols = rm.cloud_columns(msg)
                if scan.columns is None:
                    scan.columns = cols
                elif cols != scan.columns:
                    raise rm.MessageError(f"fields {list(cols)} differ from the first cloud's {list(scan.columns)}")
                scan.lidar.append((index, _stamp(msg, bag_ns), _frame_id(msg.header.frame_id)))
            elif role == "image":
                rm.check_image(msg)
                scan.images.setdefault(conn.topic, []).append((index, _stamp(msg, bag_ns), _frame_id(msg.header.frame_id)))
            elif role == "odom":
                p, q = rm.xyz_quat(msg.pose.pose.position, msg.pose.pose.orientation)
                tw = msg.twist.twist
                twist = np.array([tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z])
                scan.odom.append((_stamp(msg, bag_ns), p, q, twist, _frame_id(msg.header.frame_id),
                                  _frame_id(msg.child_frame_id)))
            elif role == "tf":
                static = conn.topic.rstrip("/").endswith("tf_static")
                for tf in msg.transforms:
                    key = (_frame_id(tf.header.frame_id), _frame_id(tf.child_frame_id))
                    p, q = rm.xyz_quat(tf.transform.translation, tf.transform.rotation)
                    if static:
                        scan.static[key] = pose_matrix(p, q)
                    else:
                        scan.dynamic.setdefault(key, []).append((_stamp(tf, bag_ns), p, q))
            else:
                scan.camera_info.setdefault(_frame_id(msg.header.frame_id), rm.camera_info_to_calibration(msg))
        except Exception as exc:  # noqa: BLE001 - any decoding failure of one message: report it, go on
            scan.skipped.append(f"{conn.topic} message #{index} (bag time {bag_ns} ns): {_reason(exc)}")
    return scan


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, rm.MessageError) else f"does not decode ({type(exc).__name__}: {exc})"


# ------------------------------------------------------------------------------ poses


@dataclass
class _Poses:
    """Body poses at the lidar stamps (K of them), world frame, and where they came from.

    positions (K, 3) m and quats (K, 4) (x, y, z, w) body -> world; linear_world (K, 3) m/s;
    angular_body (K, 3) rad/s; ok (K,) bool: the pose source covers the stamp.
    """

    positions: np.ndarray
    quats: np.ndarray
    linear_world: np.ndarray
    angular_body: np.ndarray
    ok: np.ndarray
    world: str
    body: str
    source: str

    def select(self, idx: np.ndarray) -> "_Poses":
        return _Poses(self.positions[idx], self.quats[idx], self.linear_world[idx], self.angular_body[idx],
                      self.ok[idx], self.world, self.body, self.source)


def _poses(bag: Path, scan: _Scan, tree: TfTree, plan: TopicPlan, options: ImportOptions,
           t: np.ndarray) -> _Poses:
    """Poses at lidar stamps ``t`` (K,) ns from the odometry, else the TF chain."""
    if scan.odom:
        times, ps, qs, twists, parents, children = zip(*scan.odom)
        parent = Counter(parents).most_common(1)[0][0] or options.world_frame or WORLD_FRAMES[0]
        body = Counter(children).most_common(1)[0][0] or options.body_frame or BODY_FRAMES[0]
        track = TransformTrack.from_samples(times, ps, qs, extra=twists)
        tree.dynamic.setdefault((parent, body), TransformTrack(track.times, track.positions, track.quats))
        pos, quat, twist = track.interpolate(t)
        ok = track.covers(t)
        world = options.world_frame or parent
        if world != parent:
            try:
                T_world_parent, ok_w = tree.lookup(world, parent, t)
            except KeyError:
                raise BagImportError(f"{bag}: --world-frame {world}: no TF path to the odometry's frame {parent}") from None
            m = np.repeat(np.eye(4)[None], len(t), 0)
            m[:, :3, :3], m[:, :3, 3] = quat_to_matrix(quat), pos
            pos, quat = matrices_to_pose_arrays(T_world_parent @ m)
            ok &= ok_w
        lin = np.einsum("kij,kj->ki", quat_to_matrix(quat), twist[:, :3])     # body-frame twist -> world velocity
        return _Poses(pos, quat, lin, twist[:, 3:], ok, world, body, f"odometry {plan.odometry}")
    frames = tree.frames()
    bodies = [options.body_frame] if options.body_frame else [f for f in BODY_FRAMES if f in frames]
    worlds = [options.world_frame] if options.world_frame else list(WORLD_FRAMES)
    for body in bodies:
        for world in worlds:
            if world != body and tree.path(world, body) is not None:
                m, ok = tree.lookup(world, body, t)
                pos, quat = matrices_to_pose_arrays(m)
                lin, ang = finite_difference_velocities(pos, quat, t)
                return _Poses(pos, quat, lin, ang, ok, world, body, f"TF {world} -> {body}")
    odom_note = f"no Odometry topic{' among --topics' if options.topics else ''}"
    tried = " or ".join(bodies or BODY_FRAMES)
    raise BagImportError(f"{bag}: no pose source: {odom_note} and no TF path from {' or '.join(worlds)} to "
                         f"{tried} (TF frames: {sorted(frames) or 'none'}); record odometry or TF, or name the "
                         f"frames with --world-frame/--body-frame")


# ------------------------------------------------------------------------------ the import


def import_bag(bag: str | os.PathLike, out: str | os.PathLike, options: ImportOptions = ImportOptions()) -> ImportReport:
    """Convert ``bag`` (a rosbag2 folder, or its ``.db3`` / ``.mcap`` file) into the recording folder ``out``.

    Returns the :class:`ImportReport`; raises :class:`BagImportError` when nothing can be imported.
    """
    from rosbags.rosbag2 import Reader

    bag, out = Path(bag), Path(out)
    if options.agent not in ("drone", "rover"):
        raise BagImportError(f"agent must be 'drone' or 'rover', got {options.agent!r}")
    if not bag.exists():
        raise FileNotFoundError(f"{bag}: no such bag (a rosbag2 folder, .db3 or .mcap file)")
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises its own and OS errors: all mean "not a readable bag"
        raise BagImportError(f"{bag}: cannot open as a ROS 2 bag ({exc})") from None
    try:
        available = {t: info.msgtype for t, info in reader.topics.items()}
        plan = plan_topics(bag, available, options.topics, options.camera_topics)
        scan = _scan(reader, plan, options.progress)
        if not scan.lidar:
            raise BagImportError(f"{bag}: no decodable message on the lidar topic {plan.lidar} "
                                 f"({len(scan.skipped)} skipped: {scan.skipped[:3]})")
        tree = TfTree.from_samples(scan.static, scan.dynamic)
        lidar = sorted(scan.lidar, key=lambda e: (e[1], e[0]))
        stamps = np.array([e[1] for e in lidar], np.int64)
        poses = _poses(bag, scan, tree, plan, options, stamps)
        notes = list(plan.notes)
        keep = poses.ok & np.r_[True, stamps[1:] != stamps[:-1]]
        if (~poses.ok).any():
            notes.append(f"{int((~poses.ok).sum())} lidar messages outside the poses' time span ({poses.source}) skipped")
        if (poses.ok & ~keep).any():
            notes.append(f"{int((poses.ok & ~keep).sum())} lidar messages with a repeated stamp skipped")
        if not keep.any():
            raise BagImportError(f"{bag}: no lidar message of {plan.lidar} falls within the time span of the poses "
                                 f"({poses.source})")
        lidar = [e for e, k in zip(lidar, keep) if k]
        stamps, poses = stamps[keep], poses.select(np.flatnonzero(keep))
        sensor_frame, T_body_lidar, cloud_moves = _lidar_mount(tree, poses.body, lidar, notes)
        image_plan = _match_images(plan, scan, stamps, options.image_tolerance_s)
        manifest = _manifest(bag, plan, scan, tree, poses, options, stamps, sensor_frame, T_body_lidar, image_plan)
        writer = _create_writer(out, options, manifest)
        written = _write_data(reader, writer.path, plan, lidar, stamps, cloud_moves, image_plan, options.progress,
                              scan.skipped)
        _commit_poses(writer, stamps, poses)
    finally:
        reader.close()
    return ImportReport(bag, writer.path, len(stamps), plan.lidar, poses.source, written, scan.skipped, notes)


def _lidar_mount(tree: TfTree, body: str, lidar: list[tuple[int, int, str]], notes: list[str]):
    """The lidar frame, its mount ``T_body_lidar`` (4, 4), and per cloud frame a function
    ``stamp ns -> (4, 4) T_lidar_cloud`` (None where the cloud is in the lidar frame)."""
    frames = Counter(f for _, _, f in lidar)
    sensor = frames.most_common(1)[0][0]
    if sensor == body or tree.is_static(body, sensor):
        T_body_lidar = tree.lookup(body, sensor, np.zeros(1, np.int64))[0][0]
    else:
        if tree.path(body, sensor) is None:
            notes.append(f"no TF from {body} to the cloud frame {sensor!r}: points taken as in the body frame")
        else:
            notes.append(f"cloud frame {sensor!r} moves relative to {body}: points moved into the body frame")
        sensor, T_body_lidar = body, np.eye(4)
    T_lidar_body = invert_transform(T_body_lidar)
    moves = {}
    for frame in frames:
        if frame == sensor:
            moves[frame] = None
        elif tree.path(body, frame) is None:
            moves[frame] = lambda ns: T_lidar_body          # unknown frame: taken as the body frame
        else:
            moves[frame] = lambda ns, f=frame: T_lidar_body @ tree.lookup(body, f, np.array([ns], np.int64))[0][0]
    return sensor, T_body_lidar, moves


def _match_images(plan: TopicPlan, scan: _Scan, stamps: np.ndarray, tolerance_s: float) -> dict:
    """``{(topic, index): (frame number, camera)}``: each image to its nearest lidar stamp within the
    tolerance; of several images for one frame and camera the nearest wins."""
    best: dict[tuple[int, str], tuple[int, str, int]] = {}
    tol = int(round(tolerance_s * 1e9))
    for name, topic in plan.cameras.items():
        for index, ns, _ in scan.images.get(topic, []):
            after = int(np.searchsorted(stamps, ns))                 # first lidar stamp >= ns
            j = min((c for c in (after - 1, after) if 0 <= c < len(stamps)), key=lambda c: abs(ns - int(stamps[c])))
            gap = abs(int(ns) - int(stamps[j]))
            if gap <= tol and ((j + 1, name) not in best or gap < best[(j + 1, name)][2]):
                best[(j + 1, name)] = (index, topic, gap)
    return {(topic, index): (frame, name) for (frame, name), (index, topic, _) in best.items()}


def _manifest(bag, plan, scan, tree, poses, options, stamps, sensor_frame, T_body_lidar, image_plan) -> dict:
    """``sequence.json`` content for the imported recording (the writer adds layout and frame keys)."""
    steps = np.diff(stamps) / rm.NS_PER_S
    rate = float(1.0 / np.median(steps)) if len(steps) else None
    sensors = {"LIDAR": {"type": "lidar", "T_body_sensor": T_body_lidar.round(9).tolist(), "frame_id": sensor_frame,
                         "topic": plan.lidar, "columns_layout": list(scan.columns),
                         "convention": "points in the lidar frame (x forward, y left, z up) at the message stamp, "
                                       "as recorded (no motion compensation)"}}
    cameras = sorted({name for _, name in image_plan.values()})
    for name in cameras:        # calibrated cameras only: a sensor entry without K would stop `vlwm gt`
        frame = Counter(f for _, _, f in scan.images.get(plan.cameras[name], [])).most_common(1)[0][0]
        calib = scan.camera_info.get(frame)
        if calib is not None and tree.is_static(poses.body, frame):
            T_body_cam = tree.lookup(poses.body, frame, np.zeros(1, np.int64))[0][0]
            sensors[name] = {"type": "camera", "T_body_sensor": T_body_cam.round(9).tolist(), **calib,
                             "topic": plan.cameras[name], "frame_id": frame, "optical_frame": OPTICAL_FRAME}
    return {
        "vehicle_id": f"{options.agent}_0",
        "source": {"type": "rosbag2", "bag": str(bag.resolve()), "start_time_ns": int(stamps[0]),
                   "world_frame": poses.world, "body_frame": poses.body, "pose_source": poses.source,
                   "lidar_topic": plan.lidar, "camera_topics": {n: plan.cameras[n] for n in cameras}},
        "rates": {"frame_rate_hz": rate, "lidar_rate_hz": rate},
        "pose_convention": POSE_CONVENTION,
        "lidar_columns": list(scan.columns),
        "sensors": sensors,
        "cameras": cameras,
        "traffic": None,
        "traffic_first_instance": None,
    }


def _create_writer(out: Path, options: ImportOptions, manifest: dict) -> SequenceWriter:
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif options.overwrite:
            remove_sequence(out)
        else:
            raise BagImportError(f"{out} already exists: pass --overwrite to replace it, or choose another --out")
    return SequenceWriter.create(out.parent, options.agent, manifest, name=out.name)


def _write_data(reader, seq: Path, plan: TopicPlan, lidar, stamps, cloud_moves, image_plan, progress: bool,
                skipped: list[str]) -> dict[str, int]:
    """Second pass: convert and write every planned cloud and image; returns images written per camera."""
    frame_of = {index: (k + 1, frame) for k, (index, _, frame) in enumerate(lidar)}
    roles = _roles(plan)
    conns = [c for c in reader.connections if c.topic in roles]
    counts: Counter = Counter()
    written: Counter = Counter()
    bar = tqdm(total=len(frame_of) + len(image_plan), unit="msg", desc="convert", disable=not progress)
    for conn, bag_ns, raw in reader.messages(connections=conns):
        index = counts[conn.topic]
        counts[conn.topic] += 1
        try:
            if conn.topic == plan.lidar and index in frame_of:
                k, frame = frame_of[index]
                pts, _ = rm.cloud_to_points(rm.deserialize(raw, conn.msgtype))        # (N, C) float32, cloud frame
                move = cloud_moves[frame]
                if move is not None:
                    pts[:, :3] = transform_points(move(int(stamps[k - 1])), pts[:, :3]).astype(np.float32)
                atomic_write(lidar_path(seq, k), lambda fh, p=pts: np.save(fh, p))
            elif (conn.topic, index) in image_plan:
                k, name = image_plan[(conn.topic, index)]
                msg = rm.deserialize(raw, conn.msgtype)
                path = image_path(seq, k, name)
                if conn.msgtype == rm.COMPRESSED_IMAGE and rm.compressed_kind(msg) == "jpeg":
                    data = np.asarray(msg.data, np.uint8).tobytes()
                    rm.compressed_to_rgb(msg)                                   # it must decode
                    atomic_write_bytes(path, data)
                else:
                    rgb = rm.compressed_to_rgb(msg) if conn.msgtype == rm.COMPRESSED_IMAGE else rm.image_to_rgb(msg)
                    atomic_write(path, lambda fh, im=rgb: save_rgb_jpeg(fh, im))
                written[name] += 1
            else:
                continue
        except Exception as exc:  # noqa: BLE001 - one bad message is reported, the others go on
            skipped.append(f"{conn.topic} message #{index} (bag time {bag_ns} ns): {_reason(exc)}")
        bar.update(1)
    bar.close()
    return dict(sorted(written.items()))


def _commit_poses(writer: SequenceWriter, stamps: np.ndarray, poses: _Poses) -> None:
    """Write ``poses/NNNNNN.json`` (the commit marks, after the data) and the final manifest.

    ``sequence.json`` is written once at the end (:meth:`SequenceWriter.close`), not after every
    frame (quadratic in a long bag).
    """
    for k in range(len(stamps)):
        t = (int(stamps[k]) - int(stamps[0])) / rm.NS_PER_S
        pose = Pose(t, poses.positions[k], poses.quats[k], poses.linear_world[k], poses.angular_body[k])
        writer.commit_frame(pose, {"ros_stamp_ns": int(stamps[k])}, write_manifest=False)
    writer.close("complete")


__all__ = ["BagImportError", "ImportOptions", "ImportReport", "TopicPlan", "camera_for_topic", "import_bag",
           "plan_topics"]
