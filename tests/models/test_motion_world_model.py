"""The motion-aware world model: shapes, the exact prior at initialisation, pose head, rollouts,
checkpoints, configs, execution options, loss."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from vlwm.eval.baselines import ego_warp as eval_ego_warp
from vlwm.models.ego_warp import compose, relative
from vlwm.models.motion_checkpoint import MotionCheckpointError, load_motion_checkpoint, save_motion_checkpoint
from vlwm.models.motion_config import (MotionLossConfig, MotionWorldModelConfig, PoseHeadConfig,
                                       aerial_motion_world_model_config, small_motion_world_model_config)
from vlwm.models.motion_losses import motion_world_model_loss
from vlwm.models.motion_world_model import build_motion_world_model

TINY = MotionWorldModelConfig(point_cloud_range=(-6.4, -4.8, -1.0, 6.4, 4.8, 3.0), voxel_size=(0.8, 0.8, 1.0),
                              history_frames=3, future_frames=4, class_embed_dim=2, frame_channels=4,
                              channels=(8, 16), cond_dim=8, pose=PoseHeadConfig(hidden=8))   # 16 x 12 x 4


def _inputs(cfg: MotionWorldModelConfig, batch: int, seed: int):
    """Random ids, history frames on a turning constant-velocity path, true future frames."""
    g = torch.Generator().manual_seed(seed)
    occ = torch.randint(0, cfg.num_classes, (batch, cfg.history_frames, *cfg.grid_shape), generator=g).to(torch.uint8)
    step = torch.tensor([1.3, 0.4, 0.0, 0.15], dtype=torch.float64) * (1 + torch.rand(batch, 1, generator=g,
                                                                                       dtype=torch.float64))
    n = cfg.history_frames + cfg.future_frames
    poses = [torch.zeros(batch, 4, dtype=torch.float64)]
    for _ in range(n - 1):
        poses.append(compose(poses[-1], step))
    poses = torch.stack(poses, dim=1)                                        # (B, n, 4) in frame 0
    ref = poses[:, cfg.history_frames - 1:cfg.history_frames]
    frames = relative(ref, poses)
    frames[:, cfg.history_frames - 1] = 0.0                                  # exactly the identity
    return occ, frames[:, :cfg.history_frames], frames[:, cfg.history_frames:]


def test_shapes_and_initial_prior_is_exact():
    torch.manual_seed(0)
    model = build_motion_world_model(TINY)
    occ, hist, fut = _inputs(TINY, 2, 1)
    x, y, z = TINY.grid_shape
    for given in (fut, None):
        out = model(occ, hist, given)
        assert out.logits.shape == (2, 4, x, y, z, 18) and out.logits.dtype == torch.float32
        assert out.prior.shape == (2, 4, x, y, z) and out.frames.shape == out.pred_frames.shape == (2, 4, 4)
        # At initialisation the forecast is the physics prior, which is exactly the eval baseline.
        assert torch.equal(out.sem_pred, out.prior)
        assert torch.equal(out.prior, eval_ego_warp(occ[:, -1].long(), out.frames, TINY.spec))
    assert torch.equal(model(occ, hist, fut).frames, fut)
    part = model(occ, hist, fut, steps=[1, 3])
    assert part.logits.shape == (2, 2, x, y, z, 18)
    assert torch.equal(part.prior, model(occ, hist, fut).prior[:, [1, 3]])


def test_pose_head_starts_at_constant_velocity():
    model = build_motion_world_model(TINY)
    _, hist, fut = _inputs(TINY, 3, 2)
    assert torch.allclose(model.pose_head(hist), fut, rtol=0, atol=1e-9)


def test_bad_inputs_name_the_problem():
    model = build_motion_world_model(TINY)
    occ, hist, fut = _inputs(TINY, 1, 3)
    with pytest.raises(ValueError, match="history_occ"):
        model(occ[:, 1:], hist, fut)
    with pytest.raises(ValueError, match="future_frames"):
        model(occ, hist, fut[:, :2])
    with pytest.raises(ValueError, match="steps"):
        model(occ, hist, fut, steps=[4])


def test_rollout_along_a_plan_and_own_motion():
    torch.manual_seed(0)
    model = build_motion_world_model(TINY).eval()
    occ, hist, fut = _inputs(TINY, 2, 4)
    plan = torch.cat([fut, compose(fut[:, -1:], fut[:, :3])], dim=1)        # 7 frames: two chained passes
    out = model.rollout(occ, hist, plan)
    assert out.occupancy.shape == (2, 7, *TINY.grid_shape)
    assert torch.allclose(out.frames, plan, rtol=0, atol=1e-9)
    # The first pass is the forward pass: at initialisation the prior of the planned frames.
    assert torch.equal(out.occupancy[:, :4], eval_ego_warp(occ[:, -1].long(), plan[:, :4], TINY.spec))
    own = model.rollout(occ, hist, None, num_steps=6)
    assert own.occupancy.shape == (2, 6, *TINY.grid_shape)
    assert torch.allclose(own.frames[:, :4], model.pose_head(hist), rtol=0, atol=1e-9)


def test_checkpoint_round_trip_with_config(tmp_path):
    torch.manual_seed(0)
    model = build_motion_world_model(TINY)
    with torch.no_grad():
        model.head.weight.normal_()                                          # make the residual non-zero
    occ, hist, fut = _inputs(TINY, 1, 5)
    path = save_motion_checkpoint(model, tmp_path / "m.pt", extra={"step": 7})
    loaded, extra = load_motion_checkpoint(path)
    assert loaded.cfg == TINY and extra == {"step": 7}
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert torch.equal(loaded(occ, hist, fut).logits, model(occ, hist, fut).logits)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(MotionCheckpointError, match="not a motion-world-model checkpoint"):
        load_motion_checkpoint(tmp_path / "other.pt")
    with pytest.raises(MotionCheckpointError, match="no such checkpoint"):
        load_motion_checkpoint(tmp_path / "missing.pt")


def test_config_dict_round_trip_and_unknown_keys():
    d = TINY.to_dict()
    assert MotionWorldModelConfig.from_dict(d) == TINY
    with pytest.raises(ValueError, match="unknown keys \\['chanels'\\]"):
        MotionWorldModelConfig.from_dict({**d, "chanels": [8]})
    with pytest.raises(ValueError, match="pose: unknown keys"):
        MotionWorldModelConfig.from_dict({**d, "pose": {"hiden": 3}})
    with pytest.raises(ValueError, match="prior_logit_init"):
        replace(TINY, prior_logit_init=0.0).validate()


def test_presets():
    from vlwm.demo import DEMO_RANGE, DEMO_VOXEL
    small = small_motion_world_model_config()
    assert small.spec.point_cloud_range == DEMO_RANGE and small.spec.voxel_size == DEMO_VOXEL
    assert small.grid_shape == (40, 40, 20) and (small.history_frames, small.future_frames) == (4, 6)
    aerial = aerial_motion_world_model_config()
    assert aerial.grid_shape == (200, 200, 121)
    model = build_motion_world_model(aerial)                                 # builds; no forward at this size here
    assert model.head.out_channels == 18 * 121


def test_checkpointing_gives_the_same_numbers():
    occ, hist, fut = _inputs(TINY, 2, 6)
    target = torch.randint(0, 18, (2, 4, *TINY.grid_shape), generator=torch.Generator().manual_seed(0))
    grads = []
    for use in (False, True):
        torch.manual_seed(0)
        model = build_motion_world_model(replace(TINY, use_checkpoint=use))
        with torch.no_grad():
            model.head.weight.normal_(std=0.1)
        loss = motion_world_model_loss(model(occ, hist, fut), target, fut)
        loss.total.backward()
        grads.append((loss.total.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)      # recomputation: same kernels, same inputs


def test_autocast_keeps_the_prior_and_float32_logits():
    torch.manual_seed(0)
    model = build_motion_world_model(TINY)
    occ, hist, fut = _inputs(TINY, 1, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(occ, hist, fut)
    assert out.logits.dtype == torch.float32
    assert torch.equal(out.sem_pred, out.prior)


def test_loss_terms():
    torch.manual_seed(0)
    model = build_motion_world_model(TINY)
    with torch.no_grad():
        model.head.weight.normal_(std=0.5)
    occ, hist, fut = _inputs(TINY, 2, 8)
    target = torch.randint(0, 18, (2, 4, *TINY.grid_shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(occ, hist, fut)
    plain = motion_world_model_loss(out, target, fut)
    ref = torch.nn.functional.cross_entropy(out.logits.double().reshape(-1, 18), target.reshape(-1))
    assert math.isclose(float(plain.ce), float(ref), rel_tol=1e-5)       # float32 sums of ~2e4 terms
    assert torch.equal(plain.ce, motion_world_model_loss(out, target, fut, MotionLossConfig(class_weights=(1.0,) * 18)).ce)
    changed = (target != out.prior).double()
    per = torch.nn.functional.cross_entropy(out.logits.double().reshape(-1, 18), target.reshape(-1), reduction="none")
    w = 1 + 2 * changed.reshape(-1)
    weighted = motion_world_model_loss(out, target, fut, MotionLossConfig(changed_weight=3.0))
    assert math.isclose(float(weighted.ce), float((per * w).sum() / w.sum()), rel_tol=1e-5)
    assert float(plain.pose) > 0 and float(motion_world_model_loss(out, target, None).pose) == 0.0
    with pytest.raises(ValueError, match="class_weights"):
        motion_world_model_loss(out, target, fut, MotionLossConfig(class_weights=(1.0,) * 3))
