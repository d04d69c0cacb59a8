"""Typed configuration of the motion-aware world model (:mod:`vlwm.models.motion_world_model`) and its presets.

:class:`MotionWorldModelConfig` holds the grid (the warp needs metres, not just a shape), the window
(history / future frames, frame rate), the backbone widths, the pose head
(:class:`PoseHeadConfig`) and execution options; :class:`MotionLossConfig` the loss weights.
Presets: :func:`small_motion_world_model_config` (the demo's 64 m x 64 m x 40 m grid at
1.6 x 1.6 x 2 m: 40 x 40 x 20, ``config/demo_dataset.py``) and
:func:`aerial_motion_world_model_config` (the ``aerial`` preset, 200 x 200 x 121 at
0.4 x 0.4 x 1.25 m).  :meth:`MotionWorldModelConfig.to_dict` / :meth:`from_dict` are what
checkpoints store (plain types only, so ``torch.load(weights_only=True)`` reads them); an unknown
key is an error naming it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from vlwm.gt.grid import AERIAL, GridSpec
from vlwm.labels import FREE, NUM_OCC_CLASSES

#: The demo's grid (= config/demo_dataset.py and vlwm.demo.DEMO_RANGE / DEMO_VOXEL; tested).
SMALL_POINT_CLOUD_RANGE: tuple[float, ...] = (-32.0, -32.0, -2.0, 32.0, 32.0, 38.0)
SMALL_VOXEL_SIZE: tuple[float, ...] = (1.6, 1.6, 2.0)


@dataclass(frozen=True)
class PoseHeadConfig:
    """The pose head: future grid frames from the history's, constant velocity plus a learnt residual."""

    hidden: int = 64
    """Width of the residual MLP's hidden layers."""
    layers: int = 2
    """Linear layers of the residual MLP (>= 1; its last layer starts at zero = constant velocity)."""
    scale_m: float = 10.0
    """Metres that the MLP's inputs and translation outputs are divided / multiplied by (keeps them O(1))."""

    def validate(self) -> None:
        if self.hidden < 1 or self.layers < 1 or not self.scale_m > 0:
            raise ValueError(f"PoseHeadConfig needs hidden >= 1, layers >= 1, scale_m > 0, got {self}")


@dataclass(frozen=True)
class MotionWorldModelConfig:
    """The motion-aware world model: a BEV U-Net predicting per-voxel class logits as a residual on the ego-warp prior."""

    point_cloud_range: tuple[float, ...] = SMALL_POINT_CLOUD_RANGE
    """Grid extent ``[x0, y0, z0, x1, y1, z1]`` (metres, grid frame); the warp needs it."""
    voxel_size: tuple[float, ...] = SMALL_VOXEL_SIZE
    """Voxel size ``[dx, dy, dz]`` (metres)."""
    num_classes: int = NUM_OCC_CLASSES
    """Occupancy labels, free included (18)."""
    free: int = FREE
    """The free label (17): the prior's label outside the last observed grid."""
    history_frames: int = 4
    """Observed frames T_h (the last one is the reference frame of all poses)."""
    future_frames: int = 6
    """Frames F predicted per forward pass (rollouts chain passes for longer plans)."""
    frame_rate_hz: float = 2.0
    """Rate of the frames (Hz): future step k lies (k + 1) / rate seconds ahead (time embedding)."""
    class_embed_dim: int = 4
    """Class-embedding width per voxel; a column of Z voxels folds into Z * class_embed_dim channels."""
    frame_channels: int = 16
    """Channels of each folded frame (history frames and the prior) after a 1x1 projection."""
    channels: tuple[int, ...] = (32, 64, 128)
    """U-Net widths per level (len - 1 downsamplings by 2; the grid's X, Y need not divide)."""
    blocks_per_level: int = 1
    """Residual blocks per U-Net level, in the encoder and the decoder."""
    cond_dim: int = 64
    """Width of the target embedding (lead time + the target frame's pose) fed to every block."""
    prior_logit_init: float = 4.0
    """Initial logit given to the prior's class (learnt); the residual head starts at zero, so the
    initial argmax is exactly the prior's label."""
    pose: PoseHeadConfig = field(default_factory=PoseHeadConfig)
    """The pose head."""
    use_checkpoint: bool = False
    """Execution option: recompute U-Net blocks in the backward pass (less memory, same numbers)."""

    @property
    def spec(self) -> GridSpec:
        """The grid of every frame (validated; raises naming the bad number)."""
        return GridSpec(tuple(self.point_cloud_range), tuple(self.voxel_size))

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(X, Y, Z) voxels."""
        return self.spec.shape

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the combination cannot be built."""
        self.spec                                                            # grid numbers
        for name in ("num_classes", "history_frames", "future_frames", "class_embed_dim", "frame_channels",
                     "blocks_per_level", "cond_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"MotionWorldModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.free < self.num_classes:
            raise ValueError(f"MotionWorldModelConfig.free = {self.free} is not a label of 0..{self.num_classes - 1}")
        if not self.frame_rate_hz > 0:
            raise ValueError(f"MotionWorldModelConfig.frame_rate_hz must be > 0, got {self.frame_rate_hz}")
        if not self.channels or min(self.channels) < 4:
            raise ValueError(f"MotionWorldModelConfig.channels must be non-empty widths >= 4 "
                             f"(GroupNorm), got {self.channels}")
        if not self.prior_logit_init > 0:
            raise ValueError(f"MotionWorldModelConfig.prior_logit_init must be > 0 so that the initial argmax is "
                             f"the prior, got {self.prior_logit_init}")
        self.pose.validate()

    # ---- checkpoint form ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-typed dict (lists for tuples) for checkpoints and run directories."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MotionWorldModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them and the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"MotionWorldModelConfig: unknown keys {unknown}; known: {sorted(known)}")
        kw = dict(d)
        if "pose" in kw and not isinstance(kw["pose"], PoseHeadConfig):
            pk = {f.name for f in fields(PoseHeadConfig)}
            bad = sorted(set(kw["pose"]) - pk)
            if bad:
                raise ValueError(f"MotionWorldModelConfig.pose: unknown keys {bad}; known: {sorted(pk)}")
            kw["pose"] = PoseHeadConfig(**kw["pose"])
        for name in ("point_cloud_range", "voxel_size", "channels"):
            if name in kw:
                kw[name] = tuple(kw[name])
        cfg = cls(**kw)
        cfg.validate()
        return cfg


@dataclass(frozen=True)
class MotionLossConfig:
    """Weights of :func:`vlwm.models.motion_losses.motion_world_model_loss`."""

    ce: float = 1.0
    """Voxel cross-entropy of the future frames."""
    lovasz: float = 0.0
    """Lovász-softmax (0 = off; it sorts every voxel's error: costly on big grids)."""
    pose: float = 0.1
    """Pose-head error: L2 of the predicted future frame origins (m) plus ``yaw_weight`` x |yaw error| (rad)."""
    yaw_weight: float = 10.0
    """Metres one radian of heading error counts as in the pose term."""
    class_weights: tuple[float, ...] | None = None
    """Per-label cross-entropy weights (num_classes of them), or None for uniform."""
    changed_weight: float = 1.0
    """Cross-entropy weight of voxels whose true label differs from the prior's (moving objects,
    revealed space): > 1 focuses the residual on what the warp gets wrong."""

    def validate(self, num_classes: int) -> None:
        if min(self.ce, self.lovasz, self.pose, self.yaw_weight) < 0 or not self.changed_weight > 0:
            raise ValueError(f"MotionLossConfig weights must be >= 0 (changed_weight > 0), got {self}")
        if self.class_weights is not None and len(self.class_weights) != num_classes:
            raise ValueError(f"MotionLossConfig.class_weights has {len(self.class_weights)} entries; the model "
                             f"has {num_classes} labels")


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


def small_motion_world_model_config(**overrides) -> MotionWorldModelConfig:
    """The demo / small-benchmark grid 40 x 40 x 20 (1.6 x 1.6 x 2 m), 4 history + 6 future frames at 2 Hz.

    About 0.6 M parameters; a training step of batch 4 takes about a second on 2 CPU cores.
    """
    return replace(MotionWorldModelConfig(), **overrides)


def aerial_motion_world_model_config(**overrides) -> MotionWorldModelConfig:
    """The full aerial grid (``vlwm.gt.grid.AERIAL``: 200 x 200 x 121 at 0.4 x 0.4 x 1.25 m).

    Wider U-Net with four levels (200 -> 100 -> 50 -> 25), gradient checkpointing on: the output
    alone is F x 200 x 200 x 121 x 18 logits (0.35 GB per sample and frame in float32).
    """
    spec: GridSpec = AERIAL
    base = MotionWorldModelConfig(point_cloud_range=tuple(spec.point_cloud_range), voxel_size=tuple(spec.voxel_size),
                                  class_embed_dim=2, frame_channels=32, channels=(64, 96, 128, 192),
                                  cond_dim=128, use_checkpoint=True)
    return replace(base, **overrides)
