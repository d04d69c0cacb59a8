"""Smoke test of ``python visualize_demo.py``: a tiny world model's forecast videos are playable MP4s."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPTIONS = ["frame_skip=6"]


def _eval_test_module():
    spec = importlib.util.spec_from_file_location("_vlwm_eval_script_test", REPO / "tests" / "eval" / "test_eval_script.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_EVAL = _eval_test_module()
run_script = _EVAL.run_script


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(data root, trained world-model checkpoint), as in tests/eval/test_eval_script.py."""
    return _EVAL.tiny_run.__wrapped__(tmp_path_factory)


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
