"""Layers of the world model's transformer (``PlanUtransformer.py`` / ``modules.py``, SPEC §3.3).

The attention layers are ``nn.ModuleList`` subclasses so that their children keep the official
state-dict names (``temporal_attentions_en.0.3.2.fc1.weight`` = level 0, layer 3, child 2 = FFN).
All of them are post-norm residual: ``x = LN(x + sublayer(x))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vlwm.models.attention import MultiheadAttention


class FFN(nn.Module):
    """Linear(E, 4E) -> GELU -> Dropout(0) -> Linear(4E, E) -> Dropout(0) (official ``FFN``)."""

    def __init__(self, dims: int, hidden_dims: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., E) -> (..., E)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def pose_mlp(in_dims: int, out_dims: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear -> ReLU (``pose_en`` / ``pose_mid`` / ``pose_de``)."""
    return nn.Sequential(nn.Linear(in_dims, out_dims), nn.ReLU(), nn.Linear(out_dims, out_dims), nn.ReLU())


class TemporalAttentionLayer(nn.ModuleList):
    """``[MHA, LN, FFN, LN]``: every token-grid pixel attends its own history over frames.

    Queries ``(N, Fq, E)`` attend keys/values ``(N, Fk, E)`` with N = B·H·W pixels.
    """

    def __init__(self, dims: int, num_heads: int, backend: str):
        super().__init__([MultiheadAttention(dims, num_heads, backend), nn.LayerNorm(dims),
                          FFN(dims, dims * 4), nn.LayerNorm(dims)])

    def forward(self, q: Tensor, k: Tensor, causal: bool = False, mask: Tensor | None = None) -> Tensor:
        """q: (N, Fq, E), k: (N, Fk, E) -> (N, Fq, E)."""
        attn, norm1, ffn, norm2 = self
        q = norm1(q + attn(q, k, causal=causal, mask=mask))
        return norm2(q + ffn(q))


class PoseAttentionLayer(nn.ModuleList):
    """``[MHA temporal, LN, MHA spatial, LN, FFN, LN]`` of the pose stream.

    The pose query of each frame attends the pose keys of its history (causal), then the image
    queries of its own frame at the current U-Net level (all H·W pixels, unmasked), then an FFN.
    """

    def __init__(self, dims: int, num_heads: int, backend: str):
        super().__init__([MultiheadAttention(dims, num_heads, backend), nn.LayerNorm(dims),
                          MultiheadAttention(dims, num_heads, backend), nn.LayerNorm(dims),
                          FFN(dims, dims * 4), nn.LayerNorm(dims)])

    def forward(self, pq: Tensor, pk: Tensor, image: Tensor, causal: bool = False,
                mask: Tensor | None = None) -> Tensor:
        """Update pose queries.

        Parameters
        ----------
        pq : (B, Fq, E) pose queries.
        pk : (B, Fk, E) pose keys/values.
        image : (B·Fq, H·W, E) image queries of the same frames.
        causal, mask : temporal masking (see :func:`vlwm.models.attention.attention`).

        Returns
        -------
        (B, Fq, E)
        """
        temporal, norm1, spatial, norm2, ffn, norm3 = self
        b, fq, e = pq.shape
        pq = norm1(pq + temporal(pq, pk, causal=causal, mask=mask))
        pq = pq.reshape(b * fq, 1, e)                                  # '(b f) 1 e'
        pq = norm2(pq + spatial(pq, image))
        pq = norm3(pq + ffn(pq))
        return pq.reshape(b, fq, e)


class UnetBlock(nn.Module):
    """LayerNorm(shape) -> conv3x3 -> ReLU -> conv3x3, + shortcut(input), -> ReLU.

    ``shape`` is (H, W) in the encoder levels (normalise each channel over space) and (C, H, W) in
    the middle/decoder: **it contains the token grid**, which is why a transformer built for 50 x 50
    tokens (200 x 200 grids) cannot run or load weights on another grid.
    """

    def __init__(self, shape: tuple[int, ...], in_c: int, out_c: int):
        super().__init__()
        self.ln = nn.LayerNorm(shape)
        self.conv1 = nn.Conv2d(in_c, out_c, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.act = nn.ReLU()
        self.shortcut = nn.Identity() if in_c == out_c else nn.Conv2d(in_c, out_c, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, in_c, H, W) -> (N, out_c, H, W)."""
        shape = tuple(self.ln.normalized_shape)
        if tuple(x.shape[-len(shape):]) != shape:
            raise ValueError(
                f"UnetBlock LayerNorm expects trailing shape {shape} but got {tuple(x.shape[1:])}: the "
                "transformer's LayerNorms fix the token grid (img_shape in the config; 50x50 tokens for "
                "200x200 occupancy grids).  Use grids whose token grid matches, or build a transformer "
                "for the new grid (its LayerNorm weights cannot come from the official checkpoint).")
        out = self.conv2(self.act(self.conv1(self.ln(x))))
        return self.act(out + self.shortcut(x))


def pad_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-pad (N, C, h, w) to (N, C, H, W) = size, top/left getting diff // 2.

    The official code pads the width with the height difference and vice versa; the two agree on
    square grids (all official ones) and only this form works on non-square ones.
    """
    dy, dx = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dy == 0 and dx == 0:
        return x
    return torch.nn.functional.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
