"""Smoke test of ``python visualize_demo.py``: a tiny world model's forecast videos are playable MP4s."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.tiny_runs import QUICK_OPTIONS as OPTIONS
from tests.helpers.tiny_runs import REPO, run_script, train_tiny_world_model, write_tiny_recordings


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(data root, trained world-model checkpoint): two tiny sequences with masks, one epoch of training."""
    root = write_tiny_recordings(tmp_path_factory.mktemp("vis_data"), masks=True)
    return root, train_tiny_world_model(root, tmp_path_factory.mktemp("vis_wm"))


def test_visualize_script_writes_playable_mp4(tiny_run, tmp_path):
    import imageio.v3 as iio

    root, ckpt = tiny_run
    out = tmp_path / "vis"
    r = run_script("visualize_demo.py", "--py-config", "config/tiny_occworld.py", "--work-dir", str(ckpt.parent),
                   "--checkpoint", str(ckpt), "--output-dir", str(out), "--scene-idx", "0", "1",
                   "--cfg-options", f"data_root={root}", *OPTIONS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for i in (0, 1):
        mp4 = out / f"window_{i:05d}.mp4"
        frames = iio.imread(mp4)                                     # (T, H, W, 3)
        assert frames.ndim == 4 and frames.shape[0] == 4 and frames.shape[-1] == 3   # 2 history + 2 future
        assert (out / f"window_{i:05d}.gif").exists() and list((out / f"window_{i:05d}").glob("*.png"))


def test_front_camera_shown_when_the_recordings_have_images(tiny_run, tmp_path):
    import imageio.v3 as iio

    from vlwm.train.config import load_config
    from vlwm.viz.forecast_run import visualize

    _, ckpt = tiny_run
    videos = {}
    for with_images in (True, False):
        root = write_tiny_recordings(tmp_path / f"data_{with_images}", images=with_images)
        cfg, _ = load_config(REPO / "config" / "tiny_occworld.py", {"data_root": str(root), "frame_skip": 6})
        for mode in (None, False):              # auto, off
            f = visualize(cfg, ckpt, tmp_path / f"vis_{with_images}_{mode}", [0], gif=False, pngs=False)[0] \
                if mode is None else visualize(cfg, ckpt, tmp_path / f"vis_{with_images}_{mode}", [0], images=False,
                                               gif=False, pngs=False)[0]
            videos[with_images, mode] = iio.imread(f.mp4)
    assert videos[True, False].shape == videos[False, False].shape
    assert videos[True, None].shape[2] > videos[True, False].shape[2]    # auto adds the recorded camera
    assert np.array_equal(videos[False, None], videos[False, False])      # no images: auto = off, no error
