"""``evaluate()`` reports VPQ for the model and every baseline on the same windows: with the
simulator's instance ids when the ground truth has them, else with the connected-component
fallback (recorded in ``metrics.json``), NaN -> "–" when there is no dynamic instance at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import recordings
from vlwm.labels import FREE

REPO = Path(__file__).resolve().parents[2]
ENTRIES = ("model", "copy_last", "ego_warp_true", "ego_warp_pred")


def tiny_config(root: Path):
    from vlwm.train.config import load_config

    return load_config(REPO / "config" / "tiny_occworld.py", {"data_root": str(root), "frame_skip": 6})[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny world model (VPQ is about the bookkeeping here, not about a good model)."""
    from vlwm.models import build_world_model

    torch.manual_seed(0)
    model = build_world_model(tiny_config(Path("unused")).model_config())
    path = tmp_path_factory.mktemp("vpq_ckpt") / "untrained.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def write_data(root: Path, instances: bool, dynamic: bool = True) -> Path:
    """A drone and a rover sequence with a car driving through the grid (``synth`` layout)."""
    for name, agent in (("drone_a", "drone"), ("rover_a", "rover")):
        seq = recordings.write_sequence(root, name, n=30, agent=agent, speed=1.0, car=True, instances=instances)
        if not dynamic:                                  # no car, no marker column: nothing dynamic at all
            for f in (seq / "occupancy").glob("*_occupancy.npz"):
                with np.load(f) as z:
                    arrays = dict(z)
                arrays["semantics"][arrays["semantics"] == recordings.MARKER_CLASS] = FREE
                np.savez_compressed(f, **arrays)
    return root


def test_vpq_for_model_and_baselines_with_simulator_instances(tmp_path, checkpoint):
    from torch.utils.data import DataLoader

    from vlwm.data.dataset import collate_fn
    from vlwm.eval import VPQMetric, copy_last
    from vlwm.eval.run import eval_dataset, evaluate, summary_line, true_frames

    root = write_data(tmp_path / "data", instances=True)
    cfg = tiny_config(root)
    out = tmp_path / "eval"
    res = evaluate(cfg, checkpoint, out, split="val", progress=False)
    gt = res["vpq_ground_truth"]
    assert gt["instances"] == "simulator_instances" and gt["windows"]["simulator_instances"] == res["num_windows"] > 0
    assert gt["windows"]["connected_components"] == 0
    stored = json.loads((out / "metrics.json").read_text())
    entries = {"model": stored["model"], **stored["baselines"]}
    assert set(entries) == set(ENTRIES)
    for name, e in entries.items():
        v = e["vpq"]
        assert v["num_samples"] == res["num_windows"], name
        assert v["true_positives"] + v["false_negatives"] > 0, name      # the car is in the true futures
        assert v["vpq"] is not None and 0.0 <= v["vpq"] <= 1.0, name
        assert set(v["groups"]) == {"drone", "rover"}, name
    table = (out / "metrics.md").read_text()
    assert "VPQ (%)" in table and "simulator's instance ids" in table
    assert "VPQ" in summary_line(res)

    # copy_last's VPQ equals VPQMetric run directly on the same windows with the dataset's instances
    dataset = eval_dataset(cfg, "val", instances=True)
    metric = None
    for batch in DataLoader(dataset, batch_size=1, collate_fn=collate_fn):
        target = batch["future_occupancy"].long()
        metric = metric or VPQMetric(target.shape[1], cfg.grid)
        assert bool(batch["instances_valid"].all())
        metric.update(copy_last(batch["history_occupancy"].long(), target.shape[1]), target,
                      gt_instance=batch["future_instances"], frames=true_frames(batch, 0)[None],
                      group=list(batch["agent_type"]))
    direct = metric.compute()
    got = stored["baselines"]["copy_last"]["vpq"]
    assert got["vpq"] == pytest.approx(direct.vpq)
    assert (got["true_positives"], got["false_positives"], got["false_negatives"]) == \
        (direct.true_positives, direct.false_positives, direct.false_negatives)


def test_vpq_falls_back_to_connected_components_and_shows_nan_as_a_dash(tmp_path, checkpoint):
    from vlwm.eval.run import evaluate

    root = write_data(tmp_path / "data", instances=False, dynamic=False)      # old files, nothing dynamic
    res = evaluate(tiny_config(root), checkpoint, tmp_path / "eval", split="val", progress=False)
    assert res["vpq_ground_truth"]["instances"] == "connected_components"
    stored = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for name in ("copy_last", "ego_warp_true", "ego_warp_pred"):         # nothing dynamic anywhere: NaN -> null
        v = stored["baselines"][name]["vpq"]
        assert v["vpq"] is None and v["true_positives"] + v["false_positives"] + v["false_negatives"] == 0
    rows = {line.split("|")[1].strip(): line.split("|") for line in
            (tmp_path / "eval" / "metrics.md").read_text().splitlines() if line.startswith("| ")}
    column = rows["method"].index(" VPQ (%) ")
    assert all(rows[name][column].strip() == "–" for name in ("copy_last", "ego_warp_true", "ego_warp_pred"))
