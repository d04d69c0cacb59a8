"""Ego-motion input and output heads of the world model (official ``PoseEncoder`` / ``PoseDecoder``,
SPEC §3.1), and the per-frame pose input.

Pose input of frame i (``(B, F, motion_dims + num_modes)`` float): the displacement to frame i+1
followed by the one-hot driving command, in the ego frame of frame i.

* Official (``motion_dims=2``): (dx, dy, cmd₀, cmd₁, cmd₂) — metres, x right, y forward
  (ego-LiDAR frame of nuScenes), 5-d.
* Drones (``motion_dims=4``): (dx, dy, dz, dyaw, cmd₀, cmd₁, cmd₂) — dz metres up, dyaw radians
  (right-hand rule about z).  :func:`vlwm.models.adapt.extend_pose_inputs` loads 2-d weights with
  the dz/dyaw input columns and output rows set to zero, so a pretrained model behaves exactly as
  before until fine-tuning moves them.

The decoder predicts one displacement per mode: ``(..., num_modes, motion_dims)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn


class PoseEncoder(nn.Module):
    """MLP ``pose_encoder``: Linear(in, out) -> ReLU -> ... -> Linear(out, out).

    Parameters
    ----------
    in_channels : int
        motion_dims + num_modes (5 officially).
    out_channels : int
        Pose-token width (= the transformer's token channels, 128).
    num_layers : int
        Linear layers (>= 2; 2 officially).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 2):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"PoseEncoder needs num_layers >= 2, got {num_layers}")
        layers: list[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(in_channels, out_channels), nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers.append(nn.Linear(out_channels, out_channels))
        self.pose_encoder = nn.Sequential(*layers)

    def forward(self, pose: Tensor) -> Tensor:
        """pose: (..., in_channels) float -> (..., out_channels) float."""
        return self.pose_encoder(pose)


class PoseDecoder(nn.Module):
    """MLP ``pose_decoder``: (Linear(in, in) -> ReLU) x (layers - 1) -> Linear(in, modes · motion).

    Parameters
    ----------
    in_channels : int
        Pose-feature width (the transformer's ``pose_output_channel``, 128).
    num_layers : int
        Linear layers (2 officially).
    num_modes : int
        Modes (3).
    motion_dims : int
        Displacement components per mode (2 officially, 4 for drones).
    """

    def __init__(self, in_channels: int, num_layers: int = 2, num_modes: int = 3, motion_dims: int = 2):
        super().__init__()
        self.num_modes, self.motion_dims = num_modes, motion_dims
        layers: list[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(in_channels, in_channels), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(in_channels, num_modes * motion_dims))
        self.pose_decoder = nn.Sequential(*layers)

    def forward(self, feat: Tensor) -> Tensor:
        """feat: (..., in_channels) -> (..., num_modes, motion_dims) per-mode displacement."""
        return self.pose_decoder(feat).reshape(*feat.shape[:-1], self.num_modes, self.motion_dims)


def select_mode(per_mode: Tensor, mode: Tensor) -> Tensor:
    """The displacement of the commanded mode.

    Parameters
    ----------
    per_mode : (..., num_modes, motion_dims) float
    mode : (..., num_modes) one-hot (float or int)

    Returns
    -------
    (..., motion_dims) float — exactly the selected row (other rows are multiplied by 0).
    """
    return (per_mode * mode.to(per_mode.dtype).unsqueeze(-1)).sum(dim=-2)


def poses_from_metas(metas: Sequence[dict], device: torch.device | str | None = None,
                     ) -> tuple[Tensor, Tensor]:
    """Stack the official per-sample ``metas`` (``rel_poses`` (F, P), ``gt_mode`` (F, M)) into tensors.

    Returns
    -------
    rel_poses : (B, F, P) float32 displacement to the next frame.
    gt_mode : (B, F, M) float32 one-hot command.
    """
    rel = torch.from_numpy(np.stack([np.asarray(m["rel_poses"], dtype=np.float64) for m in metas]))
    mode = torch.from_numpy(np.stack([np.asarray(m["gt_mode"], dtype=np.float64) for m in metas]))
    return rel.float().to(device), mode.float().to(device)
