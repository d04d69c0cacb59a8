"""Models: the OccWorld scene tokenizer (VQ-VAE) and world model, official-checkpoint compatible.

* Build: :func:`build_vqvae`, :func:`build_world_model` (typed configs, :mod:`vlwm.models.config`
  presets) or :func:`build_from_official_config` (an official config's ``model`` dict).
* Run: :class:`VAERes2D` (``forward`` / ``tokenize`` / ``decode_codes``), :class:`TransVQVAE`
  (teacher-forced ``forward``, autoregressive ``rollout``).
* Train: :mod:`vlwm.models.losses` (:func:`vae_loss`, :func:`world_model_loss`).
* Load: :func:`load_official_checkpoint` (strict, ``weights_only=True``, with a report);
  adapt with :func:`adapt_depth` (height levels) and :func:`extend_pose_inputs` (drone poses).

See ``docs/models.md`` for the map to the official names.
"""

from vlwm.models.adapt import AdaptReport, adapt_depth, extend_pose_inputs
from vlwm.models.builders import build_from_official_config, build_vqvae, build_world_model
from vlwm.models.checkpoint import (CheckpointMismatchError, LoadReport, load_official_checkpoint,
                                    load_state_dict_checked, read_checkpoint)
from vlwm.models.config import (PoseConfig, TransformerConfig, VAEConfig, WorldModelConfig, official_vae_config,
                                official_world_model_config, tiny_vae_config, tiny_world_model_config)
from vlwm.models.losses import (VAELosses, VAELossWeights, WorldModelLosses, WorldModelLossWeights, vae_loss,
                                world_model_loss)
from vlwm.models.pose import poses_from_metas
from vlwm.models.transformer import PlanUAutoRegTransformer
from vlwm.models.vae import VAEOutput, VAERes2D
from vlwm.models.world_model import RolloutOutput, TransVQVAE, WorldModelOutput

__all__ = [
    "AdaptReport", "CheckpointMismatchError", "LoadReport", "PlanUAutoRegTransformer", "PoseConfig",
    "RolloutOutput", "TransVQVAE", "TransformerConfig", "VAEConfig", "VAELossWeights", "VAELosses", "VAEOutput",
    "VAERes2D", "WorldModelConfig", "WorldModelLossWeights", "WorldModelLosses", "WorldModelOutput",
    "adapt_depth", "build_from_official_config", "build_vqvae", "build_world_model", "extend_pose_inputs",
    "load_official_checkpoint", "load_state_dict_checked", "official_vae_config", "official_world_model_config",
    "poses_from_metas", "read_checkpoint", "tiny_vae_config", "tiny_world_model_config", "vae_loss",
    "world_model_loss",
]

# The motion-aware world model (residual on the ego-warp prior; docs/models.md "Motion-aware world model").
from vlwm.models.ego_warp import ego_warp, frame_poses_from_pose13, warp_features, warp_labels
from vlwm.models.motion_checkpoint import MotionCheckpointError, load_motion_checkpoint, save_motion_checkpoint
from vlwm.models.motion_config import (MotionLossConfig, MotionWorldModelConfig, PoseHeadConfig,
                                       aerial_motion_world_model_config, small_motion_world_model_config)
from vlwm.models.motion_losses import MotionLosses, motion_world_model_loss
from vlwm.models.motion_world_model import (MotionForecast, MotionRollout, MotionWorldModel, build_motion_world_model,
                                           frames_from_batch)

__all__ += [
    "MotionCheckpointError", "MotionForecast", "MotionLossConfig", "MotionLosses", "MotionRollout", "MotionWorldModel",
    "MotionWorldModelConfig", "PoseHeadConfig", "aerial_motion_world_model_config", "build_motion_world_model",
    "ego_warp", "frame_poses_from_pose13", "frames_from_batch", "load_motion_checkpoint", "motion_world_model_loss",
    "save_motion_checkpoint", "small_motion_world_model_config", "warp_features", "warp_labels",
]
