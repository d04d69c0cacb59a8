"""Building blocks of the motion-aware world model (:mod:`vlwm.models.motion_world_model`).

Shapes: B batch, T_h history frames, F future frames, X, Y, Z voxels (grid frame: x forward, y
left, z up), K labels (18, free = 17), E class-embedding width, C channels, N = a flattened
batch of 2D maps.

* :class:`ColumnFold` — class ids -> BEV features: a class embedding per voxel, the Z voxels of a
  column folded into Z * E channels (as OccWorld's VAE folds height), then a 1x1 projection.
* :class:`CondResBlock`, :class:`ConditionedUNet` — a 2D U-Net over (X, Y) whose every block gets
  a per-channel shift from the target embedding.
* :class:`TargetEmbedding` — lead time and the target frame's pose -> a conditioning vector.
* :class:`PoseHead` — future grid frames from the history's: constant velocity plus a residual MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vlwm.models.ego_warp import compose, relative


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with groups of (up to) 8 channels; ``channels`` must be >= 4."""
    return nn.GroupNorm(max(1, min(32, channels // 8)), channels, eps=1e-6)


class ColumnFold(nn.Module):
    """(N, X, Y, Z) int64 ids in [0, num_ids) -> (N, out_channels, X, Y) float.

    Embeds each voxel (``num_ids`` rows: the labels, plus one "unobserved" id for space outside
    the source grid), folds 'n x y z e -> n (z e) x y' and projects 1x1.
    """

    def __init__(self, num_ids: int, embed_dim: int, depth: int, out_channels: int):
        super().__init__()
        self.depth, self.embed_dim = depth, embed_dim
        self.embed = nn.Embedding(num_ids, embed_dim)
        self.proj = nn.Conv2d(depth * embed_dim, out_channels, kernel_size=1)

    def forward(self, ids: Tensor) -> Tensor:
        n, x, y, z = ids.shape
        # index_select instead of nn.Embedding's forward: same values, a much cheaper backward on CPU.
        e = self.embed.weight.index_select(0, ids.permute(0, 3, 1, 2).reshape(-1))   # (N*Z*X*Y, E)
        e = e.reshape(n, z, x, y, self.embed_dim).permute(0, 1, 4, 2, 3)            # (N, Z, E, X, Y)
        return self.proj(e.reshape(n, z * self.embed_dim, x, y))                      # (N, Z*E, X, Y) -> (N, C, X, Y)


class CondResBlock(nn.Module):
    """norm -> SiLU -> conv3x3 -> + shift(cond) -> norm -> SiLU -> conv3x3, plus a (1x1) skip.

    x : (N, C_in, H, W), cond : (N, cond_dim) -> (N, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.norm1, self.norm2 = group_norm(in_channels), group_norm(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.cond = nn.Linear(cond_dim, out_channels)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.cond(cond)[:, :, None, None]                        # (N, C_out, 1, 1) shift
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class ConditionedUNet(nn.Module):
    """2D U-Net over (X, Y): ``len(channels) - 1`` stride-2 downsamplings, nearest upsampling back
    to each skip's exact size (odd sizes work), skip connections by concatenation.

    x : (N, in_channels, X, Y), cond : (N, cond_dim) -> (N, channels[0], X, Y).
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], blocks: int, cond_dim: int,
                 use_checkpoint: bool = False):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.stem = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = channels[0]
        for i, width in enumerate(channels):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(CondResBlock(c, width, cond_dim))
                c = width
            self.down.append(level)
            if i + 1 < len(channels):
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.up = nn.ModuleList()
        for width, skip in zip(reversed(channels[:-1]), reversed(channels[:-1])):
            level = nn.ModuleList()
            for j in range(blocks):
                level.append(CondResBlock(c + skip if j == 0 else c, width, cond_dim))
                c = width
            self.up.append(level)
        self.out_channels = c

    def _block(self, block: CondResBlock, h: Tensor, cond: Tensor) -> Tensor:
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(block, h, cond, use_reentrant=False)
        return block(h, cond)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = self._block(block, h, cond)
            if i < len(self.downsample):
                skips.append(h)
                h = self.downsample[i](h)                               # (N, C, ceil(H/2), ceil(W/2))
        for level in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = torch.cat([h, skip], dim=1)
            for block in level:
                h = self._block(block, h, cond)
        return h


class TargetEmbedding(nn.Module):
    """Lead time (s) and target frame pose -> (N, cond_dim) conditioning.

    Inputs: ``lead_s`` (N,) seconds after the last observed frame; ``frame`` (N, 4) the target grid
    frame's pose in the last observed grid frame (x, y, z metres, yaw rad).  Features
    ``[lead_s, x / scale, y / scale, z / scale, sin yaw, cos yaw - 1]`` go through a 2-layer MLP.
    """

    def __init__(self, cond_dim: int, scale_m: float):
        super().__init__()
        self.scale_m = scale_m
        self.mlp = nn.Sequential(nn.Linear(6, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, lead_s: Tensor, frame: Tensor) -> Tensor:
        f = frame.float()
        feats = torch.stack([lead_s.float(), f[:, 0] / self.scale_m, f[:, 1] / self.scale_m, f[:, 2] / self.scale_m,
                             torch.sin(f[:, 3]), torch.cos(f[:, 3]) - 1.0], dim=-1)     # (N, 6)
        return self.mlp(feats)


class PoseHead(nn.Module):
    """Future grid frames from the history's: constant velocity plus a learnt residual.

    history_frames : (B, T_h, 4) float poses (x, y, z, yaw) of the history grid frames in the last
    one (the last row is the identity).  Returns (B, F, 4) float64 poses of the F future grid frames
    in the last history grid frame.

    The last observed step ``s = pose(T_h - 2 -> T_h - 1)`` (zero when T_h = 1) is repeated:
    future frame k is ``s ∘ (s + r_0) ∘ … `` with per-step corrections ``r_k`` from an MLP on the
    history's steps (translations divided by ``scale_m``).  Its last layer starts at zero, so an
    untrained head is exactly constant velocity.
    """

    def __init__(self, history_frames: int, future_frames: int, hidden: int, layers: int, scale_m: float):
        super().__init__()
        self.future_frames, self.scale_m = future_frames, scale_m
        n_in = max(1, history_frames - 1) * 5
        mods: list[nn.Module] = []
        for _ in range(layers - 1):
            mods += [nn.Linear(n_in, hidden), nn.SiLU()]
            n_in = hidden
        last = nn.Linear(n_in, future_frames * 4)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*mods, last)

    @staticmethod
    def steps(history_frames: Tensor) -> Tensor:
        """(B, T_h - 1, 4) float64: pose of frame i + 1 in frame i (zeros (B, 1, 4) when T_h = 1)."""
        h = history_frames.double()
        if h.shape[1] < 2:
            return torch.zeros(h.shape[0], 1, 4, dtype=h.dtype, device=h.device)
        return relative(h[:, :-1], h[:, 1:])

    def forward(self, history_frames: Tensor) -> Tensor:
        steps = self.steps(history_frames)                               # (B, S, 4) float64
        b = steps.shape[0]
        feats = torch.cat([steps[..., :3] / self.scale_m, torch.sin(steps[..., 3:]),
                           torch.cos(steps[..., 3:]) - 1.0], dim=-1)      # (B, S, 5)
        r = self.mlp(feats.float().reshape(b, -1)).reshape(b, self.future_frames, 4).double()
        r = torch.cat([r[..., :3] * self.scale_m, r[..., 3:]], dim=-1)   # (B, F, 4) metres, rad
        step = steps[:, -1:] + r                                         # (B, F, 4) per-step motion
        pose = torch.zeros(b, 4, dtype=step.dtype, device=step.device)
        out = []
        for k in range(self.future_frames):
            pose = compose(pose, step[:, k])
            out.append(pose)
        return torch.stack(out, dim=1)

