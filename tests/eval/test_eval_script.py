"""Smoke test of ``python eval_metric_stp3.py`` on tiny data with a tiny world model trained for one epoch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.tiny_runs import QUICK_OPTIONS as OPTIONS
from tests.helpers.tiny_runs import REPO, run_script, train_tiny_world_model, write_tiny_recordings


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, trained world-model checkpoint): two tiny sequences with masks, one epoch of training."""
    root = write_tiny_recordings(tmp_path_factory.mktemp("eval_data"), masks=True)
    return root, train_tiny_world_model(root, tmp_path_factory.mktemp("eval_wm"))


def _numbers(d: dict) -> list[float]:
    return [v for k in ("miou", "iou") for v in d[k]] + [v for k in ("miou_at", "iou_at") for v in d[k].values()]


@pytest.mark.parametrize("mask", ["none", "camera"])
def test_eval_script_writes_metrics(tiny_run, tmp_path, mask):
    root, ckpt = tiny_run
    out = tmp_path / "eval"
    r = run_script("eval_metric_stp3.py", "--py-config", "config/tiny_occworld.py", "--work-dir", str(out),
                   "--checkpoint", str(ckpt), "--split", "val", "--mask", mask, "--cfg-options",
                   f"data_root={root}", *OPTIONS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "model mIoU" in r.stdout and "copy_last" in r.stdout
    res = json.loads((out / "metrics.json").read_text())
    assert res["mask"] == mask and res["num_windows"] > 0
    entries = {"model": res["model"], **res["baselines"]}
    assert set(entries) == {"model", "copy_last", "ego_warp_true", "ego_warp_pred"}
    for name, e in entries.items():
        occ = e["occupancy"]
        assert set(occ["groups"]) <= {"drone", "rover"} and occ["groups"], name
        for v in _numbers(occ):
            assert v is not None and 0.0 <= v <= 100.0, (name, v)
    plan = res["model"]["planning"]
    assert plan["ade"] is not None and plan["ade"] > 0
    # 2 future frames: the first one's position is a model input and not scored, so ADE is the
    # error of the one predicted waypoint (1 s), not half of it
    assert plan["ade"] == pytest.approx(plan["fde"]) == pytest.approx(plan["l2_at"]["1s"])
    table = (out / "metrics.md").read_text()
    for name in entries:
        assert f"| {name} |" in table
    assert "mIoU avg" in table and "L2 avg" in table

    # copy_last equals OccForecastMetric computed directly on the same windows
    from torch.utils.data import DataLoader

    from vlwm.data.dataset import collate_fn
    from vlwm.eval import OccForecastMetric, copy_last
    from vlwm.eval.run import eval_dataset
    from vlwm.train.config import load_config

    cfg, _ = load_config(REPO / "config" / "tiny_occworld.py", {"data_root": str(root), "frame_skip": 6})
    dataset = eval_dataset(cfg, "val", mask)
    metric = None
    for batch in DataLoader(dataset, batch_size=1, collate_fn=collate_fn):
        target = batch["future_occupancy"]
        metric = metric or OccForecastMetric(target.shape[1], frame_rate_hz=float(batch["frame_rate_hz"][0]))
        metric.update(copy_last(batch["history_occupancy"], target.shape[1]), target,
                      mask=None if mask == "none" else batch[f"future_mask_{mask}"], group=list(batch["agent_type"]))
    direct = metric.compute()
    got = res["baselines"]["copy_last"]["occupancy"]
    np.testing.assert_allclose(got["miou"], direct.miou)
    np.testing.assert_allclose(got["iou"], direct.iou)
    assert got["miou_at"] == pytest.approx(direct.miou_at) and got["iou_at"] == pytest.approx(direct.iou_at)
    assert math.isclose(got["miou_avg"], direct.miou_avg) and got["num_samples"] == direct.num_samples


def test_eval_script_reports_missing_checkpoint(tiny_run, tmp_path):
    root, _ = tiny_run
    r = run_script("eval_metric_stp3.py", "--py-config", "config/tiny_occworld.py", "--work-dir", str(tmp_path),
                   "--checkpoint", str(tmp_path / "nope.pth"), "--cfg-options", f"data_root={root}", *OPTIONS)
    assert r.returncode == 1 and "nope.pth" in r.stderr
    assert not (tmp_path / "metrics.json").exists()
