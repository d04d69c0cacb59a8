"""Configs and builders: official ``model`` dicts build the official module trees (full size, checked
against the state-dict shape lists), bad configs fail with errors that say what to change."""

import copy
import json
from dataclasses import replace

import pytest
import torch

from vlwm.models import (build_from_official_config, build_vqvae, build_world_model, official_vae_config,
                         official_world_model_config, tiny_vae_config, tiny_world_model_config)

# The ``model`` dict of OccWorld's config/train_occworld.py (base_channel=64, _dim_=16, expansion=8,
# n_e_=512, return_len_=15), written out.
_ENCODER = dict(type="Encoder2D", ch=64, out_ch=64, ch_mult=(1, 2, 4), num_res_blocks=2, attn_resolutions=(50,),
                dropout=0.0, resamp_with_conv=True, in_channels=128, resolution=200, z_channels=128, double_z=False)
_DECODER = dict(type="Decoder2D", ch=64, out_ch=128, ch_mult=(1, 2, 4), num_res_blocks=2, attn_resolutions=(50,),
                dropout=0.0, resamp_with_conv=True, in_channels=128, resolution=200, z_channels=128,
                give_pre_end=False)
OFFICIAL_VAE = dict(type="VAERes2D", encoder_cfg=_ENCODER, decoder_cfg=_DECODER, num_classes=18, expansion=8,
                    vqvae_cfg=dict(type="VectorQuantizer", n_e=512, e_dim=128, beta=1.0, z_channels=128,
                                   use_voxel=False))
OFFICIAL_WORLD_MODEL = dict(
    type="TransVQVAE", num_frames=15, delta_input=False, offset=1,
    vae=dict(OFFICIAL_VAE, vqvae_cfg=dict(OFFICIAL_VAE["vqvae_cfg"], sane_index_shape=True)),
    transformer=dict(type="PlanUAutoRegTransformer", num_tokens=1, num_frames=15, num_layers=2,
                     img_shape=(128, 50, 50), pose_shape=(1, 128), pose_attn_layers=2, pose_output_channel=128,
                     tpe_dim=128, channels=(128, 256, 512), temporal_attn_layers=6, output_channel=512,
                     learnable_queries=False),
    pose_encoder=dict(type="PoseEncoder", in_channels=5, out_channels=128, num_layers=2, num_modes=3, num_fut_ts=1),
    pose_decoder=dict(type="PoseDecoder", in_channels=128, num_layers=2, num_modes=3, num_fut_ts=1),
)


def _shapes(reference_dir, name):
    return json.loads((reference_dir / name).read_text())


@pytest.mark.parametrize("cfg, shapes_file", [(OFFICIAL_VAE, "vae_state_dict_shapes.json"),
                                              (OFFICIAL_WORLD_MODEL, "occworld_state_dict_shapes.json")])
def test_official_config_builds_the_official_state_dict(reference_dir, cfg, shapes_file):
    ref = _shapes(reference_dir, shapes_file)
    with torch.device("meta"):
        model = build_from_official_config(cfg)
    sd = model.state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [(k, v["shape"]) for k, v in ref["state_dict"].items()]
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]
    for name, count in ref["submodules"].items():
        assert sum(p.numel() for p in getattr(model, name).parameters()) == count, name
    if "num_trainable_after_freeze_dict" in ref:
        model.freeze_tokenizer()
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == ref["num_trainable_after_freeze_dict"]


def test_presets_equal_the_official_configs():
    from vlwm.models.official_config import vae_config_from_official, world_model_config_from_official
    assert vae_config_from_official(OFFICIAL_VAE) == official_vae_config()
    assert world_model_config_from_official(OFFICIAL_WORLD_MODEL) == official_world_model_config()
    with torch.device("meta"):
        assert list(build_vqvae().state_dict()) == list(build_from_official_config(OFFICIAL_VAE).state_dict())
        official = build_from_official_config(OFFICIAL_WORLD_MODEL)
        assert list(build_world_model().state_dict()) == list(official.state_dict())


def _with(cfg, path, value):
    cfg = copy.deepcopy(cfg)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize("path, value, message", [
    (("vae", "encoder_cfg", "chanels"), 3, "unknown key.*chanels"),
    (("transformer", "learnable_queries"), True, "learnable_queries"),
    (("delta_input",), True, "delta_input"),
    (("vae", "decoder_cfg", "ch"), 32, "encoder and decoder must agree"),
    (("transformer", "img_shape"), (128, 40, 40), "LayerNorms.*50x50"),
    (("pose_encoder", "in_channels"), 7, "PoseConfig\\(motion_dims=4\\)"),
    (("num_frames",), 10, "num_frames"),
    (("type",), "OccWorld", "not an OccWorld model"),
])
def test_bad_official_configs_fail_clearly(path, value, message):
    with pytest.raises(ValueError, match=message):
        with torch.device("meta"):
            build_from_official_config(_with(OFFICIAL_WORLD_MODEL, path, value))


def test_wrong_token_grid_at_run_time_is_explained():
    model = build_world_model(tiny_world_model_config()).eval()
    occ = torch.full((1, 3, 48, 48, 16), 17)              # 48x48 -> 12x12 tokens, built for 10x10
    motion, mode = torch.zeros(1, 3, 2), torch.zeros(1, 3, 3)
    with pytest.raises(ValueError, match="LayerNorms contain the token grid"):
        with torch.no_grad():
            model(occ, motion, mode)


def test_wrong_depth_at_run_time_points_to_adapt_depth():
    model = build_vqvae(tiny_vae_config(depth=16))
    with pytest.raises(ValueError, match="adapt_depth"):
        model(torch.full((1, 1, 40, 40, 121), 17))


def test_tiny_presets_run_any_depth_and_frames():
    vae_cfg = tiny_vae_config(depth=121, resolution=24)
    vae = build_vqvae(vae_cfg).eval()
    occ = torch.randint(0, 18, (1, 2, 24, 24, 121), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = vae(occ)
    assert out.logits.shape == (1, 2, 24, 24, 121, 18) and out.code_indices.shape == (1, 2, 6, 6)
    wm = build_world_model(tiny_world_model_config(depth=8, resolution=24, num_frames=4, motion_dims=4)).eval()
    occ = torch.randint(0, 18, (2, 5, 24, 24, 8), generator=torch.Generator().manual_seed(1))
    motion, mode = torch.randn(2, 5, 4), torch.eye(3)[torch.tensor([[0, 1, 2, 0, 1]] * 2)]
    with torch.no_grad():
        out = wm(occ, motion, mode, decode=True)
        roll = wm.rollout(occ, motion, mode, start=0, mid=2, end=5)
    assert out.code_logits.shape == (2, 4, 64, 6, 6) and out.pose_decoded.shape == (2, 4, 3, 4)
    assert out.sem_pred.shape == (2, 4, 24, 24, 8)
    assert roll.sem_pred.shape == (2, 3, 24, 24, 8) and roll.poses.shape == (2, 3, 4)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="tpe_dim"):
        build_world_model(replace(official_world_model_config(),
                                  transformer=replace(official_world_model_config().transformer, tpe_dim=64)))
    with pytest.raises(ValueError, match="attention"):
        tiny_vae_config(attention="flash").validate()
