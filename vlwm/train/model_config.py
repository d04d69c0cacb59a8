"""The ``model`` section of a training config: the guide's keys mapped onto the typed model configs.

:class:`VQVAEModelConfig` (stage 1, ``type='VAERes2D'``) and :class:`WorldModelSection` (stage 2 /
fine-tuning, ``type='OccWorld'``) turn into the model dataclasses of :mod:`vlwm.models.config`
for a given grid (depth = Z levels, resolution = X size, token grid = what the VAE makes of it).
The architecture is described there, once: every default below *is* that config's default (the
official architecture), and the loss weights are the named dataclasses of :mod:`vlwm.models.losses`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from vlwm.gt.grid import GridSpec
from vlwm.models.config import PoseConfig, TransformerConfig, VAEConfig, WorldModelConfig, latent_size
from vlwm.models.losses import VAELossWeights, WorldModelLossWeights


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


# ---------------------------------------------------------------------------------------------
# Model sections (the guide's keys, official values by default)
# ---------------------------------------------------------------------------------------------


@dataclass
class CoderConfig:
    """Encoder or decoder of the VQ-VAE (``model.encoder`` / ``model.decoder``)."""

    base_channel: int = VAEConfig.ch
    """Base width ``ch`` (official 64)."""
    ch_mult: tuple[int, ...] = VAEConfig.ch_mult
    """Width multipliers per level; len - 1 downsamplings."""
    num_res_blocks: int = VAEConfig.num_res_blocks
    """ResNet blocks per level."""
    attn_resolutions: Optional[tuple[int, ...]] = None
    """Nominal resolutions with attention; None = the token grid (50 for 200 x 200, as officially)."""
    z_channels: int = VAEConfig.z_channels
    """Latent channels."""
    dropout: float = VAEConfig.dropout
    """Dropout in the ResNet blocks."""


@dataclass
class VQConfig:
    """The vector quantiser (``model.vq``)."""

    num_embeddings: int = VAEConfig.codebook_size
    """Codebook size ``n_e`` (official 512)."""
    embedding_dim: int = VAEConfig.code_dim
    """Code width ``e_dim`` (official 128; the guide's 64 builds a 64-d codebook, which the released
    weights do not fit)."""
    beta: float = VAEConfig.beta
    """Codebook-term weight of the VQ loss."""
    restart_dead_codes: int = VAEConfig.restart_dead_codes
    """Restart a code after this many training steps without use; 0 = never (official).  Small
    tokenizers on little data collapse to a few codes without it (config/demo_vqvae.py uses it)."""


@dataclass
class VQVAEModelConfig:
    """Stage 1: the scene tokenizer ``VAERes2D`` (``config/train_vqvae.py``).  Depth and resolution
    come from the grid (``point_cloud_range`` / ``voxel_size``)."""

    type: str = "VAERes2D"
    """Must be ``'VAERes2D'`` (the guide's ``'TransVQVAE'`` is the world model's official name)."""
    encoder: CoderConfig = field(default_factory=CoderConfig)
    """Encoder widths."""
    decoder: CoderConfig = field(default_factory=CoderConfig)
    """Decoder widths (must equal the encoder's: the official model shares them)."""
    vq: VQConfig = field(default_factory=VQConfig)
    """Quantiser."""
    num_classes: int = VAEConfig.num_classes
    """Occupancy classes (18 incl. free)."""
    expansion: int = VAEConfig.expansion
    """Class-embedding width per voxel."""
    use_checkpoint: bool = VAEConfig.use_checkpoint
    """Gradient checkpointing (recompute blocks in backward)."""
    attention: str = VAEConfig.attention
    """Attention kernel: ``'sdpa'`` or ``'reference'``."""
    channels_last: bool = VAEConfig.channels_last
    """Run the 2D convolutions channels-last."""
    loss_weights: VAELossWeights = field(default_factory=VAELossWeights)
    """Weights of the VQ-VAE loss terms, by name: ``dict(recon=10.0, lovasz=1.0, embed=1.0)`` (official).
    Also the weights of the tokenizer's loss while a world model trains its VAE (``vae_loss_weight``)."""

    def vae_config(self, grid: GridSpec) -> VAEConfig:
        """The :class:`VAEConfig` for ``grid`` (depth = Z levels, resolution = X size)."""
        if self.type != "VAERes2D":
            raise ConfigError(f"model.type = {self.type!r}: the stage-1 tokenizer is 'VAERes2D' (the guide calls it "
                              "'TransVQVAE', which is the official world model); for stage 2 use type='OccWorld'")
        enc, dec = self.encoder, self.decoder
        if asdict(enc) != asdict(dec):
            raise ConfigError(f"model.encoder {asdict(enc)} and model.decoder {asdict(dec)} must agree "
                              "(the official VAERes2D uses one set of widths)")
        nx, ny, nz = grid.shape
        if nx != ny:
            raise ConfigError(f"the grid is {nx} x {ny} horizontally; the VQ-VAE needs a square grid")
        tokens = latent_size(nx, len(enc.ch_mult) - 1)
        attn = (tokens,) if enc.attn_resolutions is None else tuple(enc.attn_resolutions)
        cfg = VAEConfig(num_classes=self.num_classes, expansion=self.expansion, depth=nz, ch=enc.base_channel,
                        ch_mult=tuple(enc.ch_mult), num_res_blocks=enc.num_res_blocks, attn_resolutions=attn,
                        resolution=nx, z_channels=enc.z_channels, codebook_size=self.vq.num_embeddings,
                        code_dim=self.vq.embedding_dim, beta=self.vq.beta, dropout=enc.dropout,
                        restart_dead_codes=self.vq.restart_dead_codes,
                        attention=self.attention, use_checkpoint=self.use_checkpoint,
                        channels_last=self.channels_last)
        _validate(cfg, "model")
        return cfg


@dataclass
class TransformerSection:
    """The world model's transformer (``model.transformer``)."""

    num_layers: int = 2
    """The official config's ``num_layers``; stored but unused by the official transformer (SPEC
    §3.3), so only 2 is accepted — set the depth with ``temporal_attn_layers`` / ``pose_attn_layers``."""
    temporal_attn_layers: int = TransformerConfig.temporal_attn_layers
    """Temporal attention layers per U-Net level."""
    pose_attn_layers: int = TransformerConfig.pose_attn_layers
    """Pose attention layers per U-Net level."""
    channels: tuple[int, ...] = TransformerConfig.channels
    """U-Net channels per level."""
    num_heads: int = TransformerConfig.num_heads
    """Attention heads."""
    num_frames: int = TransformerConfig.num_frames
    """Context frames (temporal embeddings); windows hold at most num_frames + offset frames."""
    pose_output_channel: int = TransformerConfig.pose_output_channel
    """Width of the pose features."""


@dataclass
class PoseEncoderSection:
    """``model.pose_encoder``."""

    num_layers: int = PoseConfig.encoder_layers
    """Linear layers (>= 2)."""


@dataclass
class PoseDecoderSection:
    """``model.pose_decoder``."""

    num_layers: int = PoseConfig.decoder_layers
    """Linear layers (>= 1)."""


@dataclass
class WorldModelSection:
    """Stage 2 / fine-tuning: the world model ``TransVQVAE`` (``config/train_occworld.py``)."""

    type: str = "OccWorld"
    """``'OccWorld'`` (the guide) or ``'TransVQVAE'`` (the official class name)."""
    vqvae_ckpt: Optional[str] = None
    """VQ-VAE checkpoint loaded into ``model.vae`` before training (stage 2), strict, depth-adapted
    when the grid calls for it.  Ignored when ``load_from`` or a resume provides all weights."""
    vae: VQVAEModelConfig = field(default_factory=VQVAEModelConfig)
    """The tokenizer."""
    transformer: TransformerSection = field(default_factory=TransformerSection)
    """The transformer."""
    pose_encoder: PoseEncoderSection = field(default_factory=PoseEncoderSection)
    """Pose encoder."""
    pose_decoder: PoseDecoderSection = field(default_factory=PoseDecoderSection)
    """Pose decoder."""
    motion_dims: int = PoseConfig.motion_dims
    """Pose components: 2 = (dx, dy) official; 4 = (dx, dy, dz, dyaw) for drones (``rel_motion``)."""
    num_modes: int = PoseConfig.num_modes
    """Driving commands."""
    offset: int = WorldModelConfig.offset
    """Frame i predicts frame i + offset."""
    freeze_vae: bool = True
    """Keep the tokenizer frozen."""
    freeze_transformer: bool = False
    """Keep the transformer frozen."""
    freeze_pose: bool = False
    """Keep the pose encoder / decoder frozen."""
    use_checkpoint: bool = TransformerConfig.use_checkpoint
    """Gradient checkpointing in the VAE and the transformer."""
    attention: str = TransformerConfig.attention
    """Attention kernel."""
    loss_weights: WorldModelLossWeights = field(default_factory=WorldModelLossWeights)
    """Weights of the world-model loss terms, by name: ``dict(ce=1.0, plan_reg=0.1)`` (official)."""
    vae_loss_weight: float = 1.0
    """Weight of the VQ-VAE loss (weighted by ``vae.loss_weights``) added while any VAE part is
    trainable (the world-model losses do not reach the decoder); 0 turns it off."""

    def world_model_config(self, grid: GridSpec) -> WorldModelConfig:
        if self.type not in ("OccWorld", "TransVQVAE"):
            raise ConfigError(f"model.type = {self.type!r}; the world model is 'OccWorld' (or 'TransVQVAE')")
        if self.transformer.num_layers != 2:
            raise ConfigError(f"model.transformer.num_layers = {self.transformer.num_layers}: the official transformer "
                              "stores but never uses it (SPEC §3.3); set temporal_attn_layers / pose_attn_layers")
        vae_section = VQVAEModelConfig(**{**_shallow(self.vae), "use_checkpoint": self.use_checkpoint or
                                          self.vae.use_checkpoint, "attention": self.attention})
        vae = vae_section.vae_config(grid)
        t = self.transformer
        h, w = vae.token_grid(grid.shape[0], grid.shape[1])
        transformer = TransformerConfig(num_frames=t.num_frames, img_shape=(vae.code_dim, h, w), tpe_dim=vae.code_dim,
                                        channels=tuple(t.channels), temporal_attn_layers=t.temporal_attn_layers,
                                        pose_attn_layers=t.pose_attn_layers, num_heads=t.num_heads,
                                        output_channel=vae.codebook_size, pose_output_channel=t.pose_output_channel,
                                        attention=self.attention, use_checkpoint=self.use_checkpoint)
        pose = PoseConfig(motion_dims=self.motion_dims, num_modes=self.num_modes,
                          encoder_layers=self.pose_encoder.num_layers, decoder_layers=self.pose_decoder.num_layers)
        cfg = WorldModelConfig(vae=vae, transformer=transformer, pose=pose, offset=self.offset)
        _validate(cfg, "model")
        return cfg


def _shallow(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _validate(cfg, where: str) -> None:
    try:
        cfg.validate()
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from err
