"""Camera simulation: depth and labels agree with the scene (and with the lidar), intrinsics and
extrinsics project known points to the right pixels, files round-trip, and the rigs look where
they should."""

import dataclasses
import io

import numpy as np
import pytest

from vlwm.labels import FREE, OCC3D_ID
from vlwm.sim.camera import CAMERA_NAMES, CameraConfig, camera_rig, project_points, render, render_rig
from vlwm.io.image_io import (DEPTH_MAX_MM, image_paths, load_camera_image, load_depth_png, load_semantic_png,
                               save_camera_image, save_depth_png, save_semantic_png)
from vlwm.io.frames import Pose, transform_points
from vlwm.sim.lidar import rover_lidar, scan

ROAD_HALF_WIDTH = 6.0  # as in conftest.box_city
#: Buildings: (bottom centre, (length, width, height), yaw); the first stands straight ahead of
#: a rover at the origin facing +x, its front face at x = 36 m.
BOXES = [((40.0, 0.0, 0.0), (8.0, 10.0, 15.0), 0.0), ((30.0, 20.0, 0.0), (12.0, 10.0, 24.0), 0.3),
         ((-25.0, -30.0, 0.0), (15.0, 9.0, 12.0), 0.0), ((10.0, -40.0, 0.0), (8.0, 8.0, 40.0), 1.1)]
GROUND = (OCC3D_ID["driveable_surface"], OCC3D_ID["terrain"])
MANMADE = OCC3D_ID["manmade"]
SURFACE_TOL = 0.01  # m
SMALL = dict(width=160, height=90)  # test image size




def pixel_rays(camera):
    """(H*W, 3) unit optical-frame rays through pixel centres, from K^-1 (row-major)."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1)
    d = pix @ np.linalg.inv(camera.K()).T
    return d / np.linalg.norm(d, axis=1, keepdims=True)


ROVER_POSE = Pose.from_xyz_rpy(0.0, (0.0, 0.0, 0.0))
DRONE_POSE = Pose.from_xyz_rpy(0.0, (5.0, 3.0, 30.0), (0.03, -0.05, 2.0))


@pytest.fixture(scope="module")
def scene(make_box_city):
    return make_box_city(BOXES)


def test_rigs_have_six_named_cameras_looking_where_documented():
    for vehicle in ("drone", "rover"):
        rig = camera_rig(vehicle, **SMALL)
        assert tuple(c.name for c in rig) == CAMERA_NAMES
        for cam in rig:
            T = cam.T_body_sensor()
            np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
            forward, right = T[:3, 2], T[:3, 0]  # optical z and x in the body frame
            yaw = {"CAM_FRONT": 0, "CAM_FRONT_LEFT": 55, "CAM_FRONT_RIGHT": -55, "CAM_BACK": 180,
                   "CAM_BACK_LEFT": 110, "CAM_BACK_RIGHT": -110}[cam.name]
            assert np.angle(np.exp(1j * (np.arctan2(forward[1], forward[0]) - np.deg2rad(yaw)))) == pytest.approx(0, abs=1e-9)
            assert right[2] == pytest.approx(0, abs=1e-12)  # image rows stay level
            pitch_down = 35.0 if vehicle == "drone" else 0.0
            assert forward[2] == pytest.approx(-np.sin(np.deg2rad(pitch_down)), abs=1e-9)
        assert [c.fov_x_deg for c in rig if c.name == "CAM_BACK"] == [110.0]
    with pytest.raises(ValueError, match="unknown vehicle"):
        camera_rig("boat")


def test_intrinsics_and_extrinsics_project_a_known_point(scene):
    front = camera_rig("rover")[0]  # full 640x360
    img = render(scene.cast, ROVER_POSE, front)
    # A point 0.5 m inside the top-right corner of the front face of box 0 (x = 36 m).
    point = np.array([[36.0, -4.5, 14.5]])
    uv, z = project_points(point, ROVER_POSE, front)
    cam_x = transform_points(ROVER_POSE.matrix() @ front.T_body_sensor(), [[0, 0, 0]])[0, 0]
    assert z[0] == pytest.approx(36.0 - cam_x)
    u, v = np.round(uv[0]).astype(int)
    assert 0 <= u < front.width and 0 <= v < front.height
    assert u > front.width / 2 and v < front.height / 2  # right of and above the image centre
    assert img.semantic[v, u] == MANMADE
    # The face is perpendicular to the optical axis: every pixel on it has the same z-depth.
    assert abs(int(img.depth_mm[v, u]) - 1000 * (36.0 - cam_x)) <= 1


def test_depth_and_labels_agree_with_the_scene(scene, box_surface_distance):
    rig = camera_rig("drone", **SMALL)
    images = render_rig(scene.cast, DRONE_POSE, rig)
    for cam in rig:
        img = images[cam.name]
        assert img.rgb.shape == (cam.height, cam.width, 3) and img.rgb.dtype == np.uint8
        assert img.depth_mm.dtype == np.uint16 and img.semantic.dtype == np.uint8
        T = DRONE_POSE.matrix() @ cam.T_body_sensor()
        d_opt = pixel_rays(cam)
        hits = scene.cast(np.broadcast_to(T[:3, 3], d_opt.shape), d_opt @ T[:3, :3].T, cam.max_range)
        np.testing.assert_array_equal(img.semantic.ravel(), hits.cls)
        z_mm = hits.distance * d_opt[:, 2] * 1000.0
        expected = np.where(hits.hit & (z_mm <= DEPTH_MAX_MM + 0.5), np.rint(z_mm), 0)
        assert np.abs(img.depth_mm.ravel() - expected).max() <= 1
        # Back-projected pixels lie on the surfaces their labels name.
        valid = img.depth_mm.ravel() > 0
        v, u = np.divmod(np.flatnonzero(valid), cam.width)
        p_opt = np.stack([u, v, np.ones_like(u)], 1) @ np.linalg.inv(cam.K()).T * (img.depth_mm.ravel()[valid] / 1000.0)[:, None]
        world = transform_points(T, p_opt)
        sem = img.semantic.ravel()[valid]
        ground, building = np.isin(sem, GROUND), sem == MANMADE
        assert np.all(ground | building)
        np.testing.assert_array_less(np.abs(world[ground, 2]), SURFACE_TOL)
        dist_to_boxes = np.min([box_surface_distance(world[building], b) for b in BOXES], axis=0)
        np.testing.assert_array_less(dist_to_boxes, SURFACE_TOL)


def test_camera_depth_agrees_with_lidar_range(scene):
    cam, lidar = camera_rig("rover")[0], rover_lidar()
    img = render(scene.cast, ROVER_POSE, cam)
    pts = scan(scene.cast, ROVER_POSE, lidar)
    world = transform_points(ROVER_POSE.matrix() @ lidar.T_body_sensor(), pts[:, :3])
    uv, z = project_points(world, ROVER_POSE, cam)
    ui, vi = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (z > 2) & (z < 60) & (ui >= 0) & (ui < cam.width) & (vi >= 0) & (vi < cam.height)
    ui, vi, z, label = ui[inside], vi[inside], z[inside], pts[inside, 4]
    same = (img.semantic[vi, ui] == label) & (img.depth_mm[vi, ui] > 0)
    assert inside.sum() > 1000 and same.mean() > 0.95
    depth = img.depth_mm[vi, ui][same] / 1000.0
    # Rounding to the pixel centre shifts the ray by up to half a pixel: on the ground seen from
    # height h that changes the depth by at most ~ z^2 / (2 h f); building faces change less.
    h = transform_points(ROVER_POSE.matrix() @ cam.T_body_sensor(), [[0, 0, 0]])[0, 2]
    tol = z[same] ** 2 / (h * cam.focal) + 0.01
    assert np.mean(np.abs(depth - z[same]) <= tol) > 0.98


def test_sky_is_free_with_no_depth(scene):
    img = render(scene.cast, ROVER_POSE, camera_rig("rover", **SMALL)[0])
    sky = img.semantic == FREE
    assert sky.mean() > 0.1 and np.all(sky[0, -SMALL["width"] // 4:])  # the top-right corner is sky
    assert np.all(img.depth_mm[sky] == 0)
    rgb = img.rgb[sky].astype(int)
    assert np.all(rgb[:, 2] > rgb[:, 0])  # blue-ish
    # Ground beyond 65.535 m keeps its label but stores no depth.
    far_ground = np.isin(img.semantic, GROUND) & (img.depth_mm == 0)
    assert far_ground.any()


def test_drone_cameras_see_the_ground_from_30m(scene):
    images = render_rig(scene.cast, Pose.from_xyz_rpy(0.0, (0, 0, 30.0), (0, 0, 0.7)), camera_rig("drone", **SMALL))
    assert set(images) == set(CAMERA_NAMES)
    for name, img in images.items():
        assert np.isin(img.semantic, GROUND).mean() > 0.3, name
        assert not np.any(img.semantic[img.semantic.shape[0] // 2:] == FREE), name  # below the axis: no sky


def test_rendering_is_deterministic_and_single_matches_rig(scene):
    rig = camera_rig("drone", **SMALL)
    a = render_rig(scene.cast, DRONE_POSE, rig)
    b = render_rig(scene.cast, DRONE_POSE, rig)
    c = render_rig(scene.cast, DRONE_POSE, rig, seed=1)
    single = render(scene.cast, DRONE_POSE, rig[2])
    for name in CAMERA_NAMES:
        for field in ("rgb", "depth_mm", "semantic"):
            np.testing.assert_array_equal(getattr(a[name], field), getattr(b[name], field))
        np.testing.assert_array_equal(a[name].depth_mm, c[name].depth_mm)
        np.testing.assert_array_equal(a[name].semantic, c[name].semantic)
    assert not np.array_equal(a["CAM_FRONT"].rgb, c["CAM_FRONT"].rgb)  # the seed moves the texture
    for field in ("rgb", "depth_mm", "semantic"):
        np.testing.assert_array_equal(getattr(single, field), getattr(a[rig[2].name], field))


def test_sunlit_ground_is_brighter(scene):
    cam = camera_rig("drone", **SMALL)[0]
    pose = Pose.from_xyz_rpy(0.0, (0, 0, 30.0))
    lit = render(scene.cast, pose, cam, sun_dir=(0, 0, 1))
    dark = render(scene.cast, pose, cam, sun_dir=(0, 0, -1))
    ground = np.isin(lit.semantic, GROUND)
    assert lit.rgb[ground].mean() > 1.5 * dark.rgb[ground].mean()


def test_projection_inverts_back_projection():
    cam = CameraConfig("CAM_TEST", width=64, height=48, fov_x_deg=80.0, mount_xyz=(0.3, -0.2, 1.1),
                       mount_rpy=(0.1, 0.2, -0.4))
    pose = Pose.from_xyz_rpy(0.0, (3.0, 4.0, 5.0), (0.05, 0.1, 1.0))
    rng = np.random.default_rng(0)
    uv = rng.uniform([0, 0], [cam.width - 1, cam.height - 1], (50, 2))
    depth = rng.uniform(1, 50, 50)
    p_opt = np.column_stack([uv, np.ones(50)]) @ np.linalg.inv(cam.K()).T * depth[:, None]
    world = transform_points(pose.matrix() @ cam.T_body_sensor(), p_opt)
    uv2, z = project_points(world, pose, cam)
    np.testing.assert_allclose(uv2, uv, atol=1e-8)
    np.testing.assert_allclose(z, depth)
    K = cam.K()
    assert K[0, 2] == (cam.width - 1) / 2 and K[1, 2] == (cam.height - 1) / 2 and K[0, 0] == K[1, 1]
    # The image's outer edges (u = -0.5 and W - 0.5) lie fov_x / 2 either side of the optical axis.
    assert np.degrees(np.arctan((cam.width / 2) / K[0, 0])) == pytest.approx(cam.fov_x_deg / 2)


def test_png_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.integers(0, 65536, (37, 53), dtype=np.uint16)
    depth[0, :3] = [0, 32768, 65535]
    save_depth_png(tmp_path / "d.png", depth)
    np.testing.assert_array_equal(load_depth_png(tmp_path / "d.png"), depth)
    sem = rng.integers(0, 18, (37, 53), dtype=np.uint8)
    save_semantic_png(tmp_path / "s.png", sem)
    np.testing.assert_array_equal(load_semantic_png(tmp_path / "s.png"), sem)
    buf = io.BytesIO()  # file objects work too (the recorder writes through atomic temp files)
    save_depth_png(buf, depth)
    np.testing.assert_array_equal(load_depth_png(io.BytesIO(buf.getvalue())), depth)
    with pytest.raises(ValueError, match="uint16"):
        save_depth_png(tmp_path / "bad.png", depth.astype(np.int32))
    with pytest.raises(ValueError, match="16-bit"):
        load_depth_png(tmp_path / "s.png")


def test_camera_files_are_named_and_read_back(scene, tmp_path):
    cam = camera_rig("drone", **SMALL)[0]
    img = render(scene.cast, DRONE_POSE, cam)
    paths = save_camera_image(tmp_path / "images", 1, cam.name, img)
    assert [p.name for p in paths] == ["000001_CAM_FRONT.jpg", "000001_CAM_FRONT_depth.png",
                                       "000001_CAM_FRONT_sem.png"]
    assert paths == image_paths(tmp_path / "images", 1, cam.name)
    back = load_camera_image(tmp_path / "images", 1, cam.name)
    np.testing.assert_array_equal(back.depth_mm, img.depth_mm)
    np.testing.assert_array_equal(back.semantic, img.semantic)
    assert np.abs(back.rgb.astype(int) - img.rgb).mean() < 4  # JPEG, quality 90
    with pytest.raises(ValueError, match="start at 1"):
        image_paths(tmp_path, 0, cam.name)


def test_config_errors_name_the_camera():
    with pytest.raises(ValueError, match="CAM_X"):
        CameraConfig("CAM_X", fov_x_deg=190.0)
    with pytest.raises(ValueError, match="distinct"):
        render_rig(None, ROVER_POSE, (CameraConfig("A"), CameraConfig("A")))
    assert dataclasses.replace(CameraConfig("A"), width=10).width == 10


@pytest.mark.parametrize("pose", [ROVER_POSE, DRONE_POSE], ids=["rover", "drone"])
def test_compiled_shading_matches_numpy_reference(scene, pose):
    rig = camera_rig("rover" if pose is ROVER_POSE else "drone", **SMALL)
    fast = render_rig(scene.cast, pose, rig, seed=3, backend="numba")
    ref = render_rig(scene.cast, pose, rig, seed=3, backend="numpy")
    for name in CAMERA_NAMES:
        np.testing.assert_array_equal(fast[name].depth_mm, ref[name].depth_mm)
        np.testing.assert_array_equal(fast[name].semantic, ref[name].semantic)
        diff = np.abs(fast[name].rgb.astype(int) - ref[name].rgb).max(axis=2)
        # One grey level of float rounding; a pixel whose texture cell flips with round-off may differ more.
        assert np.mean(diff > 1) < 1e-3, name
    with pytest.raises(ValueError, match="backend"):
        render_rig(scene.cast, pose, rig, backend="cuda")
