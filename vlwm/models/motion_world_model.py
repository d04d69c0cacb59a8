"""The motion-aware world model: per-voxel class logits as a residual on the ego-warp prior.

Why this design.  On our data the last frame warped by the true ego motion
(:func:`vlwm.eval.baselines.ego_warp`) is a strong forecast: static city is exact up to voxel
rounding, and only moving objects and newly revealed space are wrong.  A model that regenerates
the whole scene from tokens (OccWorld) has to re-learn that physics and loses to it.  This model
keeps the physics and learns only the rest (as residual world models such as IR-WM do, with the
trajectory conditioning of SparseWorld-TC):

1. **Frames.**  All poses are grid-frame poses ``(x, y, z, yaw)`` in the last history grid frame
   (:mod:`vlwm.models.ego_warp`).  Future frame k's pose is given (trajectory-conditioned
   forecasting, rollouts along a plan) or predicted by :class:`~vlwm.models.motion_blocks.PoseHead`
   (constant velocity + residual MLP on the history's steps).
2. **Prior.**  The last frame warped into each future frame: exactly ``ego_warp(last, frames)``.
3. **Aligned history.**  Every history frame is warped into the *last* grid frame (space it did not
   see is an extra "unobserved" id): static structure lines up, moving objects show their
   displacement frame to frame.  The stack is folded to BEV features once, in the last frame
   (:class:`~vlwm.models.motion_blocks.ColumnFold` per frame, then a 3x3 mix), and those features
   are warped (2D, nearest) into each future frame.  Warping features once per target instead of
   re-warping all T_h grids into all F frames costs T_h + F folds instead of T_h x F.
4. **Residual.**  Per future frame a :class:`~vlwm.models.motion_blocks.ConditionedUNet` over
   (X, Y) sees the warped history features and the folded prior, conditioned on the lead time and
   the target pose; a zero-initialised 1x1 head gives Z x K residual logits per column.
   ``logits = prior_logit * onehot(prior) + residual`` with ``prior_logit`` learnt
   (``prior_logit_init`` > 0): **at initialisation the argmax is exactly the prior.**

Shapes (B batch, T_h history, F future, X, Y, Z grid, K = 18 labels): ``history_occ`` (B, T_h, X,
Y, Z) integer ids, each frame in its own grid frame; ``history_frames`` (B, T_h, 4) (last row the
identity); ``future_frames`` (B, F, 4); output :class:`MotionForecast`.  Nothing calls ``.cuda()``;
the warps run in float64 index arithmetic on the input's device; under ``torch.autocast`` the
network runs in reduced precision and the logits come back in float32.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlwm.models.ego_warp import compose, frame_poses_from_pose13, relative, warp_features, warp_labels
from vlwm.models.motion_blocks import ColumnFold, ConditionedUNet, PoseHead, TargetEmbedding
from vlwm.models.motion_config import MotionWorldModelConfig


class MotionForecast(NamedTuple):
    """One forward pass: F future frames, each in its own grid frame."""

    logits: Tensor
    """(B, F, X, Y, Z, K) float32 class logits (a permuted view of a contiguous (B, F, K, Z, X, Y) tensor)."""
    prior: Tensor
    """(B, F, X, Y, Z) int64: the ego-warp prior (last frame warped by ``frames``; free outside)."""
    frames: Tensor
    """(B, F, 4) float64: the future grid-frame poses the forecast was made for (given or predicted;
    with ``steps``, F = S and the logits, prior and frames are those steps')."""
    pred_frames: Tensor
    """(B, F, 4) float64: the pose head's prediction (differentiable; also when frames were given)."""

    @property
    def sem_pred(self) -> Tensor:
        """(B, F, X, Y, Z) int64 predicted labels."""
        return self.logits.argmax(dim=-1)


class MotionRollout(NamedTuple):
    """A rollout along a plan of N frames (any N; chained passes of F frames)."""

    occupancy: Tensor
    """(B, N, X, Y, Z) int64 predicted labels, each frame in its own grid frame."""
    frames: Tensor
    """(B, N, 4) float64 poses of the forecast grid frames in the last history grid frame."""


class MotionWorldModel(nn.Module):
    """See the module docstring.  Build with :func:`build_motion_world_model`."""

    def __init__(self, cfg: MotionWorldModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.spec = cfg.spec
        x, y, z = self.spec.shape
        k = cfg.num_classes
        self.unobserved = k                                   # extra id for space outside a source grid
        self.fold = ColumnFold(k + 1, cfg.class_embed_dim, z, cfg.frame_channels)
        self.history_mix = nn.Conv2d(cfg.history_frames * cfg.frame_channels, cfg.channels[0], 3, padding=1)
        self.target_embed = TargetEmbedding(cfg.cond_dim, cfg.pose.scale_m)
        self.unet = ConditionedUNet(cfg.channels[0] + cfg.frame_channels, tuple(cfg.channels), cfg.blocks_per_level,
                                    cfg.cond_dim, cfg.use_checkpoint)
        self.head = nn.Conv2d(self.unet.out_channels, k * z, kernel_size=1)    # channels ordered (K, Z)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.prior_logit = nn.Parameter(torch.tensor(float(cfg.prior_logit_init)))
        self.pose_head = PoseHead(cfg.history_frames, cfg.future_frames, cfg.pose.hidden, cfg.pose.layers,
                                  cfg.pose.scale_m)

    # ---- pieces -------------------------------------------------------------------------------

    def _check(self, history_occ: Tensor, history_frames: Tensor, future_frames: Tensor | None) -> None:
        b = history_occ.shape[0]
        want = (b, self.cfg.history_frames, *self.spec.shape)
        if tuple(history_occ.shape) != want or history_occ.is_floating_point():
            raise ValueError(f"history_occ must be integer class ids of shape (B, T_h, X, Y, Z) = {want}, got "
                             f"{tuple(history_occ.shape)} {history_occ.dtype} (MotionWorldModelConfig.history_frames "
                             f"and the grid set T_h and X, Y, Z)")
        if tuple(history_frames.shape) != (b, self.cfg.history_frames, 4):
            raise ValueError(f"history_frames must be (B, T_h, 4) = {(b, self.cfg.history_frames, 4)} grid-frame poses "
                             f"in the last history frame, got {tuple(history_frames.shape)} (frames_from_batch makes them)")
        if future_frames is not None and tuple(future_frames.shape) != (b, self.cfg.future_frames, 4):
            raise ValueError(f"future_frames must be (B, F, 4) = {(b, self.cfg.future_frames, 4)}, got "
                             f"{tuple(future_frames.shape)}; for other lengths use rollout()")

    def encode_history(self, history_occ: Tensor, history_frames: Tensor) -> Tensor:
        """(B, T_h, X, Y, Z) ids + (B, T_h, 4) poses -> (B, C0, X, Y) features in the last grid frame."""
        b, t = history_occ.shape[:2]
        to_last = relative(history_frames.double(), torch.zeros_like(history_frames, dtype=torch.float64))
        aligned = warp_labels(history_occ.long().flatten(0, 1), to_last.reshape(b * t, 1, 4), self.spec,
                              fill=self.unobserved)                           # (B*T_h, 1, X, Y, Z)
        folded = self.fold(aligned[:, 0])                                     # (B*T_h, Cf, X, Y)
        folded = folded.reshape(b, t * folded.shape[1], *folded.shape[2:])    # (B, T_h*Cf, X, Y)
        return self.history_mix(folded)

    def forward(self, history_occ: Tensor, history_frames: Tensor, future_frames: Tensor | None = None,
                steps: Sequence[int] | None = None) -> MotionForecast:
        """Forecast the F future frames (see the module docstring for shapes and frames).

        ``steps`` (0-based future step indices, e.g. ``[1, 5]``) forecasts only those frames: the
        outputs then have S = len(steps) frames instead of F (cheaper training on sampled horizons;
        ``pred_frames`` keeps all F).
        """
        self._check(history_occ, history_frames, future_frames)
        b = history_occ.shape[0]
        x, y, z = self.spec.shape
        k = self.cfg.num_classes
        pred_frames = self.pose_head(history_frames)                          # (B, F, 4) float64
        frames = (pred_frames if future_frames is None else future_frames).detach().double()
        sel = list(range(self.cfg.future_frames)) if steps is None else [int(i) for i in steps]
        if not sel or min(sel) < 0 or max(sel) >= self.cfg.future_frames:
            raise ValueError(f"steps must be future step indices in 0..{self.cfg.future_frames - 1}, got {steps}")
        frames, f = frames[:, sel], len(sel)                                  # (B, S, 4)
        raw_prior = warp_labels(history_occ[:, -1].long(), frames, self.spec, fill=self.unobserved)  # (B, F, X, Y, Z)
        prior = raw_prior.masked_fill(raw_prior == self.unobserved, self.cfg.free)
        hist = self.encode_history(history_occ, history_frames)               # (B, C0, X, Y)
        hist_f = warp_features(hist, frames, self.spec)                       # (B, F, C0, X, Y)
        prior_f = self.fold(raw_prior.flatten(0, 1))                          # (B*F, Cf, X, Y)
        lead = (torch.tensor(sel, device=frames.device, dtype=torch.float32) + 1) / self.cfg.frame_rate_hz
        cond = self.target_embed(lead.repeat(b), frames.reshape(b * f, 4))    # (B*F, cond_dim)
        h = self.unet(torch.cat([hist_f.flatten(0, 1), prior_f], dim=1), cond)  # (B*F, C, X, Y)
        residual = self.head(h).float().reshape(b, f, k, z, x, y)              # (B, F, K, Z, X, Y)
        index = prior.permute(0, 1, 4, 2, 3).unsqueeze(2)                      # (B, F, 1, Z, X, Y)
        logits = residual.scatter_add(2, index, self.prior_logit.float().expand(index.shape))
        # Returned as a (B, F, X, Y, Z, K) view of the (B, F, K, Z, X, Y) tensor: no copy of the
        # largest tensor; the loss reads it back in the class-first layout.
        return MotionForecast(logits.permute(0, 1, 4, 5, 3, 2), prior, frames, pred_frames)

    # ---- rollouts -----------------------------------------------------------------------------

    @torch.no_grad()
    def rollout(self, history_occ: Tensor, history_frames: Tensor, future_frames: Tensor | None = None,
                num_steps: int | None = None) -> MotionRollout:
        """Roll the world out along a plan (given frames) or along the model's own predicted motion.

        Parameters
        ----------
        history_occ : (B, T_h, X, Y, Z) integer ids, each frame in its own grid frame.
        history_frames : (B, T_h, 4) poses of the history grid frames in the last one.
        future_frames : (B, N, 4) poses of the planned future grid frames in the last history grid
            frame (any N >= 1), or None to follow the pose head's prediction.
        num_steps : frames to forecast without a plan (default F); ignored with a plan.

        Passes of F frames are chained: after each pass the newest T_h frames (forecast or
        observed) and their poses become the history of the next.  Returns :class:`MotionRollout`.
        """
        f = self.cfg.future_frames
        n = future_frames.shape[1] if future_frames is not None else (num_steps or f)
        if n < 1:
            raise ValueError(f"rollout: need at least one future frame, got {n}")
        if future_frames is not None and (future_frames.dim() != 3 or future_frames.shape[-1] != 4):
            raise ValueError(f"rollout: future_frames must be (B, N, 4), got {tuple(future_frames.shape)}")
        self._check(history_occ, history_frames, None)
        occ, poses = history_occ.long(), history_frames.double()              # poses in the original last frame
        out_occ, out_frames = [], []
        for start in range(0, n, f):
            ref = poses[:, -1:]                                               # (B, 1, 4)
            hist_rel = relative(ref, poses)
            given = None
            if future_frames is not None:
                chunk = future_frames[:, start:start + f].double()
                pad = f - chunk.shape[1]
                if pad:
                    chunk = torch.cat([chunk, chunk[:, -1:].expand(-1, pad, -1)], dim=1)
                given = relative(ref, chunk)
            pred = self.forward(occ, hist_rel, given)
            frames_abs = compose(ref, pred.frames)                            # (B, F, 4) original frame
            keep = min(f, n - start)
            out_occ.append(pred.sem_pred[:, :keep])
            out_frames.append(frames_abs[:, :keep])
            occ = torch.cat([occ, pred.sem_pred[:, :keep]], dim=1)[:, -self.cfg.history_frames:]
            poses = torch.cat([poses, frames_abs[:, :keep]], dim=1)[:, -self.cfg.history_frames:]
        return MotionRollout(torch.cat(out_occ, dim=1), torch.cat(out_frames, dim=1))


def build_motion_world_model(cfg: MotionWorldModelConfig | None = None) -> MotionWorldModel:
    """The motion-aware world model of ``cfg`` (default: the small-grid preset)."""
    return MotionWorldModel(cfg if cfg is not None else MotionWorldModelConfig())


def frames_from_batch(batch: Mapping[str, Any], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Grid-frame poses of a collated :class:`vlwm.data.GazeboOccWorldDataset` batch.

    Uses ``history_poses`` (B, T_h, 13), ``future_poses`` (B, F, 13) and ``ego_height`` (B, T_h + F).
    Returns ``history_frames`` (B, T_h, 4) and ``future_frames`` (B, F, 4) float64, poses (x, y, z,
    yaw) in the last history grid frame — the ``frames`` of ``vlwm.eval.run.true_frames``.
    """
    hist = torch.as_tensor(batch["history_poses"], dtype=torch.float64)
    fut = torch.as_tensor(batch["future_poses"], dtype=torch.float64)
    t_h = hist.shape[1]
    frames = frame_poses_from_pose13(torch.cat([hist, fut], dim=1), torch.as_tensor(batch["ego_height"]), t_h - 1)
    return frames[:, :t_h].to(device), frames[:, t_h:].to(device)
