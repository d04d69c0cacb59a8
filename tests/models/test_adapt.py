"""Adapting official weights: height levels (``adapt_depth``) and drone poses (``extend_pose_inputs``)."""

from dataclasses import replace

import pytest
import torch

from vlwm.models import (PoseConfig, adapt_depth, build_from_official_config, build_vqvae, build_world_model,
                         extend_pose_inputs, load_state_dict_checked, poses_from_metas)
from vlwm.models.adapt import level_overlap
from vlwm.models.official_config import vae_config_from_official, world_model_config_from_official

DEPTH_KEYS = {"encoder.conv_in.weight", "decoder.conv_out.weight", "decoder.conv_out.bias"}


def _vae(fx, depth=None):
    cfg = vae_config_from_official(fx["config"])
    return build_vqvae(cfg if depth is None else replace(cfg, depth=depth))


def _height_constant_scene(depth: int, seed: int = 0) -> torch.Tensor:
    """(1, 1, 40, 40, depth) int64: random classes per column, the same at every height."""
    columns = torch.randint(0, 18, (1, 1, 40, 40, 1), generator=torch.Generator().manual_seed(seed))
    return columns.expand(-1, -1, -1, -1, depth).contiguous()


def test_level_overlap_partitions_the_height():
    o = level_overlap(16, 121)
    assert o.shape == (121, 16)
    assert torch.allclose(o.sum(0), torch.full((16,), 1 / 16, dtype=torch.float64))
    assert torch.allclose(o.sum(1), torch.full((121,), 1 / 121, dtype=torch.float64))
    assert torch.allclose(level_overlap(16, 16), torch.eye(16, dtype=torch.float64) / 16)


def test_adapt_depth_to_121_levels_loads_strictly_and_touches_only_three_tensors(vae_fixture):
    sd = vae_fixture["state_dict"]
    adapted, report = adapt_depth(sd, depth=121)
    assert set(report.keys) == DEPTH_KEYS
    assert adapted["encoder.conv_in.weight"].shape == (16, 121 * 8, 3, 3)
    assert adapted["decoder.conv_out.weight"].shape == (121 * 8, 16, 3, 3)
    assert adapted["decoder.conv_out.bias"].shape == (121 * 8,)
    assert all(adapted[k] is sd[k] for k in sd if k not in DEPTH_KEYS)
    model = _vae(vae_fixture, depth=121)
    assert load_state_dict_checked(model, adapted, strict=True).ok
    assert "adapted" in str(report) and "121" in str(report)


def test_adapt_depth_to_same_depth_is_identity(vae_fixture):
    sd = vae_fixture["state_dict"]
    adapted, _ = adapt_depth(sd, depth=16)
    for key in DEPTH_KEYS:
        assert torch.allclose(adapted[key], sd[key], atol=1e-7), key


@pytest.mark.parametrize("depth", [121, 8])
def test_adapted_model_reproduces_height_constant_scenes(vae_fixture, depth):
    """A scene whose classes do not change with height: the adapted encoder gives the original
    latents (mass-preserving input side), and the adapted decoder gives every new level the
    overlap-weighted mean of the original levels' logits (here: the same logits at every height)."""
    original = _vae(vae_fixture).eval()
    original.load_state_dict(vae_fixture["state_dict"])
    adapted = _vae(vae_fixture, depth=depth).eval()
    adapted.load_state_dict(adapt_depth(vae_fixture["state_dict"], depth)[0])
    with torch.no_grad():
        z16, sizes = original.encode(_height_constant_scene(16))
        z_new, _ = adapted.encode(_height_constant_scene(depth))
        assert (z_new - z16).abs().max() <= 1e-4 * z16.abs().max()
        zq = original.vqvae(z16).z_q
        logits16 = original.decode(zq, sizes, 1)                       # (1, 1, 40, 40, 16, 18)
        logits_new = adapted.decode(zq, sizes, 1)                      # (1, 1, 40, 40, depth, 18)
    average = (level_overlap(16, depth) * depth).float()               # (depth, 16), rows sum to 1
    expected = torch.einsum("ji,bfhwic->bfhwjc", average, logits16)
    assert (logits_new - expected).abs().max() <= 1e-4 * logits16.abs().max()


def test_adapt_depth_finds_the_vae_inside_a_world_model(wm_fixture):
    adapted, report = adapt_depth(wm_fixture["state_dict"], depth=24)
    assert set(report.keys) == {"vae." + k for k in DEPTH_KEYS}
    cfg = world_model_config_from_official(wm_fixture["config"])
    model = build_world_model(replace(cfg, vae=replace(cfg.vae, depth=24)))
    assert load_state_dict_checked(model, adapted, strict=True).ok


# ---- drone poses --------------------------------------------------------------------------------


def _drone_world_model(wm_fixture):
    cfg = world_model_config_from_official(wm_fixture["config"])
    return build_world_model(replace(cfg, pose=replace(cfg.pose, motion_dims=4)))


def test_extend_pose_inputs_loads_strictly(wm_fixture):
    sd = wm_fixture["state_dict"]
    extended, report = extend_pose_inputs(sd, motion_dims=4)
    assert set(report.keys) == {"pose_encoder.pose_encoder.0.weight", "pose_decoder.pose_decoder.2.weight",
                                "pose_decoder.pose_decoder.2.bias"}
    w_old, w_new = sd["pose_encoder.pose_encoder.0.weight"], extended["pose_encoder.pose_encoder.0.weight"]
    assert w_new.shape == (32, 7)
    assert torch.equal(w_new[:, :2], w_old[:, :2]) and torch.equal(w_new[:, 4:], w_old[:, 2:])
    assert not w_new[:, 2:4].any()
    assert load_state_dict_checked(_drone_world_model(wm_fixture), extended, strict=True).ok


def test_extended_model_keeps_pretrained_behaviour(wm_fixture):
    """Whatever dz / dyaw it is given, the extended model predicts what the 2-d model predicts,
    with dz = dyaw = 0."""
    original = build_from_official_config(wm_fixture["config"]).eval()
    original.load_state_dict(wm_fixture["state_dict"])
    drone = _drone_world_model(wm_fixture).eval()
    drone.load_state_dict(extend_pose_inputs(wm_fixture["state_dict"], motion_dims=4)[0])
    x = wm_fixture["inputs"]["x"].long()
    rel, mode = poses_from_metas(wm_fixture["inputs"]["metas"])
    extra = torch.randn(1, 16, 2, generator=torch.Generator().manual_seed(5))    # dz [m], dyaw [rad]
    rel4 = torch.cat([rel, extra], dim=-1)
    with torch.no_grad():
        a, b = original(x, rel, mode), drone(x, rel4, mode)
        ra = original.rollout(x[:, :12], rel[:, :12], mode[:, :12])
        rb = drone.rollout(x[:, :12], rel4[:, :12], mode[:, :12])
    assert torch.allclose(b.code_logits, a.code_logits, atol=1e-5)
    assert torch.allclose(b.pose_decoded[..., :2], a.pose_decoded, atol=1e-5)
    assert not b.pose_decoded[..., 2:].any()
    assert torch.equal(rb.sem_pred, ra.sem_pred)
    assert torch.allclose(rb.poses[..., :2], ra.poses, atol=1e-5)
    assert not rb.poses[..., 2:].any()


def test_drone_model_rejects_2d_poses_with_a_hint(wm_fixture):
    drone = _drone_world_model(wm_fixture)
    x = wm_fixture["inputs"]["x"].long()
    rel, mode = poses_from_metas(wm_fixture["inputs"]["metas"])
    with pytest.raises(ValueError, match="dz, dyaw"):
        drone(x, rel, mode)


def test_pose_config_motion_dims_sets_head_sizes():
    assert PoseConfig(motion_dims=4).in_channels == 7
