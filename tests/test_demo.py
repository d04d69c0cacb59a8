"""Smoke test of ``vlwm demo`` (vlwm.demo.run_demo) on a very small configuration."""

from __future__ import annotations

import json

from vlwm.demo import run_demo


def test_demo_end_to_end_then_reuse(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(out, seed=0, size=300.0, duration=15.0, workers=1, vqvae_epochs=1, wm_epochs=1)
    assert report == out / "REPORT.md" and report.is_file()
    text = report.read_text()
    assert "| method | mIoU 1s" in text
    for row in ("| model |", "| copy_last |", "| ego_warp_true |", "| ego_warp_pred |"):
        assert row in text, row
    assert "copy-last at 1 s" in text                    # the verdict, whichever way it goes
    assert "40 x 40 x 20" in text
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["num_windows"] > 0
    videos = sorted((out / "videos").glob("*.mp4")) + sorted((out / "videos").glob("*.gif"))
    assert videos and all(v.stat().st_size > 0 for v in videos)
    assert any(v.name in text for v in videos)
    for png in ("vqvae_loss.png", "world_model_loss.png"):
        assert (out / "figures" / png).stat().st_size > 0
        assert f"figures/{png}" in text
    printed = capsys.readouterr().out
    assert "[1/8]" in printed and "[8/8]" in printed and str(report) in printed

    stamp = (out / "train" / "world_model" / "latest.pth").stat().st_mtime
    assert run_demo(out, seed=0, size=300.0, duration=15.0, workers=1, vqvae_epochs=1, wm_epochs=1) == report
    assert "reusing" in capsys.readouterr().out
    assert (out / "train" / "world_model" / "latest.pth").stat().st_mtime == stamp

    # the same folder with another city is refused before anything is overwritten
    import pytest
    with pytest.raises(ValueError, match="seed 0 -> 1"):
        run_demo(out, seed=1, size=300.0, duration=15.0, workers=1, vqvae_epochs=1, wm_epochs=1)
    assert (out / "train" / "world_model" / "latest.pth").stat().st_mtime == stamp


def test_demo_ground_truth_grid_is_the_configs_grid():
    """The demo writes ground truth on DEMO_RANGE / DEMO_VOXEL; both training stages must read that grid."""
    from vlwm.demo import CONFIG_DIR, DEMO_RANGE, DEMO_VOXEL
    from vlwm.gt.grid import GridSpec
    from vlwm.train.config import load_config

    for name in ("demo_vqvae.py", "demo_occworld.py"):
        cfg, _ = load_config(CONFIG_DIR / name, {"data_root": "unused"})
        assert cfg.grid == GridSpec(DEMO_RANGE, DEMO_VOXEL), name
