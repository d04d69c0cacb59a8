"""Shipped configs, config validation, checkpoint files, official checkpoints and load_from adaptation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.helpers.reference import load_reference
from tests.helpers.shared import REFERENCE, require_path
from vlwm.models import build_vqvae, build_world_model, read_checkpoint, tiny_world_model_config
from vlwm.models.config import PoseConfig
from vlwm.train.checkpoint import load_training_state, load_weights, save_training_checkpoint
from vlwm.train.config import ConfigError, load_config, train_config_from_dict
from vlwm.train.optim import build_optimizer

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["train_vqvae", "train_occworld", "finetune_tokyo", "tokyo_dataset"])
def test_guide_configs_parse_into_the_official_architecture(name):
    cfg, _ = load_config(REPO / "config" / f"{name}.py")
    assert cfg.grid.shape == (200, 200, 121)                  # z [-2, 149.25] at 1.25 m
    model = cfg.model_config()
    vae = model if cfg.stage == "vqvae" else model.vae
    assert (vae.ch, vae.codebook_size, vae.code_dim, vae.depth) == (64, 512, 128, 121)
    if cfg.stage == "world_model":
        assert model.transformer.channels == (128, 256, 512) and model.transformer.temporal_attn_layers == 6
        assert model.transformer.img_shape == (128, 50, 50)


def test_finetune_config_values():
    cfg, _ = load_config(REPO / "config" / "finetune_tokyo.py")
    assert cfg.load_from == "pretrained/occworld/latest.pth"
    assert (cfg.model.freeze_vae, cfg.model.freeze_transformer, cfg.model.freeze_pose) == (True, False, False)
    assert cfg.optimizer.lr == 1e-4 and cfg.max_epochs == 50 and cfg.lr_config.warmup_ratio == 0.1
    assert (cfg.checkpoint_config.interval, cfg.checkpoint_config.max_keep_ckpts) == (5, 3)
    train = cfg.dataset_dict("train")
    assert train["type"] == "GazeboOccWorldDataset" and train["config"]["split"] == "train"
    assert cfg.dataset_dict("val")["config"]["split"] == "val"


def test_guide_64d_codebook_is_a_real_option():
    cfg, _ = load_config(REPO / "config" / "train_vqvae.py", {"model.vq.embedding_dim": 64})
    assert cfg.model_config().code_dim == 64


@pytest.mark.parametrize("bad, needle", [
    ({"max_epoch": 3}, "unknown key 'max_epoch' (did you mean 'max_epochs'?)"),
    ({"model": {"type": "OccWorld", "transformer": {"num_layer": 2}}}, "model.transformer: unknown key 'num_layer'"),
    ({"lr_config": {"warmup_iter": 5}}, "lr_config: unknown key 'warmup_iter'"),
    ({"log_config": {"hooks": [{"type": "TextLoggerHook", "by_epoch": True}]}}, "unknown key 'by_epoch'"),
    ({"model": {"type": "TransVQVAE", "encoder": {"base_channel": 64}}}, "model: unknown key 'encoder'"),
    ({"fp16": {"loss_scale": 512.0}}, "fp16.loss_scale"),
    ({"max_epochs": "ten"}, "config.max_epochs must be an int"),
    ({"voxel_size": [0.4, 0.4, 1.25], "point_cloud_range": [-40, -40, -2, 40, 40, 150]}, "point_cloud_range"),
    ({"unfreeze_schedule": [{"epoch": 1, "trainable": ["head"]}]}, "unknown part(s) ['head']"),
])
def test_config_errors_name_the_key(bad, needle):
    with pytest.raises(ConfigError) as err:
        train_config_from_dict(bad, "x.py")
    assert needle in str(err.value) and "x.py" in str(err.value)


def test_checkpoint_rotation_and_latest(tmp_path):
    for epoch in range(1, 5):
        save_training_checkpoint(tmp_path, {"epoch": epoch, "w": torch.ones(2)}, True, max_keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["epoch_3.pth", "epoch_4.pth", "latest.pth"]
    assert read_checkpoint(tmp_path / "latest.pth")["epoch"] == 4
    save_training_checkpoint(tmp_path, {"epoch": 4, "iter_in_epoch": 3}, False, max_keep=2)   # SIGTERM save
    assert read_checkpoint(tmp_path / "latest.pth")["iter_in_epoch"] == 3
    assert read_checkpoint(tmp_path / "epoch_4.pth")["epoch"] == 4
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def _small_vae_config():
    from vlwm.models.official_config import vae_config_from_official
    return vae_config_from_official(load_reference("vae_small_fixture.pt")["config"])


def test_official_checkpoint_resumes(tmp_path):
    path = require_path(REFERENCE / "ckpt_small_vqvae_epoch_1.pth", "small reference checkpoint")
    model = build_vqvae(_small_vae_config())
    cfg = train_config_from_dict({"model": {"type": "VAERes2D"}})
    optimizer, scheduler = build_optimizer(model, cfg, 10)
    state = load_training_state(path, model, optimizer, scheduler, None)
    assert (state["epoch"], state["global_iter"]) == (1, 1)
    ckpt = read_checkpoint(path)
    assert torch.equal(model.state_dict()["encoder.conv_in.weight"], ckpt["state_dict"]["encoder.conv_in.weight"])
    assert len(optimizer.state) == 222


def test_load_from_adapts_depth_and_pose(tmp_path):
    torch.manual_seed(0)
    src = build_world_model(tiny_world_model_config(depth=16, resolution=20))
    torch.save({"state_dict": src.state_dict()}, tmp_path / "wm.pth")
    dst_cfg = tiny_world_model_config(depth=8, resolution=20)
    dst = build_world_model(replace(dst_cfg, pose=PoseConfig(motion_dims=4)))
    report = load_weights(dst, tmp_path / "wm.pth")
    assert report.ok
    notes = "\n".join(report.notes)
    assert "adapt_depth" in notes and "extend_pose_inputs" in notes
    assert torch.equal(dst.transformer.state_dict()["temporal_embeddings.weight"],
                       src.transformer.state_dict()["temporal_embeddings.weight"])
    # a VQ-VAE checkpoint given to load_from goes into model.vae
    torch.save({"state_dict": src.vae.state_dict()}, tmp_path / "vae.pth")
    report = load_weights(build_world_model(tiny_world_model_config(depth=16, resolution=20)), tmp_path / "vae.pth")
    assert report.ok and any("model.vae" in n for n in report.notes)


def test_top_level_transform_augments_the_training_split_only():
    t = {"RandomFlip": {"prob": 0.5}, "RandomRotate": {"angle": [-5, 5]}, "PointCloudNoise": {"std": 0.02}}
    cfg, _ = load_config(REPO / "config" / "finetune_tokyo.py", {"transform": t})
    assert cfg.dataset_dict("train")["config"]["transform"] == t
    assert "transform" not in cfg.dataset_dict("val")["config"]
