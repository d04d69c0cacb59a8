"""The world model: official ``TransVQVAE`` with its autoregressive rollout (SPEC §3).

The frozen scene tokenizer turns each occupancy frame into a grid of code tokens; the transformer
predicts the next frame's code logits and an ego-pose feature from the window so far; the pose
decoder turns the feature into one displacement per driving mode.

* :meth:`TransVQVAE.forward` — teacher-forced (official ``forward_train_with_plan``; with
  ``decode=True`` also ``forward_inference_with_plan``'s decoded occupancy).
* :meth:`TransVQVAE.rollout` — greedy autoregressive forecast conditioned on the ground-truth
  commands, feeding back its own displacement (official ``forward_autoreg_with_pose``).

Differences from the official code, none of which changes a number: poses are tensors instead of
``metas`` dicts (:func:`vlwm.models.pose.poses_from_metas` converts), outputs are named tuples
instead of string-keyed dicts, behaviour is chosen by arguments instead of ``self.training``, the
rollout caches the per-frame key/value stream (``use_cache=False`` re-runs the window like the
official code), and nothing calls ``.cuda()``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from vlwm.models.config import WorldModelConfig
from vlwm.models.pose import PoseDecoder, PoseEncoder, select_mode
from vlwm.models.transformer import PlanUAutoRegTransformer
from vlwm.models.vae import VAERes2D, occupancy_predictions


class WorldModelOutput(NamedTuple):
    """Teacher-forced outputs; frame i of every field belongs to target frame i + offset."""

    code_logits: Tensor
    """(B, F, codebook_size, h, w) float: next-frame code logits (official ``ce_inputs``, flattened there)."""
    code_labels: Tensor
    """(B, F, h, w) int64: the codes of the target frames (``ce_labels``)."""
    pose_decoded: Tensor
    """(B, F, num_modes, motion_dims) float: predicted displacement per mode."""
    target_rel_poses: Tensor
    """(B, F, motion_dims) float: ground-truth displacements of the target frames (``output_metas``)."""
    target_gt_mode: Tensor
    """(B, F, num_modes) float: ground-truth commands of the target frames."""
    logits: Tensor | None = None
    """(B, F, H, W, D, num_classes) float, decoded from the argmax codes (``decode=True`` only)."""
    sem_pred: Tensor | None = None
    """(B, F, H, W, D) int64 class ids (``decode=True`` only)."""
    iou_pred: Tensor | None = None
    """(B, F, H, W, D) int64, 1 = occupied (``decode=True`` only)."""


class RolloutOutput(NamedTuple):
    """Autoregressive forecast of frames ``mid .. end - 1`` (T = end - mid)."""

    code_logits: Tensor
    """(B, T, codebook_size, h, w) float: logits of each predicted frame's codes."""
    code_labels: Tensor
    """(B, T, h, w) int64: ground-truth codes of those frames."""
    pose_decoded: Tensor
    """(B, T, num_modes, motion_dims) float: per-mode displacement of each predicted step."""
    poses: Tensor
    """(B, T, motion_dims) float: the commanded mode's displacement, fed back as the next pose input."""
    target_rel_poses: Tensor
    """(B, T, motion_dims) float: ground-truth displacements."""
    target_gt_mode: Tensor
    """(B, T, num_modes) float: ground-truth commands (used to select modes)."""
    logits: Tensor
    """(B, T, H, W, D, num_classes) float: decoded occupancy logits."""
    sem_pred: Tensor
    """(B, T, H, W, D) int64 class ids."""
    iou_pred: Tensor
    """(B, T, H, W, D) int64, 1 = occupied."""
    target_occs: Tensor
    """(B, T, H, W, D) int64: ground-truth occupancy of the predicted frames."""


class TransVQVAE(nn.Module):
    """Tokenizer + transformer + pose heads.  State-dict prefixes: ``vae.``, ``transformer.``,
    ``pose_encoder.``, ``pose_decoder.``."""

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.offset = cfg.offset
        self.vae = VAERes2D(cfg.vae)
        self.transformer = PlanUAutoRegTransformer(cfg.transformer)
        self.pose_encoder = PoseEncoder(cfg.pose.in_channels, cfg.transformer.img_shape[0], cfg.pose.encoder_layers)
        self.pose_decoder = PoseDecoder(cfg.transformer.pose_output_channel, cfg.pose.decoder_layers,
                                        cfg.pose.num_modes, cfg.pose.motion_dims)

    def freeze_tokenizer(self) -> None:
        """Stop gradients into the VAE (the official ``freeze_dict = {'vae': True}``)."""
        self.vae.requires_grad_(False)

    # ---- pieces -------------------------------------------------------------------------------

    def tokenize(self, occ: Tensor) -> tuple[Tensor, Tensor, list[tuple[int, int]]]:
        """Quantised tokens of every frame.

        Parameters
        ----------
        occ : (B, F, H, W, D) int64 class ids.

        Returns
        -------
        tokens : (B, F, code_dim, h, w) float, straight-through values (before post_quant_conv).
        indices : (B, F, h, w) int64 codes.
        sizes : encoder sizes for decoding.
        """
        b = occ.shape[0]
        q, sizes = self.vae.tokenize(occ)
        return q.z_q.unflatten(0, (b, -1)), q.indices.unflatten(0, (b, -1)), sizes

    def encode_poses(self, rel_poses: Tensor, gt_mode: Tensor) -> Tensor:
        """Pose tokens of ``cat(rel_poses, gt_mode)``: (B, F, P), (B, F, M) -> (B, F, C)."""
        dtype = self.pose_encoder.pose_encoder[0].weight.dtype
        return self.pose_encoder(torch.cat([rel_poses.to(dtype), gt_mode.to(dtype)], dim=-1))

    def decode_codes(self, indices: Tensor, sizes: list[tuple[int, int]]) -> tuple[Tensor, Tensor, Tensor]:
        """Occupancy of code indices (B, F, h, w): logits (B, F, H, W, D, C), sem_pred, iou_pred."""
        logits = self.vae.decode_codes(indices, sizes)
        return (logits, *occupancy_predictions(logits))

    # ---- teacher forcing ----------------------------------------------------------------------

    def forward(self, occ: Tensor, rel_poses: Tensor, gt_mode: Tensor, decode: bool = False) -> WorldModelOutput:
        """Predict frames ``offset .. F-1`` from frames ``0 .. F-1-offset`` (teacher forced).

        Parameters
        ----------
        occ : (B, F, H, W, D) int64 class ids, F = num_frames + offset officially (16), at most that.
        rel_poses : (B, F, motion_dims) float, displacement of frame i to frame i + 1 (pose.py).
        gt_mode : (B, F, num_modes) one-hot command.
        decode : also decode the argmax codes to occupancy (the official eval forward).
        """
        b, f = occ.shape[:2]
        n = f - self.offset
        if not 1 <= n <= self.cfg.num_frames:
            raise ValueError(f"a window of {f} frames gives {n} input frames; need 1..{self.cfg.num_frames} "
                             f"(num_frames + offset = {self.cfg.num_frames + self.offset} frames officially)")
        self._check_poses(rel_poses, gt_mode, b, f)
        tokens, indices, sizes = self.tokenize(occ)
        pose_tokens = self.encode_poses(rel_poses[:, :n], gt_mode[:, :n])
        code_logits, pose_feats = self.transformer(tokens[:, :n], pose_tokens)
        out = WorldModelOutput(code_logits, indices[:, self.offset:].detach(), self.pose_decoder(pose_feats),
                               rel_poses[:, self.offset:], gt_mode[:, self.offset:])
        if not decode:
            return out
        logits, sem_pred, iou_pred = self.decode_codes(code_logits.argmax(dim=2), sizes)
        return out._replace(logits=logits, sem_pred=sem_pred, iou_pred=iou_pred)

    # ---- autoregressive rollout ---------------------------------------------------------------

    def rollout(self, occ: Tensor, rel_poses: Tensor, gt_mode: Tensor, start: int = 0, mid: int = 5,
                end: int = 11, use_cache: bool = True) -> RolloutOutput:
        """Forecast frames ``mid .. end-1`` from frames ``start .. mid-1`` (official eval: 0, 5, 11).

        Each step takes the argmax codes of the newest frame (exact codebook vectors), decodes its
        pose feature, selects the ground-truth command's displacement and encodes it (with the
        command) as the next pose token.  History tokens are the straight-through values, like
        the official code.

        Parameters
        ----------
        occ : (B, F, H, W, D) int64, F >= end; frames mid.. serve only as targets.
        rel_poses : (B, F, motion_dims) float; only frames start..mid-1 are inputs.
        gt_mode : (B, F, num_modes) one-hot; commands of every frame up to end - 1 are used.
        use_cache : keep the per-frame key/value stream between steps (same numbers, much less
            work); False re-runs the whole window per step as the official ``forward_autoreg_step``.

        Run it under ``torch.no_grad()`` for evaluation, as the official code does.
        """
        b, f = occ.shape[:2]
        if not 0 <= start < mid < end <= f:
            raise ValueError(f"need 0 <= start < mid < end <= frames ({f}), got {start}, {mid}, {end}")
        if end - 1 - start > self.cfg.num_frames:
            raise ValueError(f"a rollout window of {end - 1 - start} frames exceeds num_frames={self.cfg.num_frames}")
        self._check_poses(rel_poses, gt_mode, b, f)
        window, indices, sizes = self.tokenize(occ[:, start:end])    # later frames are never used
        tokens = window[:, :mid - start]
        pose_tokens = self.encode_poses(rel_poses[:, start:mid], gt_mode[:, start:mid])
        context = self.transformer.context(tokens, pose_tokens) if use_cache else None
        step_logits, step_feats, step_poses, new_codes = [], [], [], []
        for i in range(mid, end):
            if context is not None:
                logits, feats = self.transformer.predict(tokens[:, -1:], pose_tokens[:, -1:], context)
            else:
                logits, feats = self.transformer(tokens, pose_tokens)
                logits, feats = logits[:, -1:], feats[:, -1:]
            codes = logits.detach().argmax(dim=2)                                    # (B, 1, h, w)
            token = self.vae.vqvae.lookup(codes.flatten(0, 1)).unflatten(0, (b, 1))  # (B, 1, C, h, w)
            mode = gt_mode[:, i:i + 1]
            motion = select_mode(self.pose_decoder(feats), mode)                      # (B, 1, P)
            pose_token = self.encode_poses(motion, mode)
            tokens = torch.cat([tokens, token], dim=1)
            pose_tokens = torch.cat([pose_tokens, pose_token], dim=1)
            if context is not None and i + 1 < end:
                context = context.extend(self.transformer.context(token, pose_token, first_frame=i - start))
            step_logits.append(logits)
            step_feats.append(feats)
            step_poses.append(motion.detach())
            new_codes.append(codes)
        codes = torch.cat(new_codes, dim=1)
        occ_logits, sem_pred, iou_pred = self.decode_codes(codes, sizes)
        return RolloutOutput(
            code_logits=torch.cat(step_logits, dim=1), code_labels=indices[:, mid - start:],
            pose_decoded=self.pose_decoder(torch.cat(step_feats, dim=1)), poses=torch.cat(step_poses, dim=1),
            target_rel_poses=rel_poses[:, mid:end], target_gt_mode=gt_mode[:, mid:end],
            logits=occ_logits, sem_pred=sem_pred, iou_pred=iou_pred, target_occs=occ[:, mid:end])

    def _check_poses(self, rel_poses: Tensor, gt_mode: Tensor, b: int, f: int) -> None:
        p, m = self.cfg.pose.motion_dims, self.cfg.pose.num_modes
        if tuple(rel_poses.shape) != (b, f, p):
            hint = (" (drone models take (dx, dy, dz, dyaw); pad official 2-d poses with zeros)"
                    if rel_poses.shape[-1] != p else "")
            raise ValueError(f"rel_poses has shape {tuple(rel_poses.shape)}, expected (B, F, motion_dims) = "
                             f"{(b, f, p)}{hint}")
        if tuple(gt_mode.shape) != (b, f, m):
            raise ValueError(f"gt_mode has shape {tuple(gt_mode.shape)}, expected (B, F, num_modes) = {(b, f, m)}")
