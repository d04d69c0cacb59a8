"""Voxel renderer, BEV, video writers, window frames and `vlwm visualize-data` on tiny inputs."""

import argparse
import json

import numpy as np
import pytest

from vlwm.gt.bev import bev_classes, bev_image
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, OCC3D_PALETTE
from vlwm.viz.bev import lidar_bev, metres_to_pixels
from vlwm.viz.forecast import write_window_video
from vlwm.viz.video import compose, write_video
from vlwm.viz.voxel_render import BACKGROUND, Camera, exposed_faces, render_voxels, voxel_mesh
from vlwm.world.raycast import NumpyTracer

CAR, ROAD, VEG = 4, 11, 16
GRID = GridSpec((-4.0, -4.0, 0.0, 4.0, 4.0, 4.0), (1.0, 1.0, 1.0))   # 8 x 8 x 4


def empty(shape=(8, 8, 4)):
    return np.full(shape, FREE, np.uint8)


def test_lone_voxel_has_six_faces_two_adjacent_have_ten():
    g = empty((3, 3, 3))
    g[1, 1, 1] = CAR
    assert len(exposed_faces(g).voxel) == 6
    g[2, 1, 1] = CAR
    f = exposed_faces(g)
    assert len(f.voxel) == 10
    assert set(f.label.tolist()) == {CAR}
    g[1, 1, 1] = ROAD                                   # a class boundary between occupied voxels is hidden
    assert len(exposed_faces(g).voxel) == 10


def test_mesh_merges_coplanar_faces_but_covers_the_same_area():
    g = empty()
    g[:, :, 0] = ROAD
    mesh = voxel_mesh(g, GRID)
    tri = mesh.vertices[mesh.triangles]                                      # (2Q, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    assert area == pytest.approx(2 * 64 + 4 * 8)                             # top + bottom + 4 sides
    assert len(mesh.triangles) < 2 * len(exposed_faces(g).voxel)


def test_render_shows_palette_colour_where_the_block_is_and_background_elsewhere():
    g = empty()
    g[3:5, 3:5, 0:2] = CAR                                                   # a 2 x 2 x 2 block at the centre
    top_down = Camera(eye=(0.0, 0.0, 20.0), target=(0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0), fov_deg=30.0)
    img = render_voxels(g, GRID, top_down, size=(64, 48), light=None, edges=False)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert (img[24, 32] == OCC3D_PALETTE[CAR]).all()
    assert (img[2, 2] == BACKGROUND).all() and (img[45, 60] == BACKGROUND).all()
    shaded = render_voxels(g, GRID, top_down, size=(64, 48))                # lit top face: a shade of the colour
    ratio = shaded[24, 32].astype(float) / 255
    assert shaded[24, 32, 0] == 0 and shaded[24, 32, 2] > shaded[24, 32, 1] > 0 and ratio.max() > 0.5


def test_embree_render_matches_the_numpy_reference():
    g = empty()
    g[2:6, 1:3, 0:3] = VEG
    g[:, :, 0] = ROAD
    fast = render_voxels(g, GRID, size=(40, 30))
    slow = render_voxels(g, GRID, size=(40, 30), tracer_cls=NumpyTracer)
    assert np.mean(np.any(fast != slow, axis=2)) < 0.02                      # edge-on rays may differ


def test_bev_top_class_and_orientation():
    g = empty((4, 5, 3))
    g[:, :, 0] = ROAD
    g[1, 2, 2] = VEG
    classes, height = bev_classes(g)
    assert classes[1, 2] == VEG and height[1, 2] == 2
    assert classes[0, 0] == ROAD and height[0, 0] == 0
    g[3, 4, :] = FREE
    classes, height = bev_classes(g)
    assert classes[3, 4] == FREE and height[3, 4] == -1
    img = bev_image(g, scale=1, height_shading=False)
    assert img.shape == (4, 5, 3)
    assert (img[4 - 1 - 1, 5 - 1 - 2] == OCC3D_PALETTE[VEG]).all()          # x up, y left
    assert (img[0, 0] == OCC3D_PALETTE[FREE]).all()                          # grid [3, 4]


def test_metres_to_pixels_and_lidar_bev():
    grid = GridSpec((-4.0, -4.0, 0.0, 4.0, 4.0, 4.0), (1.0, 1.0, 1.0))
    np.testing.assert_allclose(metres_to_pixels([[0.0, 0.0], [3.5, 3.5]], grid, 2), [[8, 8], [1, 1]])
    pts = np.array([[3.5, 3.5, 0.0, 1.0, CAR], [-3.5, -3.5, 0.0, 1.0, ROAD]], np.float32)
    img = lidar_bev(pts, grid, scale=1)
    assert (img[0, 0] == OCC3D_PALETTE[CAR]).all() and (img[7, 7] == OCC3D_PALETTE[ROAD]).all()


def test_video_writer_mp4_gif_pngs(tmp_path):
    import imageio.v3 as iio

    frames = [compose([[("a", np.full((31, 41, 3), 40 * i, np.uint8)), ("b", None)]], height=33) for i in range(4)]
    files = write_video(tmp_path / "v.mp4", frames, fps=4, gif=True, png_dir=tmp_path / "png")
    w, h = files.size
    assert w % 2 == 0 and h % 2 == 0
    video = iio.imread(files.mp4, plugin="FFMPEG")
    assert video.shape == (4, h, w, 3)
    gif = iio.imread(files.gif, index=None)
    assert gif.shape[0] == 4
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"00000{i}.png" for i in range(1, 5)]
    assert not list(tmp_path.glob(".*"))                                     # no temporary files left


def test_write_window_video(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    hist = empty((2, 8, 8, 4))
    hist[:, :, :, 0] = ROAD
    gt = hist.copy()
    gt[:, 5, 5, 1] = CAR
    pred = gt.copy()
    pred[rng.random(pred.shape) < 0.05] = VEG
    traj_true = np.array([[1.0, 0.0], [2.0, 0.2]])
    traj_pred = np.array([[1.1, 0.1], [2.3, 0.0]])
    front = [np.full((20, 30, 3), 100, np.uint8), None, None, np.zeros((20, 30, 3), np.uint8)]
    files = write_window_video(tmp_path / "w.mp4", hist, gt, pred, traj_true, traj_pred, front, grid=GRID)
    assert files.frames == 4
    assert iio.imread(files.mp4, plugin="FFMPEG").shape[0] == 4
    assert files.gif.is_file() and len(list(files.png_dir.glob("*.png"))) == 4


def _tiny_recording(seq, frames=3):
    from vlwm.io.image_io import save_rgb_jpeg

    for sub in ("poses", "occupancy", "lidar", "images"):
        (seq / sub).mkdir(parents=True)
    (seq / "occupancy" / "grid.json").write_text(json.dumps(GRID.to_json()))
    for f in range(1, frames + 1):
        pose = {"position": {"x": float(f), "y": 0.0, "z": 0.0},
                "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}
        (seq / "poses" / f"{f:06d}.json").write_text(json.dumps(pose))
        occ = empty()
        occ[:, :, 0] = ROAD
        occ[f, 2, 1] = CAR
        np.savez_compressed(seq / "occupancy" / f"{f:06d}_occupancy.npz", semantics=occ)
        pts = np.array([[1.0, 1.0, 0.5, 1.0, CAR, 0, 0, 0], [2.0, -1.0, 0.0, 1.0, ROAD, 0, 0, 0]], np.float32)
        np.save(seq / "lidar" / f"{f:06d}_LIDAR.npy", pts)
        if f != 2:                                                            # one frame without a camera
            save_rgb_jpeg(seq / "images" / f"{f:06d}_CAM_FRONT.jpg", np.full((24, 32, 3), 50 * f, np.uint8))


def test_visualize_data_cli_writes_a_video(tmp_path, capsys):
    import imageio.v3 as iio

    from vlwm.viz.cli import add_viz_parser

    seq = tmp_path / "rover_20250101_000000"
    _tiny_recording(seq)
    parser = argparse.ArgumentParser(prog="vlwm")
    add_viz_parser(parser.add_subparsers(dest="verb"))
    out = tmp_path / "out" / "data.mp4"
    args = parser.parse_args(["visualize-data", str(seq), "--out", str(out), "--max-frames", "2", "--quiet"])
    assert args.func(args) == 0
    assert iio.imread(out, plugin="FFMPEG").shape[0] == 2
    assert "wrote 2 frames" in capsys.readouterr().out
