"""The world model's transformer: official ``PlanUAutoRegTransformer`` (SPEC §3.3).

A U-Net over the token grid (50² -> 25² -> 12² officially) with causal temporal attention at
every pixel of every level, and a parallel pose stream that attends its own history and the image
features of its frame.

**Two streams.**  The official code runs the inputs twice through the same layers: *tokens*
(frame j carries temporal embedding j) are only transformed frame by frame — UnetBlocks,
down/upsampling, pose MLPs — and serve as keys/values of every attention; *queries* (frame j
carries embedding j + 1, the frame it predicts) are also updated by the attentions and give the
outputs.  This module makes the split explicit:

* :meth:`PlanUAutoRegTransformer.context` computes the key/value stream (:class:`TokenContext`);
  it is per frame, so contexts of consecutive frames concatenate (:meth:`TokenContext.extend`);
* :meth:`PlanUAutoRegTransformer.predict` runs the query stream for the last frames of a context.

``forward`` = ``predict(context(all frames))`` computes exactly the official forward (minus the
key-stream work whose result the official code discards: the last decoder level's UnetBlocks and
pose MLP).  The autoregressive rollout keeps the context of past frames and runs only the newest
frame's query stream per step instead of re-running the whole window (``forward_autoreg_step``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vlwm.models.attention import frame_mask
from vlwm.models.config import TransformerConfig
from vlwm.models.transformer_blocks import (PoseAttentionLayer, TemporalAttentionLayer, UnetBlock, pad_to,
                                            pose_mlp)


class TokenContext(NamedTuple):
    """Key/value stream of ``F`` frames, per U-Net level (``L`` = number of levels - 1)."""

    enc: list[Tensor]
    """L tensors (B, F, C_l, H_l, W_l): image keys entering encoder level l."""
    enc_pose: list[Tensor]
    """L tensors (B, F, C_l): pose keys entering encoder level l."""
    dec: list[Tensor]
    """L tensors (B, F, 2 C, H, W): image keys of decoder level l (upsampled ‖ skip)."""
    dec_pose: list[Tensor]
    """L tensors (B, F, 2 C): pose keys of decoder level l."""

    @property
    def num_frames(self) -> int:
        return self.enc[0].shape[1]

    def extend(self, other: "TokenContext") -> "TokenContext":
        """Frames of ``self`` followed by the frames of ``other``."""
        return TokenContext(*([torch.cat([a, b], dim=1) for a, b in zip(mine, theirs)]
                              for mine, theirs in zip(self, other)))


class PlanUAutoRegTransformer(nn.Module):
    """Causal spatio-temporal U-Net predicting next-frame code logits and pose features."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.use_checkpoint = cfg.use_checkpoint
        c = cfg.img_shape[0]
        heads, backend = cfg.num_heads, cfg.attention
        self.temporal_embeddings = nn.Embedding(cfg.num_frames + 1, cfg.tpe_dim)
        self.pose_temporal_embeddings = nn.Embedding(cfg.num_frames + 1, cfg.tpe_dim)
        # Registration order = official state-dict / parameter order; creation order below =
        # official RNG order (seed-for-seed identical initialisation).
        self.temporal_attentions_en = nn.ModuleList()
        self.temporal_attentions_de = nn.ModuleList()
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.pose_attn_en = nn.ModuleList()
        self.pose_en = nn.ModuleList()
        self.pose_attn_de = nn.ModuleList()
        self.pose_de = nn.ModuleList()
        self.pose_up = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        self.upsamples = nn.ModuleList()

        sizes = cfg.level_sizes()
        pre_c = c
        for channel, (h, w) in zip(cfg.channels[:-1], sizes[:-1]):
            self.temporal_attentions_en.append(nn.ModuleList(
                TemporalAttentionLayer(pre_c, heads, backend) for _ in range(cfg.temporal_attn_layers)))
            self.encoders.append(nn.Sequential(UnetBlock((h, w), pre_c, channel), UnetBlock((h, w), channel, channel)))
            self.downsamples.append(nn.Conv2d(channel, channel, kernel_size=2, stride=2, padding=0))
            self.pose_en.append(pose_mlp(pre_c, channel))
            self.pose_attn_en.append(nn.ModuleList(
                PoseAttentionLayer(pre_c, heads, backend) for _ in range(cfg.pose_attn_layers)))
            pre_c = channel
        channel, (h, w) = cfg.channels[-1], sizes[-1]
        self.mid = nn.Sequential(UnetBlock((pre_c, h, w), pre_c, channel), UnetBlock((channel, h, w), channel, channel))
        self.pose_mid = pose_mlp(pre_c, channel)
        pre_c = channel
        for channel, (h, w) in zip(cfg.channels[-2::-1], sizes[-2::-1]):
            agg = 2 * channel
            self.upsamples.append(nn.ConvTranspose2d(pre_c, channel, kernel_size=2, stride=2, padding=0))
            self.temporal_attentions_de.append(nn.ModuleList(
                TemporalAttentionLayer(agg, heads, backend) for _ in range(cfg.temporal_attn_layers)))
            self.decoders.append(nn.Sequential(UnetBlock((agg, h, w), agg, channel),
                                               UnetBlock((channel, h, w), channel, channel)))
            self.pose_up.append(nn.Linear(pre_c, channel))
            self.pose_attn_de.append(nn.ModuleList(
                PoseAttentionLayer(agg, heads, backend) for _ in range(cfg.pose_attn_layers)))
            self.pose_de.append(pose_mlp(agg, channel))
            pre_c = channel
        self.conv_out = nn.Conv2d(pre_c, cfg.output_channel, 3, 1, 1)
        self.pose_out = nn.Linear(pre_c, cfg.pose_output_channel)

    # ---- public API -------------------------------------------------------------------------

    def forward(self, tokens: Tensor, pose_tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced pass over a window (official ``forward`` / ``forward_autoreg_step``).

        Parameters
        ----------
        tokens : (B, F, C, H, W) float
            Quantised image tokens of frames 0..F-1 (F <= num_frames).
        pose_tokens : (B, F, C) float
            Encoded poses of the same frames.

        Returns
        -------
        code_logits : (B, F, output_channel, H, W) float — frame i's logits predict frame i+1.
        pose_features : (B, F, pose_output_channel) float.
        """
        return self.predict(tokens, pose_tokens, self.context(tokens, pose_tokens))

    def context(self, tokens: Tensor, pose_tokens: Tensor, first_frame: int = 0) -> TokenContext:
        """Key/value stream of frames ``first_frame .. first_frame + F - 1`` of a window.

        tokens : (B, F, C, H, W) float; pose_tokens : (B, F, C) float.
        """
        b, f = tokens.shape[:2]
        self._check_window(first_frame + f, tokens)
        emb = self.temporal_embeddings.weight[first_frame:first_frame + f]            # (F, C)
        k = (tokens + emb[None, :, :, None, None]).flatten(0, 1)                       # (B·F, C, H, W)
        pk = pose_tokens + self.pose_temporal_embeddings.weight[first_frame:first_frame + f][None]
        enc, enc_pose, skips, pose_skips = [], [], [], []
        for level in range(len(self.encoders)):
            enc.append(k.unflatten(0, (b, f)))
            enc_pose.append(pk)
            pk = self.pose_en[level](pk)
            pose_skips.append(pk)
            k = self._run(self.encoders[level], k)
            skips.append(k)
            k = self.downsamples[level](k)
        k, pk = self._run(self.mid, k), self.pose_mid(pk)
        dec, dec_pose = [], []
        last = len(self.decoders) - 1
        for level in range(len(self.decoders)):
            k = self._up(level, k, skips[last - level])
            pk = torch.cat([self.pose_up[level](pk), pose_skips[last - level]], dim=-1)
            dec.append(k.unflatten(0, (b, f)))
            dec_pose.append(pk)
            if level != last:  # the last level's key-stream outputs feed nothing
                k, pk = self._run(self.decoders[level], k), self.pose_de[level](pk)
        return TokenContext(enc, enc_pose, dec, dec_pose)

    def predict(self, tokens: Tensor, pose_tokens: Tensor, context: TokenContext) -> tuple[Tensor, Tensor]:
        """Query stream of the last ``F`` frames of ``context``.

        Parameters
        ----------
        tokens : (B, F, C, H, W) float — the same frames' tokens that built the context's tail.
        pose_tokens : (B, F, C) float
        context : TokenContext of Fk >= F frames (queries are frames Fk - F .. Fk - 1).

        Returns
        -------
        As :meth:`forward`, for the F query frames.
        """
        b, f = tokens.shape[:2]
        fk = context.num_frames
        if f > fk:
            raise ValueError(f"{f} query frames but the context holds only {fk} frames")
        self._check_window(fk, tokens)
        first = fk - f
        rows = slice(first + 1, first + 1 + f)          # each query carries the frame it predicts
        q = (tokens + self.temporal_embeddings.weight[rows][None, :, :, None, None]).flatten(0, 1)
        pq = pose_tokens + self.pose_temporal_embeddings.weight[rows][None]
        masking = dict(causal=True) if first == 0 else dict(mask=frame_mask(f, fk, tokens.device))
        skips, pose_skips = [], []
        for level in range(len(self.encoders)):
            image = _pixels(q)
            for layer in self.pose_attn_en[level]:
                pq = self._run(layer, pq, context.enc_pose[level], image, **masking)
            pq = self.pose_en[level](pq)
            pose_skips.append(pq)
            q = self._temporal(self.temporal_attentions_en[level], q, context.enc[level], **masking)
            q = self._run(self.encoders[level], q)
            skips.append(q)
            q = self.downsamples[level](q)
        q, pq = self._run(self.mid, q), self.pose_mid(pq)
        last = len(self.decoders) - 1
        for level in range(len(self.decoders)):
            q = self._up(level, q, skips[last - level])
            q = self._temporal(self.temporal_attentions_de[level], q, context.dec[level], **masking)
            pq = torch.cat([self.pose_up[level](pq), pose_skips[last - level]], dim=-1)
            image = _pixels(q)
            for layer in self.pose_attn_de[level]:
                pq = self._run(layer, pq, context.dec_pose[level], image, **masking)
            pq = self.pose_de[level](pq)
            q = self._run(self.decoders[level], q)
        return self.conv_out(q).unflatten(0, (b, f)), self.pose_out(pq)

    # ---- helpers ----------------------------------------------------------------------------

    def _run(self, module: nn.Module, *args, **kwargs) -> Tensor:
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(module, *args, use_reentrant=False, **kwargs)
        return module(*args, **kwargs)

    def _temporal(self, layers: nn.ModuleList, q: Tensor, keys: Tensor, **masking) -> Tensor:
        """Temporal attention at every pixel.

        q : (B·Fq, C, H, W) queries; keys : (B, Fk, C, H, W) -> (B·Fq, C, H, W).
        """
        b, fk, c, h, w = keys.shape
        fq = q.shape[0] // b
        qs = q.unflatten(0, (b, fq)).permute(0, 3, 4, 1, 2).reshape(b * h * w, fq, c)  # '(b h w) f c'
        ks = keys.permute(0, 3, 4, 1, 2).reshape(b * h * w, fk, c)
        for layer in layers:
            qs = self._run(layer, qs, ks, **masking)
        return qs.reshape(b, h, w, fq, c).permute(0, 3, 4, 1, 2).reshape(b * fq, c, h, w)

    def _up(self, level: int, x: Tensor, skip: Tensor) -> Tensor:
        """Transposed-conv upsampling, pad to the skip's size, concatenate: (N, 2C, H, W)."""
        x = pad_to(self.upsamples[level](x), (skip.shape[-2], skip.shape[-1]))
        return torch.cat([x, skip], dim=1)

    def _check_window(self, num_frames: int, tokens: Tensor) -> None:
        if num_frames > self.cfg.num_frames:
            raise ValueError(f"a window of {num_frames} frames exceeds num_frames={self.cfg.num_frames} "
                             "(the temporal embeddings have num_frames + 1 rows)")
        c, h, w = self.cfg.img_shape
        if tuple(tokens.shape[2:]) != (c, h, w):
            raise ValueError(
                f"tokens of shape {tuple(tokens.shape[2:])} (C, H, W) but the transformer was built for "
                f"img_shape={self.cfg.img_shape}.  Its UnetBlock LayerNorms contain the token grid "
                f"({h}x{w}; 50x50 tokens = 200x200 occupancy grids officially), so the occupancy grid "
                "must tokenise to exactly that size.")


def _pixels(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H·W, C): 'n c h w -> n (h w) c'."""
    return x.flatten(2).transpose(1, 2)
