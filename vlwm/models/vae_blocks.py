"""Building blocks of the scene tokenizer's 2D encoder/decoder (``vae_2d_resnet.py``, SPEC §2.2).

All blocks take and return ``(N, C, H, W)`` float feature maps, N = batch x frames (the VAE is
strictly per-frame).  Attribute names are the official ones, so state dicts load key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlwm.models.attention import attention


def swish(x: Tensor) -> Tensor:
    """The official ``nonlinearity``: x · sigmoid(x) (= SiLU)."""
    return F.silu(x)


def normalize(channels: int) -> nn.GroupNorm:
    """The official ``Normalize``: GroupNorm with 32 groups above 32 channels, else channels // 4."""
    groups = 32 if channels > 32 else channels // 4
    if groups < 1:
        raise ValueError(f"GroupNorm over {channels} channels: the official rule gives {groups} groups; "
                         "use at least 4 channels per level")
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm1 -> swish -> conv1 -> norm2 -> swish -> dropout -> conv2, plus a (1x1 when the width
    changes) shortcut.  No time embedding (``temb_channels=0`` in every official config)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, in, H, W) -> (N, out, H, W)."""
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H·W positions (scale C^-1/2), residual; no positional
    embedding.  ``q``, ``k``, ``v``, ``proj_out`` are 1x1 convolutions."""

    def __init__(self, channels: int, backend: str = "sdpa"):
        super().__init__()
        self.backend = backend
        self.norm = normalize(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1, stride=1, padding=0)
        self.k = nn.Conv2d(channels, channels, kernel_size=1, stride=1, padding=0)
        self.v = nn.Conv2d(channels, channels, kernel_size=1, stride=1, padding=0)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> (N, C, H, W)."""
        n, c, h, w = x.shape
        y = self.norm(x).flatten(2).transpose(1, 2)                # (N, H·W, C), 'n c h w -> n (h w) c'
        # The 1x1 convolutions as one (3C, C) projection of the pixel sequence: q, k, v come out
        # with unit stride along C, which the fused attention kernels need.
        w_qkv = torch.cat([self.q.weight, self.k.weight, self.v.weight]).reshape(3 * c, c)
        b_qkv = torch.cat([self.q.bias, self.k.bias, self.v.bias])
        q, k, v = F.linear(y, w_qkv, b_qkv).unsqueeze(1).chunk(3, dim=-1)   # 3 x (N, 1, H·W, C)
        out = attention(q, k, v, backend=self.backend).squeeze(1)           # (N, H·W, C)
        out = F.linear(out, self.proj_out.weight.reshape(c, c), self.proj_out.bias)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class Downsample(nn.Module):
    """3x3 convolution, stride 2, symmetric padding 1: n -> ceil(n / 2) (200 -> 100 -> 50)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))."""
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest x2, zero-pad to the stored encoder size (top/left get diff // 2), 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """x: (N, C, h, w) -> (N, C, size[0], size[1]) with size[i] in {2h, 2h + 1}."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        dy, dx = size[0] - x.shape[2], size[1] - x.shape[3]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(x)
