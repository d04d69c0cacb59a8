"""ROS 2 bags: `vlwm import-bag` / `vlwm export-bag` on real bags written with rosbags (sqlite3 and MCAP).

The synthetic bag: a vehicle drives p(s) = P0 + V s with yaw(s) = YAW_RATE s (s = seconds after
BASE_NS); odometry at 25 Hz and lidar at 10 Hz on other instants, so every lidar pose is an
interpolation with a known answer (linear motion and a constant turn rate are exact under
lerp + slerp).  The lidar is mounted by /tf_static at LIDAR_XYZ turned LIDAR_YAW about z.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image
from rosbags.rosbag2 import StoragePlugin, Writer

from vlwm.cli import main as vlwm_main
from vlwm.data.config import DatasetConfig
from vlwm.data.validation import validate_sequence
from vlwm.gt.frame_gt import GTConfig
from vlwm.gt.grid import GridSpec
from vlwm.gt.recording import generate
from vlwm.io import rosbag_messages as rm
from vlwm.io.occupancy_file import read_frame
from vlwm.io.rosbag_export import export_bag
from vlwm.io.rosbag_import import BagImportError, ImportOptions, camera_for_topic, import_bag
from vlwm.io.rosbag_poses import TransformTrack, slerp
from vlwm.labels import FREE
from vlwm.io.frames import Pose, make_transform, quat_from_euler, quat_to_matrix, transform_points
from vlwm.sim.missions import survey_mission
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.world.procedural import CityConfig, generate_city

BASE_NS = 1_700_000_000 * rm.NS_PER_S
P0, V, YAW_RATE = np.array([10.0, -4.0, 0.3]), np.array([2.0, -0.5, 0.1]), 0.4
LIDAR_S = (1.0, 1.1, 1.2, 1.3)                   # lidar stamps, s after BASE_NS
ODOM_S = np.arange(0.95, 1.36, 0.04)            # 25 Hz, never on a lidar stamp
LIDAR_XYZ, LIDAR_YAW = np.array([0.5, 0.0, 1.2]), np.pi / 2
#: Body -> OpenCV optical frame of a forward camera: optical z = body x, optical x = -body y, optical y = -body z.
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
K_FRONT = np.array([[40.0, 0, 4.0], [0, 40.0, 3.0], [0, 0, 1.0]])
RGB_FRONT = np.zeros((6, 8, 3), np.uint8)
RGB_FRONT[:, :4] = (220, 30, 30)                 # red left half, blue right half
RGB_FRONT[:, 4:] = (30, 30, 220)


def ns(s: float) -> int:
    return BASE_NS + int(round(s * rm.NS_PER_S))


def true_pose(s):
    """Position (3,) and quaternion (4,) of the body at ``s`` s."""
    return P0 + V * s, quat_from_euler(0.0, 0.0, YAW_RATE * s)


def cloud_points(k: int) -> np.ndarray:
    """(5, 4) x, y, z, intensity of lidar message k, lidar frame."""
    return np.array([[1.0 + k, 0.0, 0.0, 0.1], [0.0, 2.0, 0.5, 0.2], [-3.0, 1.0, -1.0, 0.3],
                     [5.0, -5.0, 2.0, 0.4], [0.25, 0.5, 0.75, 1.0]], np.float32)


def cloud_msg(k: int, stamp: int, frame="velodyne"):
    """A PointCloud2 with a uint16 ring field and padding (point_step 20), plus one NaN row."""
    pts = cloud_points(k)
    rec = np.zeros(len(pts) + 1, dtype=np.dtype({"names": ["x", "y", "z", "intensity", "ring"],
                                                  "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                                                  "offsets": [0, 4, 8, 12, 16], "itemsize": 20}))
    for i, c in enumerate("xyz"):
        rec[c][:-1] = pts[:, i]
    rec["intensity"][:-1] = pts[:, 3]
    rec["ring"] = np.arange(len(rec))
    rec["x"][-1] = np.nan                                      # an invalid return, dropped on import
    field = rm.msg_type("sensor_msgs/msg/PointField")
    fields = [field(name=n, offset=o, datatype=d, count=1)
              for n, o, d in (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7), ("ring", 16, 4))]
    return rm.msg_type(rm.POINTCLOUD2)(header=rm.header_msg(stamp, frame), height=1, width=len(rec), fields=fields,
                                       is_bigendian=False, point_step=20, row_step=20 * len(rec),
                                       data=rec.view(np.uint8).reshape(-1), is_dense=False)


def odom_msg(s: float):
    p, q = true_pose(s)
    T = rm.msg_type
    v_body = quat_to_matrix(q).T @ V
    vec = T("geometry_msgs/msg/Vector3")
    return T(rm.ODOMETRY)(
        header=rm.header_msg(ns(s), "odom"), child_frame_id="base_link",
        pose=T("geometry_msgs/msg/PoseWithCovariance")(pose=T("geometry_msgs/msg/Pose")(
            position=T("geometry_msgs/msg/Point")(x=p[0], y=p[1], z=p[2]),
            orientation=T("geometry_msgs/msg/Quaternion")(x=q[0], y=q[1], z=q[2], w=q[3])), covariance=np.zeros(36)),
        twist=T("geometry_msgs/msg/TwistWithCovariance")(twist=T("geometry_msgs/msg/Twist")(
            linear=vec(x=v_body[0], y=v_body[1], z=v_body[2]), angular=vec(x=0.0, y=0.0, z=YAW_RATE)),
            covariance=np.zeros(36)))


def tf_msg(*transforms):
    return rm.msg_type(rm.TF_MESSAGE)(transforms=list(transforms))


def static_tf():
    from vlwm.io.frames import matrix_to_quat

    return tf_msg(rm.transform_stamped_msg(ns(0.9), "base_link", "velodyne", LIDAR_XYZ,
                                           quat_from_euler(0.0, 0.0, LIDAR_YAW)),
                  rm.transform_stamped_msg(ns(0.9), "base_link", "front_cam_optical", [1.0, 0.0, 1.5],
                                           matrix_to_quat(R_BODY_OPTICAL)))


def rgb8_msg(s: float, encoding="rgb8"):
    data = RGB_FRONT[:, :, ::-1] if encoding == "bgr8" else RGB_FRONT
    return rm.msg_type(rm.IMAGE)(header=rm.header_msg(ns(s), "front_cam_optical"), height=6, width=8,
                                 encoding=encoding, is_bigendian=0, step=24, data=np.ascontiguousarray(data).reshape(-1))


def jpeg_bytes(color=(20, 200, 40), size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_bag(path, storage="sqlite3", *, odometry=True, tf_chain=False, lidar=True, corrupt=False):
    """The synthetic bag; returns its path.  ``tf_chain``: poses only as TF map -> odom -> base_link."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    msgs = [(ns(0.9), "/tf_static", static_tf())]
    if odometry:
        msgs += [(ns(s), "/odom", odom_msg(s)) for s in ODOM_S]
    if tf_chain:    # map -> odom: a constant offset; odom -> base_link: the motion at 20 Hz
        msgs.append((ns(0.9), "/tf", tf_msg(rm.transform_stamped_msg(ns(0.9), "map", "odom", [100.0, 0.0, 0.0],
                                                                     [0.0, 0.0, 0.0, 1.0]))))
        for s in np.arange(0.93, 1.36, 0.05):
            msgs.append((ns(s), "/tf", tf_msg(rm.transform_stamped_msg(ns(s), "odom", "base_link", *true_pose(s)))))
    if lidar:
        msgs += [(ns(s), "/velodyne_points", cloud_msg(k, ns(s))) for k, s in enumerate(LIDAR_S)]
    msgs += [(ns(1.01), "/front/image_raw", rgb8_msg(1.01)), (ns(1.09), "/front/image_raw", rgb8_msg(1.09, "bgr8")),
             (ns(1.38), "/front/image_raw", rgb8_msg(1.38))]          # 0.08 s from the last lidar: dropped
    info = rm.camera_info_msg(K_FRONT, 8, 6, ns(1.0), "front_cam_optical")
    msgs.append((ns(1.0), "/front/camera_info", info))
    back = rm.jpeg_to_compressed(jpeg_bytes(), ns(1.21), "back_cam")
    msgs.append((ns(1.21), "/back/image/compressed", back))
    corrupt_raw = {}
    if corrupt:
        msgs.append((ns(1.15), "/velodyne_points", cloud_msg(9, ns(1.15))))
        corrupt_raw[ns(1.15)] = b"\x00\x01\x00\x00truncated"
        bad = rgb8_msg(1.2)
        bad.encoding = "yuv422"
        msgs.append((ns(1.2), "/front/image_raw", bad))
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {}
        for stamp, topic, msg in sorted(msgs, key=lambda m: m[0]):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msg.__msgtype__, typestore=rm.typestore())
            raw = corrupt_raw.get(stamp) if topic == "/velodyne_points" else None
            w.write(conns[topic], stamp, raw if raw is not None else rm.serialize(msg))
    return path


def read_poses(seq):
    return [Pose.from_json(json.loads(p.read_text())) for p in sorted((seq / "poses").glob("*.json"))]


def same_rotation(qa, qb, atol=1e-9):
    return abs(abs(float(np.dot(qa, qb))) - 1.0) < atol


# ------------------------------------------------------------------------------ import


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_import_interpolates_odometry_places_points_and_matches_images(tmp_path, storage):
    bag = write_bag(tmp_path / "bag", storage)
    report = import_bag(bag, tmp_path / "rec", ImportOptions(progress=False))
    seq = tmp_path / "rec"
    assert report.frames == 4 and not report.skipped
    assert report.summary().startswith(f"wrote 4 frames to {seq}")
    manifest = json.loads((seq / "sequence.json").read_text())
    assert manifest["agent_type"] == "rover" and manifest["status"] == "complete" and manifest["num_frames"] == 4
    assert manifest["rates"]["frame_rate_hz"] == pytest.approx(10.0)
    assert manifest["lidar_columns"] == ["x", "y", "z", "intensity", "ring"]
    assert manifest["source"]["start_time_ns"] == ns(1.0)

    poses = read_poses(seq)
    np.testing.assert_allclose([p.timestamp for p in poses], [0.0, 0.1, 0.2, 0.3], atol=1e-12)
    T_body_lidar = np.array(manifest["sensors"]["LIDAR"]["T_body_sensor"])
    np.testing.assert_allclose(T_body_lidar, make_transform(quat_to_matrix(quat_from_euler(0, 0, LIDAR_YAW)), LIDAR_XYZ),
                               atol=1e-9)
    for k, (s, pose) in enumerate(zip(LIDAR_S, poses)):
        p, q = true_pose(s)
        np.testing.assert_allclose(pose.position, p, atol=1e-9)                   # lerp of a straight line
        assert same_rotation(pose.orientation, q)                                  # slerp of a constant turn
        np.testing.assert_allclose(pose.linear_velocity, V, atol=1e-4)             # body twist -> world
        np.testing.assert_allclose(pose.angular_velocity, [0, 0, YAW_RATE], atol=1e-9)
        pts = np.load(seq / "lidar" / f"{k + 1:06d}_LIDAR.npy")
        assert pts.dtype == np.float32 and pts.shape == (5, 5)                     # the NaN row is gone
        np.testing.assert_array_equal(pts[:, :4], cloud_points(k))                # cloud (= lidar) frame
        np.testing.assert_array_equal(pts[:, 4], np.arange(5))                     # uint16 ring
        world = transform_points(pose.matrix() @ T_body_lidar, pts[:, :3])
        expected = transform_points(make_transform(quat_to_matrix(q), p) @ T_body_lidar, cloud_points(k)[:, :3])
        np.testing.assert_allclose(world, expected, atol=1e-6)
        # the first point lies 1 + k m along the lidar's x = the body's +y (the mount turns 90 deg)
        body = transform_points(T_body_lidar, pts[:1, :3])[0]
        np.testing.assert_allclose(body, LIDAR_XYZ + [0.0, 1.0 + k, 0.0], atol=1e-6)

    images = sorted(p.name for p in (seq / "images").iterdir())
    assert images == ["000001_CAM_FRONT.jpg", "000002_CAM_FRONT.jpg", "000003_CAM_BACK.jpg"]
    for name in images[:2]:                                                        # rgb8 and bgr8 -> RGB
        rgb = np.asarray(Image.open(seq / "images" / name))
        assert rgb.shape == (6, 8, 3)
        assert np.abs(rgb[:, :3].astype(int) - (220, 30, 30)).max() < 40
        assert np.abs(rgb[:, 5:].astype(int) - (30, 30, 220)).max() < 40
    assert (seq / "images" / "000003_CAM_BACK.jpg").read_bytes() == jpeg_bytes()   # JPEG kept byte for byte
    front = manifest["sensors"]["CAM_FRONT"]
    np.testing.assert_allclose(front["K"], K_FRONT)
    assert (front["width"], front["height"]) == (8, 6)
    np.testing.assert_allclose(np.array(front["T_body_sensor"])[:3, :3], R_BODY_OPTICAL, atol=1e-9)
    assert "CAM_BACK" not in manifest["sensors"]                                   # no CameraInfo, no TF
    assert manifest["cameras"] == ["CAM_BACK", "CAM_FRONT"]
    # the lidar ground-truth source reads it, camera masks included (CAM_FRONT calibrated, CAM_BACK not)
    spec = GridSpec((-8.0, -8.0, -4.0, 8.0, 8.0, 4.0), (1.0, 1.0, 1.0))
    [gt] = generate([str(seq)], grid="config", config=GTConfig(grid=spec, source="lidar"))
    assert gt.error is None and not gt.failed and len(gt.written) == 4, gt.summary()


def test_tf_chain_is_the_pose_source_without_odometry(tmp_path):
    bag = write_bag(tmp_path / "bag", "mcap", odometry=False, tf_chain=True)
    report = import_bag(bag, tmp_path / "rec", ImportOptions(progress=False, agent="drone"))
    assert report.pose_source == "TF map -> base_link" and report.frames == 4
    for s, pose in zip(LIDAR_S, read_poses(tmp_path / "rec")):
        p, q = true_pose(s)
        np.testing.assert_allclose(pose.position, p + [100.0, 0.0, 0.0], atol=1e-9)   # map -> odom offset
        assert same_rotation(pose.orientation, q)
        np.testing.assert_allclose(pose.angular_velocity, [0, 0, YAW_RATE], atol=1e-6)
        np.testing.assert_allclose(pose.linear_velocity, V, atol=1e-2)               # finite differences


def test_corrupt_messages_are_reported_and_skipped(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", "sqlite3", corrupt=True)
    code = vlwm_main(["import-bag", str(bag), "--out", str(tmp_path / "rec"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"wrote 4 frames to {tmp_path / 'rec'}" in out and "2 messages skipped" in out
    assert "/velodyne_points message #2" in err and "does not decode" in err
    assert "/front/image_raw message #2" in err and "unsupported Image encoding 'yuv422'" in err
    assert len(list((tmp_path / "rec" / "lidar").glob("*.npy"))) == 4


def test_clear_errors_name_the_bag_and_the_problem(tmp_path):
    no_lidar = write_bag(tmp_path / "no_lidar", lidar=False)
    with pytest.raises(BagImportError, match=r"no_lidar: no lidar topic \(sensor_msgs/msg/PointCloud2\)"):
        import_bag(no_lidar, tmp_path / "a", ImportOptions(progress=False))
    no_pose = write_bag(tmp_path / "no_pose", odometry=False)
    with pytest.raises(BagImportError, match=r"no_pose: no pose source: no Odometry topic and no TF path"):
        import_bag(no_pose, tmp_path / "b", ImportOptions(progress=False))
    with pytest.raises(BagImportError, match=r"--topics \['/nope'\] not in the bag"):
        import_bag(no_pose, tmp_path / "c", ImportOptions(topics=("/nope",), progress=False))
    (tmp_path / "junk.mcap").write_bytes(b"not a bag")
    with pytest.raises(BagImportError, match="junk.mcap: cannot open as a ROS 2 bag"):
        import_bag(tmp_path / "junk.mcap", tmp_path / "d", ImportOptions(progress=False))
    bag = write_bag(tmp_path / "ok")
    import_bag(bag, tmp_path / "e", ImportOptions(progress=False))
    with pytest.raises(BagImportError, match="already exists: pass --overwrite"):
        import_bag(bag, tmp_path / "e", ImportOptions(progress=False))
    assert import_bag(bag, tmp_path / "e", ImportOptions(progress=False, overwrite=True)).frames == 4


def test_topic_selection_and_camera_overrides(tmp_path):
    bag = write_bag(tmp_path / "bag")
    report = import_bag(bag, tmp_path / "rec", ImportOptions(
        topics=("/velodyne_points", "/odom", "/back/image/compressed"), camera_topics={"CAM_BACK_LEFT": "/back/image/compressed"},
        progress=False))
    assert report.images == {"CAM_BACK_LEFT": 1}
    assert sorted(p.name for p in (tmp_path / "rec" / "images").iterdir()) == ["000003_CAM_BACK_LEFT.jpg"]
    assert camera_for_topic("/cam_front_left/image/compressed") == "CAM_FRONT_LEFT"
    assert camera_for_topic("/sensors/rear_right_camera/image_raw") == "CAM_BACK_RIGHT"
    assert camera_for_topic("/camera/front/image_raw") == "CAM_FRONT"
    assert camera_for_topic("/depth/points") is None


# ------------------------------------------------------------------------------ conversions


def test_image_encodings_and_interpolation_primitives():
    for enc in ("rgb8", "bgr8"):
        np.testing.assert_array_equal(rm.image_to_rgb(rgb8_msg(0.0, enc)), RGB_FRONT)
    grey = rm.msg_type(rm.IMAGE)(header=rm.header_msg(0, "c"), height=2, width=3, encoding="mono8", is_bigendian=0,
                                 step=4, data=np.array([1, 2, 3, 0, 4, 5, 6, 0], np.uint8))   # padded rows
    np.testing.assert_array_equal(rm.image_to_rgb(grey)[..., 1], [[1, 2, 3], [4, 5, 6]])
    png = io.BytesIO()
    Image.fromarray(RGB_FRONT).save(png, format="PNG")
    msg = rm.msg_type(rm.COMPRESSED_IMAGE)(header=rm.header_msg(0, "c"), format="png",
                                           data=np.frombuffer(png.getvalue(), np.uint8))
    np.testing.assert_array_equal(rm.compressed_to_rgb(msg), RGB_FRONT)
    msg.format = "compressedDepth"
    with pytest.raises(rm.MessageError, match="unsupported CompressedImage format"):
        rm.compressed_to_rgb(msg)
    # slerp halfway between yaw 0 and yaw 1 rad is yaw 0.5 rad; a track interpolates at any instant
    q = slerp(quat_from_euler(0, 0, [0.0]), quat_from_euler(0, 0, [1.0]), np.array([0.5]))
    np.testing.assert_allclose(q[0], quat_from_euler(0, 0, 0.5), atol=1e-12)
    track = TransformTrack.from_samples([0, 10, 20], [[0, 0, 0], [1, 0, 0], [1, 2, 0]],
                                        quat_from_euler(0, 0, np.array([0.0, 0.2, 0.4])))
    pos, quat, _ = track.interpolate(np.array([5, 15, 25]))
    np.testing.assert_allclose(pos[:2], [[0.5, 0, 0], [1, 1, 0]])
    np.testing.assert_allclose(quat[1], quat_from_euler(0, 0, 0.3), atol=1e-12)
    assert track.covers(np.array([5, 15, 25])).tolist() == [True, True, False]
    # a cloud round trip keeps every column exactly
    pts = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    cloud = rm.points_to_cloud(pts, ["x", "y", "z", "intensity", "label"], 5, "lidar")
    back, cols = rm.cloud_to_points(rm.deserialize(rm.serialize(cloud), rm.POINTCLOUD2))
    np.testing.assert_array_equal(back, pts)
    assert cols == ("x", "y", "z", "intensity", "label")
    # an organised (2 x 2), big-endian float64 cloud with padded rows and no intensity
    xyz = np.arange(12, dtype=">f8").reshape(2, 2, 3)
    rows = np.zeros((2, 56), np.uint8)                                   # row_step 56 = 2 points x 24 + 8 padding
    rows[:, :48] = xyz.view(np.uint8).reshape(2, 48)
    field = rm.msg_type("sensor_msgs/msg/PointField")
    organised = rm.msg_type(rm.POINTCLOUD2)(
        header=rm.header_msg(0, "lidar"), height=2, width=2, is_bigendian=True, point_step=24, row_step=56,
        fields=[field(name=c, offset=8 * i, datatype=8, count=1) for i, c in enumerate("xyz")],
        data=rows.reshape(-1), is_dense=True)
    back, cols = rm.cloud_to_points(organised)
    assert cols == ("x", "y", "z", "intensity")
    np.testing.assert_array_equal(back, np.c_[np.arange(12).reshape(4, 3), np.zeros(4)])


# ------------------------------------------------------------------------------ export -> import


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A tiny drone recording from our simulator (3 frames at 2 Hz, lidar and six 32x18 cameras)."""
    city = generate_city(CityConfig(seed=2, size=220.0))
    mission = survey_mission(city, (0.0, 0.0), size=40.0, spacing=20.0, altitude=30.0)
    return record_mission(city, mission, tmp_path_factory.mktemp("sim"), progress=False,
                          config=SimConfig(duration_s=1.0, image_size=(32, 18), traffic=None))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_export_import_round_trip_and_gt_reads_it(recording, tmp_path, storage, capsys):
    bag = tmp_path / "bag"
    assert vlwm_main(["export-bag", str(recording), "--out", str(bag), "--storage", storage, "--quiet"]) == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    assert list(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
    seq = tmp_path / "imported"
    report = import_bag(bag, seq, ImportOptions(agent="drone", progress=False))
    assert report.frames == 3 and not report.skipped and report.pose_source == "odometry /odom"

    original, imported = read_poses(recording), read_poses(seq)
    for a, b in zip(original, imported):
        assert b.timestamp == a.timestamp
        np.testing.assert_allclose(b.position, a.position, atol=1e-12)
        assert same_rotation(b.orientation, a.orientation, atol=1e-12)
        np.testing.assert_allclose(b.linear_velocity, a.linear_velocity, atol=1e-9)
        np.testing.assert_allclose(b.angular_velocity, a.angular_velocity, atol=1e-12)
    src, dst = (json.loads((p / "sequence.json").read_text()) for p in (recording, seq))
    assert dst["lidar_columns"] == src["lidar_columns"] and dst["agent_type"] == "drone"
    assert dst["rates"]["frame_rate_hz"] == src["rates"]["frame_rate_hz"]
    np.testing.assert_allclose(dst["sensors"]["LIDAR"]["T_body_sensor"], src["sensors"]["LIDAR"]["T_body_sensor"],
                               atol=1e-9)
    for cam in src["cameras"]:
        np.testing.assert_allclose(dst["sensors"][cam]["K"], src["sensors"][cam]["K"])
        np.testing.assert_allclose(dst["sensors"][cam]["T_body_sensor"], src["sensors"][cam]["T_body_sensor"],
                                   atol=1e-9)
    for i in range(1, 4):
        np.testing.assert_array_equal(np.load(seq / "lidar" / f"{i:06d}_LIDAR.npy"),
                                      np.load(recording / "lidar" / f"{i:06d}_LIDAR.npy"))
        for cam in src["cameras"]:
            name = f"{i:06d}_{cam}.jpg"
            assert (seq / "images" / name).read_bytes() == (recording / "images" / name).read_bytes()

    # the lidar ground-truth source reads the imported recording (camera masks from its calibration) ...
    spec = GridSpec((-20.0, -20.0, -2.0, 20.0, 20.0, 38.0), (1.0, 1.0, 1.0))
    [gt] = generate([str(seq)], grid="config", config=GTConfig(grid=spec, source="lidar"))
    assert gt.error is None and not gt.failed and len(gt.written) == 3
    occ = read_frame(seq / "occupancy" / "000002_occupancy.vlo")
    assert (occ["semantics"] != FREE).any() and occ["mask_lidar"].any() and occ["mask_camera"].any()
    # ... and so does the dataset: every frame usable, with lidar, six calibrated cameras and the lidar mount
    record = validate_sequence(seq, DatasetConfig(point_cloud_range=spec.point_cloud_range, voxel_size=spec.voxel_size,
                                                  load_lidar=True, load_images=True))
    assert not record.issues and record.usable.all() and record.agent_type == "drone"
    assert record.frame_rate_hz == 2.0 and record.rate_source == "sequence.json"
    assert sorted(record.cameras) == sorted(src["cameras"])
    np.testing.assert_allclose(record.T_body_lidar, src["sensors"]["LIDAR"]["T_body_sensor"], atol=1e-9)
    exported_again = export_bag(seq, tmp_path / "bag2", progress=False)     # an imported recording exports too
    assert exported_again.frames == 3
    assert import_bag(tmp_path / "bag2", tmp_path / "again", ImportOptions(progress=False)).frames == 3
    assert read_poses(tmp_path / "again")[2].timestamp == original[2].timestamp
