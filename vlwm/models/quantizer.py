"""The vector quantiser of the scene tokenizer (official ``VectorQuantizer``, SPEC §2.4).

A 1x1 ``quant_conv`` maps encoder features to ``code_dim``, every latent pixel snaps to its
nearest code of a ``codebook_size x code_dim`` codebook (squared Euclidean distance, first index on
ties), and a 1x1 ``post_quant_conv`` maps back.  No EMA, no normalisation, no restarts.

Faithful details: the distance is computed as ``|z|² + |e|² − 2 z·e`` in float32 (also under
autocast, so code indices do not depend on the compute precision); the loss is the legacy form
``mean((sg[e] − z)²) + beta · mean((e − sg[z])²)``; the straight-through output is ``z + sg(e − z)``,
numerically close to but not bit-identical with ``e`` (SPEC §2.4 quirk) — the world model feeds
exactly these values as history tokens.

One training option beyond the reference, off by default: **dead-code restarts**
(``restart_after`` > 0).  A small tokenizer trained on little data uses a handful of its codes
(codebook collapse: 9 of 128 in the demo's VQ-VAE before this option); a code that no latent
pixel chose for ``restart_after`` consecutive training steps is moved onto a randomly drawn latent
of the current batch, the remedy of Dhariwal et al. (Jukebox, 2020) and of vector-quantize-pytorch's
``threshold_ema_dead_code``.  Usage is all-reduced and the new codes broadcast from rank 0 under
DDP, so every rank keeps the same codebook.  It acts only while the module trains and the codebook
requires grad (never in a frozen tokenizer), and keeps no state in the state dict.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn


class Quantized(NamedTuple):
    """Result of :meth:`VectorQuantizer.quantize`."""

    z_q: Tensor
    """(N, code_dim, h, w) float32: straight-through quantised latents ``z + sg(e − z)``."""
    loss: Tensor
    """() float32: the VQ embedding loss (legacy form, SPEC §2.4)."""
    indices: Tensor
    """(N, h, w) int64: code index per latent pixel."""


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser with 1x1 projections (official state-dict names).

    Parameters
    ----------
    codebook_size : int
        Number of codes (``n_e``; 512 officially).
    code_dim : int
        Code width (``e_dim``; 128).
    z_channels : int
        Channels of the encoder output / decoder input (128).
    beta : float
        Weight of the codebook-side loss term (legacy placement; 1.0 officially).
    restart_after : int
        Training steps without use after which a code is restarted on a batch latent; 0 = never
        (official behaviour).
    """

    def __init__(self, codebook_size: int, code_dim: int, z_channels: int, beta: float = 1.0,
                 restart_after: int = 0):
        super().__init__()
        if restart_after < 0:
            raise ValueError(f"restart_after must be >= 0 steps, got {restart_after}")
        self.codebook_size, self.code_dim, self.beta = codebook_size, code_dim, beta
        self.restart_after = restart_after
        self.register_buffer("idle_steps", torch.zeros(codebook_size, dtype=torch.long), persistent=False)
        self.restarts = 0
        """Codes restarted so far by this module (all ranks count the same)."""
        self.embedding = nn.Embedding(codebook_size, code_dim)
        self.embedding.weight.data.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)
        self.quant_conv = nn.Conv2d(z_channels, code_dim, 1)
        self.post_quant_conv = nn.Conv2d(code_dim, z_channels, 1)

    def forward(self, z: Tensor) -> Quantized:
        """quant_conv -> quantise -> post_quant_conv (the VAE's own path).

        Parameters
        ----------
        z : (N, z_channels, h, w) float
            Encoder output.

        Returns
        -------
        Quantized with ``z_q`` already passed through ``post_quant_conv``: (N, z_channels, h, w).
        """
        q = self.quantize(self.quant_conv(z))
        return Quantized(self.post_quant_conv(q.z_q), q.loss, q.indices)

    def distances(self, z_flat: Tensor) -> Tensor:
        """Squared distances of latents to every code, float32 regardless of autocast.

        Parameters
        ----------
        z_flat : (P, code_dim) float

        Returns
        -------
        (P, codebook_size) float32 (float64 for a float64 model)
        """
        z_flat = _at_least_fp32(z_flat)
        e = self.embedding.weight.to(z_flat.dtype)
        with torch.autocast(device_type=z_flat.device.type, enabled=False):
            return (torch.sum(z_flat ** 2, dim=1, keepdim=True) + torch.sum(e ** 2, dim=1)
                    - 2 * torch.einsum("bd,dn->bn", z_flat, e.t()))

    def quantize(self, z: Tensor) -> Quantized:
        """Snap latents (after ``quant_conv``) to their nearest codes.

        Parameters
        ----------
        z : (N, code_dim, h, w) float

        Returns
        -------
        Quantized (``z_q`` before ``post_quant_conv``).
        """
        n, c, h, w = z.shape
        z = _at_least_fp32(z).permute(0, 2, 3, 1).reshape(n * h * w, c)      # (N·h·w, c), 'n c h w -> (n h w) c'
        restarting = self.restart_after > 0 and self.training and self.embedding.weight.requires_grad
        if restarting:
            self.restart_dead_codes(z)
        indices = torch.argmin(self.distances(z), dim=1)              # (N·h·w,)
        if restarting:
            self.count_usage(indices)
        e = self.embedding(indices).to(z.dtype)                       # (N·h·w, c)
        loss = torch.mean((e.detach() - z) ** 2) + self.beta * torch.mean((e - z.detach()) ** 2)
        z_q = z + (e - z).detach()                                    # straight-through
        z_q = z_q.reshape(n, h, w, c).permute(0, 3, 1, 2).contiguous()  # (N, c, h, w)
        return Quantized(z_q, loss, indices.reshape(n, h, w))

    @torch.no_grad()
    def count_usage(self, indices: Tensor) -> None:
        """Advance every code's idle counter, zeroing those of the codes in ``indices`` (all ranks)."""
        used = torch.bincount(indices.flatten(), minlength=self.codebook_size)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(used)
        self.idle_steps.add_(1).masked_fill_(used > 0, 0)

    @torch.no_grad()
    def restart_dead_codes(self, z_flat: Tensor) -> int:
        """Move the codes idle for ``restart_after`` steps onto random rows of ``z_flat`` (P, code_dim).

        Returns the number of codes restarted.
        """
        dead = torch.nonzero(self.idle_steps >= self.restart_after).flatten()
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, z_flat.shape[0], (dead.numel(),), device=z_flat.device)
        new = z_flat.detach()[pick].to(self.embedding.weight.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, 0)
        self.embedding.weight[dead] = new
        self.idle_steps[dead] = 0
        self.restarts += int(dead.numel())
        return int(dead.numel())

    def lookup(self, indices: Tensor) -> Tensor:
        """Exact codebook vectors of code indices (``get_codebook_entry``).

        Parameters
        ----------
        indices : (N, h, w) int64

        Returns
        -------
        (N, code_dim, h, w) float, before ``post_quant_conv``.
        """
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()


def _at_least_fp32(x: Tensor) -> Tensor:
    """Half-precision tensors (autocast) to float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
