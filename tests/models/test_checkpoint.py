"""Loading official checkpoints: safe reading, strict matching, and reports that say what is wrong."""

from dataclasses import replace

import pytest
import torch

from vlwm.models import (CheckpointMismatchError, build_vqvae, build_world_model, load_official_checkpoint,
                         load_state_dict_checked, read_checkpoint)
from vlwm.models.checkpoint import compare_state_dict, official_state_dict, sub_state_dict
from vlwm.models.official_config import vae_config_from_official, world_model_config_from_official


@pytest.fixture(scope="module")
def vae_cfg(vae_fixture):
    return vae_config_from_official(vae_fixture["config"])


def test_official_training_checkpoint_loads_strictly(reference_dir, vae_cfg):
    """``ckpt_small_vqvae_epoch_1.pth`` is a real train.py checkpoint (after one AdamW step)."""
    path = reference_dir / "ckpt_small_vqvae_epoch_1.pth"
    ckpt = read_checkpoint(path)                                   # weights_only=True
    assert {"state_dict", "optimizer", "scheduler", "epoch", "global_iter"} <= set(ckpt)
    model = build_vqvae(vae_cfg)
    report = load_official_checkpoint(model, path)
    assert report.ok and len(report.loaded) == 222
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][key])
    # The optimizer state is indexed by parameter order: ours is the official one.
    state = ckpt["optimizer"]["state"]
    for index, param in enumerate(model.parameters()):
        assert state[index]["exp_avg"].shape == param.shape


def test_depth_mismatch_is_reported_with_the_fix(vae_fixture, vae_cfg):
    model = build_vqvae(replace(vae_cfg, depth=121))
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_checked(model, vae_fixture["state_dict"], source="vae_small")
    report = err.value.report
    assert not report.missing and not report.unexpected
    assert {k for k, _, _ in report.mismatched} == {"encoder.conv_in.weight", "decoder.conv_out.weight",
                                                    "decoder.conv_out.bias"}
    assert ("encoder.conv_in.weight", (16, 128, 3, 3), (16, 968, 3, 3)) in report.mismatched
    assert "adapt_depth" in str(err.value)
    # Nothing was loaded: the model keeps its own initialisation.
    assert not torch.equal(model.state_dict()["class_embeds.weight"], vae_fixture["state_dict"]["class_embeds.weight"])


def test_token_grid_mismatch_names_the_layernorms(wm_fixture):
    cfg = world_model_config_from_official(wm_fixture["config"])
    t = cfg.transformer
    grid = replace(cfg, vae=replace(cfg.vae, resolution=48), transformer=replace(t, img_shape=(t.img_shape[0], 12, 12)))
    with pytest.raises(CheckpointMismatchError, match="token grid"):
        load_state_dict_checked(build_world_model(grid), wm_fixture["state_dict"])


def test_vae_checkpoint_into_world_model_and_back(wm_fixture, vae_fixture, vae_cfg):
    world = build_world_model(world_model_config_from_official(wm_fixture["config"]))
    with pytest.raises(CheckpointMismatchError, match="load it into model.vae"):
        load_state_dict_checked(world, vae_fixture["state_dict"])
    assert load_state_dict_checked(world.vae, vae_fixture["state_dict"]).ok      # official stage-2 load_from
    vae = build_vqvae(vae_cfg)
    with pytest.raises(CheckpointMismatchError, match="sub_state_dict"):
        load_state_dict_checked(vae, wm_fixture["state_dict"])
    assert load_state_dict_checked(vae, sub_state_dict(wm_fixture["state_dict"], "vae.")).ok


def test_non_strict_load_returns_and_warns_the_report(vae_fixture, vae_cfg):
    model = build_vqvae(replace(vae_cfg, depth=8))
    sd = dict(vae_fixture["state_dict"])
    sd["extra.weight"] = torch.zeros(1)
    del sd["class_embeds.weight"]
    with pytest.warns(UserWarning, match="partial load"):
        report = load_state_dict_checked(model, sd, strict=False)
    assert report.missing == ["class_embeds.weight"] and report.unexpected == ["extra.weight"]
    assert len(report.mismatched) == 3 and len(report.loaded) == 222 - 4
    assert torch.equal(model.state_dict()["vqvae.embedding.weight"], sd["vqvae.embedding.weight"])
    assert compare_state_dict(model, sd).loaded == report.loaded


def test_ddp_prefix_and_bare_state_dicts(tmp_path, vae_fixture, vae_cfg):
    sd = vae_fixture["state_dict"]
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "ddp.pth")
    torch.save(dict(sd), tmp_path / "bare.pth")
    for name in ("ddp.pth", "bare.pth"):
        report = load_official_checkpoint(build_vqvae(vae_cfg), tmp_path / name)
        assert report.ok
    assert any("module." in note for note in load_official_checkpoint(build_vqvae(vae_cfg), tmp_path / "ddp.pth").notes)


class _Payload:
    """A Python object that safe loading must refuse."""


def test_unsafe_and_malformed_files_are_refused(tmp_path):
    torch.save({"state_dict": {}, "payload": _Payload()}, tmp_path / "unsafe.pth")
    with pytest.raises(ValueError, match="weights_only"):
        read_checkpoint(tmp_path / "unsafe.pth")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        official_state_dict({"epoch": 3, "weights": torch.zeros(1)})
