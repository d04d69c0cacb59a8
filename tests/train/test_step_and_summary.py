"""Named loss weights, one forward per validation batch, the validation metric, and the typed summary."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch

from vlwm.data.dataset import collate_fn
from vlwm.data.mixing import build_dataset
from vlwm.eval import OccForecastMetric
from vlwm.gt.bev import bev_image
from vlwm.labels import FREE, NUM_OCC_CLASSES
from vlwm.models import VAELossWeights, WorldModelLossWeights, build_vqvae, build_world_model, vae_loss
from vlwm.train.config import ConfigError, load_config
from vlwm.train.engine import StopFlag, StopReason, TrainSummary, train
from vlwm.train.step import TrainStep, apply_trainable, batch_inputs, model_forward, predictions
from vlwm.train.validation import ForecastIoU, bev_pair, validate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(name, tiny_data, **extra):
    return load_config(os.path.join(REPO, f"config/{name}.py"), {"data_root": str(tiny_data), **extra})[0]


def _model(cfg):
    torch.manual_seed(0)
    return (build_vqvae if cfg.stage == "vqvae" else build_world_model)(cfg.model_config())


def _inputs(cfg):
    batch = collate_fn([build_dataset(cfg.dataset_dict("train"))[0]])
    return batch_inputs(batch, cfg, torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# Loss weights by name
# ---------------------------------------------------------------------------------------------


def test_loss_weights_are_named_dataclasses_with_the_official_defaults(tiny_data):
    vq, wm = _cfg("tiny_vqvae", tiny_data), _cfg("tiny_occworld", tiny_data)
    assert vq.model.loss_weights == VAELossWeights(recon=10.0, lovasz=1.0, embed=1.0)
    assert wm.model.loss_weights == WorldModelLossWeights(ce=1.0, plan_reg=0.1)
    assert vq.to_dict()["model"]["loss_weights"] == {"recon": 10.0, "lovasz": 1.0, "embed": 1.0}


def test_each_named_vae_weight_scales_its_own_term(tiny_data):
    cfg = _cfg("tiny_vqvae", tiny_data, **{"model.loss_weights": {"recon": 2.0, "lovasz": 0.0, "embed": 3.0}})
    model = _model(cfg)
    total, terms = TrainStep(model, cfg)(*_inputs(cfg))
    expected = 2.0 * terms["loss_recon"] + 3.0 * terms["loss_embed"]
    assert terms["loss_lovasz"] > 0 and torch.allclose(total, expected, rtol=1e-6, atol=0)


def test_world_model_weights_and_the_vae_term_use_their_names(tiny_data):
    opts = {"model.loss_weights": {"ce": 0.5, "plan_reg": 2.0}, "model.freeze_vae": False,
            "model.vae_loss_weight": 0.25, "model.vae.loss_weights": {"recon": 1.0, "lovasz": 0.0, "embed": 0.0}}
    cfg = _cfg("tiny_occworld", tiny_data, **opts)
    model = _model(cfg)
    apply_trainable(model, ("vae", "transformer", "pose"), cfg.stage)
    occ, rel, mode = _inputs(cfg)
    total, terms = TrainStep(model, cfg)(occ, rel, mode)
    recon_only = vae_loss(model.vae(occ), occ, VAELossWeights(recon=1.0, lovasz=0.0, embed=0.0))
    assert torch.equal(terms["loss_vae"], recon_only.total) and torch.equal(recon_only.total, recon_only.recon)
    expected = 0.5 * terms["loss_ce"] + 2.0 * terms["loss_plan_reg"] + 0.25 * terms["loss_vae"]
    assert torch.allclose(total, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("value, needle", [
    ((10.0, 1.0, 1.0), "model.loss_weights must be a dict with the keys ['recon', 'lovasz', 'embed']"),
    ({"recon": 1.0, "lovas": 1.0}, "unknown key 'lovas' (did you mean 'lovasz'?)"),
])
def test_positional_or_misspelt_loss_weights_are_config_errors(tiny_data, value, needle):
    with pytest.raises(ConfigError) as err:
        _cfg("tiny_vqvae", tiny_data, **{"model.loss_weights": value})
    assert needle in str(err.value) and "tiny_vqvae.py" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, extra", [("tiny_vqvae", {}), ("tiny_occworld", {"model.freeze_vae": False})])
def test_validate_runs_one_forward_per_batch_and_reports_the_eval_metric(name, extra, tiny_data):
    cfg = _cfg(name, tiny_data, batch_size=1, **extra)
    model = _model(cfg)
    apply_trainable(model, ("vae", "transformer", "pose") if cfg.stage != "vqvae" else ("vae",), cfg.stage)
    val_set = build_dataset(cfg.dataset_dict("val"))
    calls = []
    handle = model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        res, image = validate(model, val_set, cfg, torch.device("cpu"))
    finally:
        handle.remove()
    n_batches = math.ceil(len(val_set) / cfg.batch_size)
    assert n_batches >= 2 and len(calls) == n_batches and sum(calls) == len(val_set)
    assert model.training                                            # back in training mode
    assert set(res) >= {"miou", "iou", "miou_0", "iou_0"} and image.dtype == np.uint8 and image.shape[0] == 3
    if cfg.stage != "vqvae":
        assert "loss_vae" in res and "loss_ce" in res

    # The same numbers as the evaluation metric on the same predictions.
    metric = None
    model.eval()
    with torch.no_grad():
        for i in range(0, len(val_set), cfg.batch_size):
            batch = collate_fn([val_set[j] for j in range(i, min(i + cfg.batch_size, len(val_set)))])
            occ, rel, mode = batch_inputs(batch, cfg, torch.device("cpu"))
            pred, target = predictions(cfg, model_forward(model, cfg, occ, rel, mode, decode=True), occ)
            metric = metric or OccForecastMetric(target.shape[1])
            metric.update(pred, target)
    ref = metric.compute()
    assert [res[f"miou_{t}"] for t in range(len(ref.miou))] == ref.miou
    assert [res[f"iou_{t}"] for t in range(len(ref.iou))] == ref.iou
    assert {h: res[f"miou_at_{h}"] for h in ref.miou_at} == ref.miou_at


def test_forecast_iou_matches_the_eval_metric_on_random_labels():
    g = torch.Generator().manual_seed(0)
    metric, ours = OccForecastMetric(6), ForecastIoU(6)
    for _ in range(3):
        target = torch.randint(0, NUM_OCC_CLASSES, (2, 6, 5, 4, 3), generator=g)
        pred = torch.where(torch.rand(target.shape, generator=g) < 0.6, target,
                           torch.randint(0, NUM_OCC_CLASSES, target.shape, generator=g))
        target[:, :, 0] = FREE
        metric.update(pred, target)
        ours.update(pred, target)
    ref, res = metric.compute(), ours.scalars()
    assert [res[f"miou_{t}"] for t in range(6)] == ref.miou and [res[f"iou_{t}"] for t in range(6)] == ref.iou
    assert (res["miou_at_1s"], res["iou_at_3s"]) == (ref.miou_at["1s"], ref.iou_at["3s"])
    assert res["miou"] == float(np.mean(ref.miou))
    with pytest.raises(ValueError, match="pred has labels in"):
        ours.update(torch.full((1, 6, 2, 2, 2), NUM_OCC_CLASSES), torch.zeros((1, 6, 2, 2, 2), dtype=torch.long))


def test_bev_pair_is_the_gt_bev_of_target_and_prediction():
    target = torch.full((4, 5, 3), FREE)
    target[1, 2, 2] = 16
    pred = torch.full((4, 5, 3), FREE)
    pred[0, 0, 0] = 4
    img = bev_pair(target, pred)
    assert img.shape == (3, 4, 2 * 5 + 4) and img.dtype == np.uint8
    left = bev_image(target.numpy(), scale=1, height_shading=False).transpose(2, 0, 1)
    right = bev_image(pred.numpy(), scale=1, height_shading=False).transpose(2, 0, 1)
    assert (img[:, :, :5] == left).all() and (img[:, :, 9:] == right).all() and (img[:, :, 5:9] == 128).all()


# ---------------------------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------------------------


def test_train_returns_a_typed_summary(tiny_data, tmp_path, read_scalars):
    cfg = _cfg("tiny_vqvae", tiny_data, max_epochs=1, frame_skip=6)
    summary = train(cfg, tmp_path / "run")
    assert isinstance(summary, TrainSummary)
    assert summary.stopped_by is StopReason.FINISHED and summary.exit_code == 0
    rows = read_scalars(tmp_path / "run")
    assert summary.last == {k: v for k, v in rows[max(rows)].items() if k not in ("tag", "step", "epoch")}
    assert summary.val == {k: v for k, v in read_scalars(tmp_path / "run", "val")[max(rows)].items()
                           if k not in ("tag", "step")}
    assert summary.best_val_miou == summary.val["miou"]
    assert isinstance(summary.model, torch.nn.Module) and summary.model.training


@pytest.mark.parametrize("signum, reason, code", [(signal.SIGTERM, StopReason.SIGTERM, 0),
                                                   (signal.SIGINT, StopReason.SIGINT, 130)])
def test_a_signal_gives_its_stop_reason_and_exit_status(signum, reason, code):
    with StopFlag() as stop:
        assert stop.reason() is StopReason.PEER                      # no signal here: another rank's
        os.kill(os.getpid(), signum)
        assert stop.reason() is reason
    assert signal.getsignal(signum) != stop._handle                  # handlers restored
    assert TrainSummary(torch.nn.Identity(), stop.reason(), float("-inf")).exit_code == code
    assert TrainSummary(torch.nn.Identity(), StopReason.PEER, float("-inf")).exit_code == 130
