"""The scene tokenizer: official ``VAERes2D`` with ``Encoder2D`` / ``Decoder2D`` (SPEC §2).

An occupancy frame ``(H, W, D)`` of class ids becomes a ``(D · expansion, H, W)`` image (each
voxel's class embedding, a BEV pixel's column folded into channels, channel = d · expansion + e),
a 2D ResNet encoder with attention maps it to ``(z, H/4, W/4)``, the quantiser snaps every latent
pixel to one of ``codebook_size`` codes, and the decoder maps back to ``(D · expansion, H, W)``,
read out per voxel as a dot product with the class embeddings (tied classifier, no bias).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vlwm.labels import FREE
from vlwm.models.config import VAEConfig, latent_size
from vlwm.models.quantizer import Quantized, VectorQuantizer
from vlwm.models.vae_blocks import AttnBlock, Downsample, ResnetBlock, Upsample, normalize, swish


class VAEOutput(NamedTuple):
    """Result of :meth:`VAERes2D.forward`."""

    logits: Tensor
    """(B, F, H, W, D, num_classes) float: per-voxel class logits."""
    embed_loss: Tensor
    """() float32: VQ embedding loss."""
    code_indices: Tensor
    """(B, F, h, w) int64: the code of every token."""


def occupancy_predictions(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Official ``sem_pred`` / ``iou_pred`` of class logits.

    Parameters
    ----------
    logits : (..., num_classes) float

    Returns
    -------
    sem_pred : (...) int64 argmax class id.
    iou_pred : (...) int64, 1 where ``sem_pred != FREE`` (occupied), else 0.
    """
    sem_pred = logits.argmax(dim=-1)
    return sem_pred, (sem_pred != FREE).long()


def _run(block: nn.Module, x: Tensor, use_checkpoint: bool, *args) -> Tensor:
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(block, x, *args, use_reentrant=False)
    return block(x, *args)


class _Level(nn.Module):
    """One resolution level: ``block`` (ResNet blocks), ``attn`` (empty or one per block) and
    optionally ``downsample`` / ``upsample`` (official attribute names)."""

    def __init__(self, channels_in: int, channels_out: int, num_blocks: int, with_attn: bool,
                 dropout: float, backend: str):
        super().__init__()
        self.block, self.attn = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_blocks):  # creation order block0, attn0, block1, attn1 as officially
            self.block.append(ResnetBlock(channels_in, channels_out, dropout))
            channels_in = channels_out
            if with_attn:
                self.attn.append(AttnBlock(channels_out, backend))

    def blocks(self, h: Tensor, use_checkpoint: bool) -> Tensor:
        for i, block in enumerate(self.block):
            h = _run(block, h, use_checkpoint)
            if len(self.attn):
                h = _run(self.attn[i], h, use_checkpoint)
        return h


class _Mid(nn.Module):
    """block_1 -> attn_1 -> block_2 at the lowest resolution."""

    def __init__(self, channels: int, dropout: float, backend: str):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels, backend)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, h: Tensor, use_checkpoint: bool) -> Tensor:
        for block in (self.block_1, self.attn_1, self.block_2):
            h = _run(block, h, use_checkpoint)
        return h


class Encoder2D(nn.Module):
    """conv_in -> levels (ResNet blocks [+ attention], downsample) -> mid -> norm/swish/conv_out.

    Officially 128 -> 64 ch at 200², 128 ch at 100², 256 ch + attention at 50², z = 128.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.use_checkpoint = cfg.use_checkpoint
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, kernel_size=3, stride=1, padding=1)
        res, block_in = cfg.resolution, cfg.ch
        in_mult = (1, *cfg.ch_mult)
        self.down = nn.ModuleList()
        for i, mult in enumerate(cfg.ch_mult):
            block_in = cfg.ch * in_mult[i]
            level = _Level(block_in, cfg.ch * mult, cfg.num_res_blocks, res in cfg.attn_resolutions,
                           cfg.dropout, cfg.attention)
            block_in = cfg.ch * mult
            if i != len(cfg.ch_mult) - 1:
                level.downsample = Downsample(block_in)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(block_in, cfg.dropout, cfg.attention)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.z_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        """x: (N, D·expansion, H, W) -> (z (N, z_channels, h, w), sizes before each downsample)."""
        sizes = []
        h = self.conv_in(x)
        for level in self.down:
            h = level.blocks(h, self.use_checkpoint)
            if hasattr(level, "downsample"):
                sizes.append((h.shape[-2], h.shape[-1]))
                h = level.downsample(h)
        h = self.mid(h, self.use_checkpoint)
        return self.conv_out(swish(self.norm_out(h))), sizes


class Decoder2D(nn.Module):
    """conv_in -> mid -> levels from lowest (ResNet blocks [+ attention], upsample) -> conv_out.

    ``up`` is indexed from the highest resolution (``up.0`` = 200²) and run in reverse, like the
    official ``insert(0, ...)`` construction (creation order lowest level first).
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.use_checkpoint = cfg.use_checkpoint
        block_in = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** cfg.num_downsamples
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, kernel_size=3, stride=1, padding=1)
        self.mid = _Mid(block_in, cfg.dropout, cfg.attention)
        self.up = nn.ModuleList()
        for i in reversed(range(len(cfg.ch_mult))):
            level = _Level(block_in, cfg.ch * cfg.ch_mult[i], cfg.num_res_blocks, res in cfg.attn_resolutions,
                           cfg.dropout, cfg.attention)
            block_in = cfg.ch * cfg.ch_mult[i]
            if i != 0:
                level.upsample = Upsample(block_in)
                res *= 2
            self.up.insert(0, level)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, z: Tensor, sizes: list[tuple[int, int]]) -> Tensor:
        """z: (N, z_channels, h, w), sizes from the encoder -> (N, D·expansion, H, W)."""
        h = self.mid(self.conv_in(z), self.use_checkpoint)
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            h = level.blocks(h, self.use_checkpoint)
            if i != 0:
                h = level.upsample(h, sizes[i - 1])
        return self.conv_out(swish(self.norm_out(h)))


class VAERes2D(nn.Module):
    """The VQ-VAE scene tokenizer (official ``VAERes2D`` with its vector quantiser).

    Submodules (state-dict prefixes): ``encoder``, ``decoder``, ``class_embeds``, ``vqvae``.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = Encoder2D(cfg)
        self.decoder = Decoder2D(cfg)
        self.class_embeds = nn.Embedding(cfg.num_classes, cfg.expansion)
        self.vqvae = VectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.z_channels, cfg.beta,
                                     cfg.restart_dead_codes)

    # ---- the three stages -----------------------------------------------------------------

    def encode(self, occ: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        """Class-embed, fold height into channels, encode.

        Parameters
        ----------
        occ : (B, F, H, W, D) int64 class ids in [0, num_classes), ego grid frame.

        Returns
        -------
        z : (B·F, z_channels, h, w) float, h = ceil(H / 4) officially.
        sizes : (H, W) before each downsampling, for :meth:`decode`.
        """
        b, f, h, w, d = occ.shape
        if d != self.cfg.depth:
            raise ValueError(f"occupancy has {d} height levels but the VAE was built for depth="
                             f"{self.cfg.depth}; build with VAEConfig(depth={d}) and initialise it "
                             "with vlwm.models.adapt.adapt_depth")
        x = self.class_embeds(occ)                                    # (B, F, H, W, D, E)
        x = x.reshape(b * f, h, w, d * self.cfg.expansion)            # '(b f) h w (d e)'
        x = x.permute(0, 3, 1, 2)                                     # (B·F, D·E, H, W)
        x = x.contiguous(memory_format=torch.channels_last if self.cfg.channels_last
                         else torch.contiguous_format)
        return self.encoder(x)

    def decode(self, z_q: Tensor, sizes: list[tuple[int, int]], batch: int) -> Tensor:
        """Decode quantised latents (after ``post_quant_conv``) to class logits.

        Parameters
        ----------
        z_q : (B·F, z_channels, h, w) float
        sizes : (H, W) before each encoder downsampling (:meth:`encode` or :meth:`grid_sizes`).
        batch : int
            B, to unfold B·F.

        Returns
        -------
        (B, F, H, W, D, num_classes) float logits.
        """
        if self.cfg.channels_last:
            z_q = z_q.contiguous(memory_format=torch.channels_last)
        out = self.decoder(z_q, sizes)                                # (B·F, D·E, H, W)
        n, _, h, w = out.shape
        d, e = self.cfg.depth, self.cfg.expansion
        out = out.permute(0, 2, 3, 1).reshape(n, h, w, d, e)          # '(b f) (d e) h w -> (b f) h w d e'
        logits = torch.matmul(out, self.class_embeds.weight.t().to(out.dtype))  # (B·F, H, W, D, C)
        return logits.reshape(batch, n // batch, h, w, d, self.cfg.num_classes)

    def grid_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The encoder's ``sizes`` for an ``height x width`` grid (decode without encoding)."""
        return [(latent_size(height, i), latent_size(width, i)) for i in range(self.cfg.num_downsamples)]

    def tokenize(self, occ: Tensor) -> tuple[Quantized, list[tuple[int, int]]]:
        """Encode and quantise without decoding (world-model inputs).

        Parameters
        ----------
        occ : (B, F, H, W, D) int64

        Returns
        -------
        Quantized (``z_q`` (B·F, code_dim, h, w) straight-through, before ``post_quant_conv``;
        ``indices`` (B·F, h, w)) and the encoder ``sizes``.
        """
        z, sizes = self.encode(occ)
        return self.vqvae.quantize(self.vqvae.quant_conv(z)), sizes

    def decode_codes(self, indices: Tensor, sizes: list[tuple[int, int]]) -> Tensor:
        """Class logits of code indices: exact codebook rows -> post_quant_conv -> decoder.

        indices : (B, F, h, w) int64 -> (B, F, H, W, D, num_classes) float.
        """
        b = indices.shape[0]
        z = self.vqvae.post_quant_conv(self.vqvae.lookup(indices.flatten(0, 1)))
        return self.decode(z, sizes, b)

    def forward(self, occ: Tensor) -> VAEOutput:
        """Reconstruct occupancy through the codebook.

        Parameters
        ----------
        occ : (B, F, H, W, D) int64 class ids.

        Returns
        -------
        VAEOutput: logits (B, F, H, W, D, C), embed_loss, code_indices (B, F, h, w).
        """
        b = occ.shape[0]
        z, sizes = self.encode(occ)
        q = self.vqvae(z)
        logits = self.decode(q.z_q, sizes, b)
        return VAEOutput(logits, q.loss, q.indices.unflatten(0, (b, -1)))
