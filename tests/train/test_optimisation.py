"""Overfitting, freezing, the LR schedule, accumulation and mixed precision."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from vlwm.data.dataset import collate_fn
from vlwm.data.mixing import build_dataset
from vlwm.models import build_vqvae, build_world_model
from vlwm.train.config import load_config
from vlwm.train.engine import train
from vlwm.train.optim import lr_factor
from vlwm.train.step import TrainStep, apply_trainable, batch_inputs, trainable_parts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(name, tiny_data, **extra):
    return load_config(os.path.join(REPO, f"config/{name}.py"), {"data_root": str(tiny_data), **extra})[0]


def _batch(cfg):
    ds = build_dataset(cfg.dataset_dict("train"))
    return collate_fn([ds[0]])


@pytest.mark.parametrize("name", ["tiny_vqvae", "tiny_occworld"])
def test_overfits_one_batch(name, tiny_data):
    cfg = _cfg(name, tiny_data)
    torch.manual_seed(0)
    model = (build_vqvae if cfg.stage == "vqvae" else build_world_model)(cfg.model_config())
    parts = ("vae",) if cfg.stage == "vqvae" else ("transformer", "pose")
    apply_trainable(model, parts, cfg.stage)
    step = TrainStep(model, cfg)
    occ, rel, mode = batch_inputs(_batch(cfg), cfg, torch.device("cpu"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(60):
        total, _ = step(occ, rel, mode)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.35 * losses[0], losses[::10]


def _prefixes(model):
    return {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("vae.") else "")
            for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_flags_freeze_exactly_the_intended_parts(tiny_data):
    cfg = _cfg("tiny_occworld", tiny_data)
    model = build_world_model(cfg.model_config())
    cases = {
        (True, False, False): {"transformer", "pose_encoder", "pose_decoder"},     # the default (official)
        (True, True, False): {"pose_encoder", "pose_decoder"},                     # strategy B
        (False, False, False): {"transformer", "pose_encoder", "pose_decoder", "vae.encoder", "vae.decoder",
                                "vae.class_embeds", "vae.vqvae"},                  # strategy A
        (True, False, True): {"transformer"},
    }
    for (fv, ft, fp), expected in cases.items():
        c = _cfg("tiny_occworld", tiny_data, **{"model.freeze_vae": fv, "model.freeze_transformer": ft,
                                                "model.freeze_pose": fp})
        apply_trainable(model, trainable_parts(c, 0), c.stage)
        assert _prefixes(model) == expected, (fv, ft, fp)
        n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        n_expected = sum(p.numel() for n, p in model.named_parameters()
                         if not any(n.startswith(e + ".") for e in expected))
        assert n_frozen == n_expected


def test_progressive_unfreezing_schedule(tiny_data):
    sched = [dict(epoch=1, trainable=["pose"]), dict(epoch=11, trainable=["pose", "transformer"]),
             dict(epoch=31, trainable=["pose", "transformer", "vae_decoder"])]
    cfg = _cfg("tiny_occworld", tiny_data, unfreeze_schedule=sched, max_epochs=50)
    model = build_world_model(cfg.model_config())
    expect = {0: {"pose_encoder", "pose_decoder"}, 9: {"pose_encoder", "pose_decoder"},
              10: {"pose_encoder", "pose_decoder", "transformer"},
              30: {"pose_encoder", "pose_decoder", "transformer", "vae.decoder"}, 49: None}
    for epoch, want in expect.items():
        apply_trainable(model, trainable_parts(cfg, epoch), cfg.stage)
        assert _prefixes(model) == (want or expect[30]), epoch


def test_frozen_parameters_do_not_change_in_training(tiny_data, tmp_path):
    cfg = _cfg("tiny_occworld", tiny_data, max_epochs=1, frame_skip=9, **{"evaluation.interval": 0,
                                                                          "model.freeze_transformer": True})
    torch.manual_seed(cfg.seed)
    before = build_world_model(cfg.model_config()).state_dict()
    model = train(cfg, tmp_path / "run").model
    for name, value in model.state_dict().items():
        same = torch.equal(value, before[name])
        assert same == (not name.startswith("pose_")), name


def test_lr_schedule_warmup_then_cosine():
    f = [lr_factor(i, 100, 10, 1e-3, 1e-6, 1e-4) * 1e-3 for i in range(101)]
    assert f[0] == pytest.approx(1e-4) and f[10] == pytest.approx(1e-3 * 0.5 * (1 + torch.cos(torch.tensor(0.1 * 3.14159265)).item()), rel=1e-4)
    assert all(a < b for a, b in zip(f[:10], f[1:11]))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[100] == pytest.approx(1e-6)


def test_accumulation_and_bf16_run(tiny_data, tmp_path, read_scalars):
    cfg = _cfg("tiny_vqvae", tiny_data, max_epochs=1, frame_skip=6, accumulate_steps=2, bf16=True,
               **{"evaluation.interval": 0})
    summary = train(cfg, tmp_path / "run")
    rows = read_scalars(tmp_path / "run")
    n_batches = 6                                             # 2 sequences x 3 windows
    assert max(rows) == n_batches // 2
    assert all(math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"]) for row in rows.values()), rows
    assert math.isfinite(summary.last["loss"])


def _first_step_gradient(cfg, work_dir) -> torch.Tensor:
    """Run ``train(cfg)`` (the engine's own accumulation loop) and return the gradient the optimiser
    saw at its first step, flattened (float64), read by a global optimizer step pre-hook."""
    seen = []

    def hook(optimizer, args, kwargs):
        if not seen:
            seen.append(torch.cat([p.grad.detach().double().flatten() for group in optimizer.param_groups
                                   for p in group["params"] if p.grad is not None]))

    handle = register_optimizer_step_pre_hook(hook)
    try:
        train(cfg, work_dir)
    finally:
        handle.remove()
    return seen[0]


def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(tiny_data, tmp_path):
    """``accumulate_steps = 2`` with batches of 2 gives the optimiser the gradient of one batch of 4.

    The losses are means over windows (and tokens), so the mean over a batch of 4 equals the mean
    of two micro-batch means; the engine divides each micro-batch loss by ``accumulate_steps``
    (an exact power of two) and sums the gradients.  Only the float32 rounding differs (another
    summation order and batch blocking in the kernels): ~u = 6e-8 relative, amplified by the
    conditioning of the freshly initialised transformer (≤ ~10³, see tests/models) to ≤ 1e-4.
    A broken accumulation — gradients zeroed between micro-batches, a micro-batch dropped, the
    1/k missing or doubled — gives the gradient of other windows or a multiple of it: the test
    checks that such a gradient (one micro-batch alone) is ≥ 10x farther than the tolerance.
    """
    quick = dict(max_epochs=1, frame_skip=9, **{"evaluation.interval": 0})
    accumulated = _first_step_gradient(_cfg("tiny_occworld", tiny_data, batch_size=2, accumulate_steps=2, **quick),
                                       tmp_path / "accumulated")
    large = _first_step_gradient(_cfg("tiny_occworld", tiny_data, batch_size=4, accumulate_steps=1, **quick),
                                 tmp_path / "large")
    micro = _first_step_gradient(_cfg("tiny_occworld", tiny_data, batch_size=2, accumulate_steps=1, **quick),
                                 tmp_path / "micro")
    assert accumulated.shape == large.shape == micro.shape
    assert torch.isfinite(large).all() and large.norm() > 0
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()             # noqa: E731
    tol = 1e-4
    assert rel(accumulated, large) <= tol
    assert rel(micro, large) >= 10 * tol          # the tolerance tells a broken accumulation apart


def test_fp16_checkpointing_and_decoder_unfreezing_run(tiny_data, tmp_path, read_scalars):
    sched = [dict(epoch=1, trainable=["pose", "vae_decoder"])]
    cfg = _cfg("tiny_occworld", tiny_data, max_epochs=1, frame_skip=9, fp16={"loss_scale": "dynamic"},
               unfreeze_schedule=sched, **{"model.use_checkpoint": True, "evaluation.interval": 1})
    torch.manual_seed(cfg.seed)
    before = build_world_model(cfg.model_config()).state_dict()
    summary = train(cfg, tmp_path / "run")
    assert "loss_vae" in summary.last                         # the decoder gets a loss while it trains
    after = summary.model.state_dict()
    changed = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("vae.") else "")
               for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"pose_encoder", "pose_decoder", "vae.decoder"}
    from vlwm.models import read_checkpoint
    ckpt = read_checkpoint(tmp_path / "run" / "latest.pth")
    assert ckpt["scaler"] and "scale" in ckpt["scaler"]
    assert "miou" in summary.val and "miou_0" in summary.val
