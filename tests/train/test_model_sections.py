"""The training config's ``model`` sections map a grid onto the typed model configs, which hold the defaults."""

from dataclasses import fields

from vlwm.gt.grid import OCC3D, GridSpec
from vlwm.models import PoseConfig, TransformerConfig, VAEConfig, official_vae_config, official_world_model_config
from vlwm.models.config import latent_size
from vlwm.train.model_config import (CoderConfig, PoseDecoderSection, PoseEncoderSection, TransformerSection,
                                     VQConfig, VQVAEModelConfig, WorldModelSection)

OFFICIAL_GRID = GridSpec((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (0.4, 0.4, 0.4))     # 200 x 200 x 16


def test_default_sections_on_the_official_grid_are_the_official_models():
    assert OFFICIAL_GRID.shape == OCC3D.shape == (200, 200, 16)
    assert VQVAEModelConfig().vae_config(OFFICIAL_GRID) == official_vae_config()
    assert WorldModelSection().world_model_config(OFFICIAL_GRID) == official_world_model_config()


def test_section_defaults_are_the_model_config_defaults():
    """Every default of a section is the default of the field it maps to (one description)."""
    maps = [(CoderConfig, VAEConfig, {"base_channel": "ch", "ch_mult": "ch_mult", "num_res_blocks": "num_res_blocks",
                                      "z_channels": "z_channels", "dropout": "dropout"}),
            (VQConfig, VAEConfig, {"num_embeddings": "codebook_size", "embedding_dim": "code_dim", "beta": "beta",
                                   "restart_dead_codes": "restart_dead_codes"}),
            (TransformerSection, TransformerConfig, {f: f for f in ("temporal_attn_layers", "pose_attn_layers",
                                                                    "channels", "num_heads", "num_frames",
                                                                    "pose_output_channel")}),
            (PoseEncoderSection, PoseConfig, {"num_layers": "encoder_layers"}),
            (PoseDecoderSection, PoseConfig, {"num_layers": "decoder_layers"})]
    for section, model_cfg, names in maps:
        ours = {f.name: f.default for f in fields(section)}
        theirs = {f.name: f.default for f in fields(model_cfg)}
        for a, b in names.items():
            assert ours[a] == theirs[b], (section.__name__, a)


def test_a_small_grid_maps_depth_resolution_and_token_grid():
    grid = GridSpec((-4.0, -4.0, -1.0, 4.0, 4.0, 2.2), (0.4, 0.4, 0.4))                 # 20 x 20 x 8
    cfg = WorldModelSection(vae=VQVAEModelConfig(encoder=CoderConfig(base_channel=8, z_channels=16),
                                                 decoder=CoderConfig(base_channel=8, z_channels=16),
                                                 vq=VQConfig(num_embeddings=32, embedding_dim=16)),
                            transformer=TransformerSection(channels=(16, 32, 64), num_heads=4, num_frames=3,
                                                           pose_output_channel=16)).world_model_config(grid)
    tokens = latent_size(20, 2)
    assert (cfg.vae.depth, cfg.vae.resolution, cfg.vae.attn_resolutions) == (8, 20, (tokens,))
    assert cfg.transformer.img_shape == (16, tokens, tokens) and cfg.transformer.output_channel == 32
