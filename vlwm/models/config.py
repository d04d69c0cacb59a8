"""Typed configurations of the OccWorld models, and their presets.

Three architecture configs mirror the official ``model`` dicts (``config/train_vqvae.py``,
``config/train_occworld.py``; SPEC §2, §3): :class:`VAEConfig` (``VAERes2D``),
:class:`TransformerConfig` (``PlanUAutoRegTransformer``), :class:`PoseConfig` (``PoseEncoder`` /
``PoseDecoder``), gathered in :class:`WorldModelConfig` (``TransVQVAE``).  Fields marked
*execution option* change speed and memory only, never the state dict or (beyond float rounding)
the outputs.

Presets: :func:`official_vae_config` / :func:`official_world_model_config` (the released sizes,
200 x 200 x 16 grids, 50 x 50 tokens) and :func:`tiny_vae_config` / :func:`tiny_world_model_config`
(the same code with small widths, for CPU tests and the demo).  Official ``model`` dicts are parsed
by :mod:`vlwm.models.official_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from vlwm.labels import NUM_OCC_CLASSES

AttentionBackend = Literal["sdpa", "reference"]
"""``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels);
``"reference"``: the explicit softmax(QKᵀ/√d)V of the official code, kept for tests."""

ATTENTION_BACKENDS: tuple[str, ...] = ("sdpa", "reference")


def _check_backend(name: str, where: str) -> None:
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"{where}.attention = {name!r}; choose one of {ATTENTION_BACKENDS}")


def latent_size(size: int, num_downsamples: int) -> int:
    """Spatial size after ``num_downsamples`` VAE downsamplings (3x3 conv, stride 2, pad 1).

    Each one maps n -> ceil(n / 2): 200 -> 100 -> 50, 40 -> 20 -> 10.
    """
    for _ in range(num_downsamples):
        size = (size + 1) // 2
    return size


@dataclass(frozen=True)
class VAEConfig:
    """The scene tokenizer ``VAERes2D`` (SPEC §2): class embedding, 3D->2D fold, 2D ResNet
    encoder/decoder with attention, vector quantiser."""

    num_classes: int = NUM_OCC_CLASSES
    """Occupancy classes (18: Occ3D-nuScenes + free).  Sizes ``class_embeds`` (num_classes, expansion)."""
    expansion: int = 8
    """Class-embedding width per voxel; a column of ``depth`` voxels folds into depth*expansion channels."""
    depth: int = 16
    """Height levels D of the grid.  Only ``encoder.conv_in`` and ``decoder.conv_out`` depend on it
    (SPEC §9); see :func:`vlwm.models.adapt.adapt_depth` to initialise another depth from 16."""
    ch: int = 64
    """Base width of the encoder/decoder (level i has ch * ch_mult[i] channels)."""
    ch_mult: tuple[int, ...] = (1, 2, 4)
    """Width multipliers per resolution level; len(ch_mult) - 1 downsamplings (200 -> 100 -> 50)."""
    num_res_blocks: int = 2
    """ResNet blocks per level, in the encoder and (unlike taming) also in the decoder."""
    attn_resolutions: tuple[int, ...] = (50,)
    """Levels whose *nominal* resolution (``resolution`` halved per level) is listed get an
    attention block after every ResNet block."""
    resolution: int = 200
    """Nominal horizontal grid size; decides where attention sits, not the input size (the VAE is
    fully convolutional)."""
    z_channels: int = 128
    """Encoder output / decoder input channels."""
    codebook_size: int = 512
    """Number of codes ``n_e`` of the quantiser."""
    code_dim: int = 128
    """Code width ``e_dim``; also the channel count of the world model's image tokens."""
    beta: float = 1.0
    """Weight of the codebook term of the (legacy-form) VQ loss."""
    dropout: float = 0.0
    """Dropout inside the ResNet blocks (0 in every official config)."""
    restart_dead_codes: int = 0
    """Training option: restart a code after this many training steps without use (0 = never, as
    officially); see :mod:`vlwm.models.quantizer`."""
    attention: AttentionBackend = "sdpa"
    """Execution option: attention kernel of the attention blocks."""
    use_checkpoint: bool = False
    """Execution option: recompute ResNet/attention blocks in the backward pass (less memory)."""
    channels_last: bool = False
    """Execution option: run the 2D convolutions in channels-last memory format."""

    @property
    def in_channels(self) -> int:
        """Channels of the folded input (depth * expansion; 128 officially)."""
        return self.depth * self.expansion

    @property
    def num_downsamples(self) -> int:
        return len(self.ch_mult) - 1

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """Latent (token) grid of an ``height x width`` input grid: 200 x 200 -> 50 x 50."""
        return latent_size(height, self.num_downsamples), latent_size(width, self.num_downsamples)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the combination cannot be built."""
        positive = ("num_classes", "expansion", "depth", "ch", "num_res_blocks", "resolution",
                    "z_channels", "codebook_size", "code_dim")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"VAEConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise ValueError(f"VAEConfig.ch_mult must be non-empty positive ints, got {self.ch_mult}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"VAEConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.restart_dead_codes < 0:
            raise ValueError(f"VAEConfig.restart_dead_codes must be >= 0 steps, got {self.restart_dead_codes}")
        _check_backend(self.attention, "VAEConfig")


@dataclass(frozen=True)
class TransformerConfig:
    """The world model's ``PlanUAutoRegTransformer`` (SPEC §3.3): a temporal U-Net over the token
    grid with a parallel pose stream."""

    num_frames: int = 15
    """Frames of context the temporal embeddings and the causal mask are sized for."""
    img_shape: tuple[int, int, int] = (128, 50, 50)
    """(C, H, W) of the image tokens.  C must equal the VAE ``code_dim``; **H, W must equal the
    token grid** (the UnetBlock LayerNorms have shapes containing it: 50 x 50 for 200 x 200 grids)."""
    tpe_dim: int = 128
    """Width of the temporal embeddings; they are added to tokens, so it must equal C."""
    channels: tuple[int, ...] = (128, 256, 512)
    """Channels per U-Net level (the last one is the bottleneck)."""
    temporal_attn_layers: int = 6
    """Temporal attention layers per U-Net level (encoder and decoder)."""
    pose_attn_layers: int = 2
    """Pose attention layers (temporal self + spatial cross + FFN) per U-Net level."""
    num_heads: int = 8
    """Heads of every multi-head attention."""
    output_channel: int = 512
    """Code logits per token: must equal the VAE ``codebook_size``."""
    pose_output_channel: int = 128
    """Width of the pose features handed to the pose decoder."""
    attention: AttentionBackend = "sdpa"
    """Execution option: attention kernel."""
    use_checkpoint: bool = False
    """Execution option: recompute attention layers and U-Net blocks in the backward pass."""

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.img_shape[1], self.img_shape[2]

    def level_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each U-Net level: integer halving, 50 -> 25 -> 12."""
        h, w = self.token_grid
        sizes = [(h, w)]
        for _ in range(len(self.channels) - 1):
            h, w = h // 2, w // 2
            sizes.append((h, w))
        return sizes

    def validate(self) -> None:
        c = self.img_shape[0]
        if len(self.img_shape) != 3 or min(self.img_shape) < 1:
            raise ValueError(f"TransformerConfig.img_shape must be (C, H, W) > 0, got {self.img_shape}")
        if self.tpe_dim != c:
            raise ValueError(f"TransformerConfig.tpe_dim ({self.tpe_dim}) must equal the token "
                             f"channels img_shape[0] ({c}): temporal embeddings are added to tokens")
        if len(self.channels) < 2:
            raise ValueError(f"TransformerConfig.channels needs >= 2 levels, got {self.channels}")
        widths = [c, *self.channels[:-1]] + [2 * ch for ch in self.channels[:-1]]
        for e in widths:
            if e % self.num_heads:
                raise ValueError(f"attention width {e} is not divisible by num_heads={self.num_heads}")
        if min(self.level_sizes()[-1]) < 1:
            raise ValueError(f"token grid {self.token_grid} is too small for {len(self.channels)} levels")
        if self.num_frames < 1:
            raise ValueError(f"TransformerConfig.num_frames must be >= 1, got {self.num_frames}")
        _check_backend(self.attention, "TransformerConfig")


@dataclass(frozen=True)
class PoseConfig:
    """``PoseEncoder`` / ``PoseDecoder`` (SPEC §3.1) and the per-frame pose input.

    The input of frame i is ``cat(motion_i, mode_i)``: ``motion_dims`` displacement components to
    the next frame followed by a ``num_modes``-way one-hot command.  Officially motion = (dx, dy)
    (5-d input).  Drones use ``motion_dims=4``: (dx, dy, dz, dyaw); see
    :func:`vlwm.models.adapt.extend_pose_inputs` for loading 2-d weights.
    """

    motion_dims: int = 2
    """Displacement components per frame: 2 = (dx, dy) [m]; 4 = (dx, dy, dz [m], dyaw [rad])."""
    num_modes: int = 3
    """Driving commands / trajectory modes; the decoder predicts one displacement per mode."""
    encoder_layers: int = 2
    """Linear layers of the pose encoder (>= 2)."""
    decoder_layers: int = 2
    """Linear layers of the pose decoder (>= 1)."""

    @property
    def in_channels(self) -> int:
        return self.motion_dims + self.num_modes

    def validate(self) -> None:
        if self.motion_dims < 1 or self.num_modes < 1:
            raise ValueError(f"PoseConfig needs motion_dims, num_modes >= 1, got {self}")
        if self.encoder_layers < 2:
            raise ValueError("PoseConfig.encoder_layers must be >= 2 (the official encoder's first "
                             f"layer maps the input, the last is square), got {self.encoder_layers}")
        if self.decoder_layers < 1:
            raise ValueError(f"PoseConfig.decoder_layers must be >= 1, got {self.decoder_layers}")


@dataclass(frozen=True)
class WorldModelConfig:
    """The world model ``TransVQVAE`` (SPEC §3): frozen tokenizer + transformer + pose heads."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    """The scene tokenizer."""
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    """The autoregressive transformer."""
    pose: PoseConfig = field(default_factory=PoseConfig)
    """Pose input/output heads."""
    offset: int = 1
    """Frame i's outputs predict frame i + offset; training windows have num_frames + offset frames."""

    @property
    def num_frames(self) -> int:
        return self.transformer.num_frames

    def validate(self) -> None:
        """Check each part and that they fit together (widths, codebook, token grid)."""
        self.vae.validate()
        self.transformer.validate()
        self.pose.validate()
        t, v = self.transformer, self.vae
        if self.offset < 1:
            raise ValueError(f"WorldModelConfig.offset must be >= 1, got {self.offset}")
        if t.img_shape[0] != v.code_dim:
            raise ValueError(f"transformer img_shape[0] ({t.img_shape[0]}) must equal the VAE "
                             f"code_dim ({v.code_dim}): image tokens are quantised VAE codes")
        if t.output_channel != v.codebook_size:
            raise ValueError(f"transformer output_channel ({t.output_channel}) must equal the VAE "
                             f"codebook_size ({v.codebook_size}): it predicts code logits")
        grid = v.token_grid(v.resolution, v.resolution)
        if t.token_grid != grid:
            raise ValueError(
                f"transformer img_shape {t.img_shape} says a {t.token_grid[0]}x{t.token_grid[1]} token "
                f"grid, but the VAE (resolution {v.resolution}, {v.num_downsamples} downsamplings) makes "
                f"{grid[0]}x{grid[1]} tokens.  The transformer's UnetBlock LayerNorms have shapes that "
                f"contain the token grid (50x50 for 200x200 grids), so the two must agree; set "
                f"img_shape=({t.img_shape[0]}, {grid[0]}, {grid[1]}) or change the VAE resolution.")


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


def official_vae_config(**overrides) -> VAEConfig:
    """The released VQ-VAE (``config/train_vqvae.py``): 14,168,272 parameters, 200x200x16 -> 50x50x128."""
    return replace(VAEConfig(), **overrides)


def official_world_model_config(**overrides) -> WorldModelConfig:
    """The released world model (``config/train_occworld.py``): 72,385,578 parameters.

    ``overrides`` apply to the top level (``vae=``, ``transformer=``, ``pose=``, ``offset=``).
    """
    return replace(WorldModelConfig(), **overrides)


def tiny_vae_config(depth: int = 16, resolution: int = 40, **overrides) -> VAEConfig:
    """The same tokenizer with small widths (ch 8, 32-d codes, 64 codes) for CPU tests and the demo.

    ``resolution`` is the horizontal grid size it is meant for (40 -> 10x10 tokens).
    """
    base = VAEConfig(depth=depth, ch=8, resolution=resolution, attn_resolutions=(latent_size(resolution, 2),),
                     z_channels=32, codebook_size=64, code_dim=32)
    return replace(base, **overrides)


def tiny_world_model_config(depth: int = 16, resolution: int = 40, num_frames: int = 15,
                            motion_dims: int = 2) -> WorldModelConfig:
    """A world model with small widths (tokens 32-d, U-Net 32/64/128, 2 temporal layers) for CPU
    tests and the demo; same code and module tree as the official one."""
    vae = tiny_vae_config(depth=depth, resolution=resolution)
    grid = latent_size(resolution, vae.num_downsamples)
    transformer = TransformerConfig(num_frames=num_frames, img_shape=(vae.code_dim, grid, grid),
                                    tpe_dim=vae.code_dim, channels=(32, 64, 128), temporal_attn_layers=2,
                                    pose_attn_layers=1, num_heads=4, output_channel=vae.codebook_size,
                                    pose_output_channel=32)
    return WorldModelConfig(vae=vae, transformer=transformer, pose=PoseConfig(motion_dims=motion_dims))
