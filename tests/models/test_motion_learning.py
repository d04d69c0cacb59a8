"""The residual model learns what the ego warp cannot: a moving box.

A tiny synthetic world (16 x 16 x 3 voxels of 1 m): a street (driveable surface) at z = 0 and a
2 x 2 car at z = 1 moving one voxel per frame along +-x or +-y; the ego moves forward one voxel per
frame, so the warp prior compensates the ego motion exactly and leaves the car where it was last
seen.  After a short seeded training run the model must place the car better than the prior on
held-out sequences (car IoU over the future frames).
"""

from __future__ import annotations

import torch

from vlwm.labels import FREE, OCC3D_ID
from vlwm.models.motion_config import MotionLossConfig, MotionWorldModelConfig, PoseHeadConfig
from vlwm.models.motion_losses import motion_world_model_loss
from vlwm.models.motion_world_model import build_motion_world_model

CAR, ROAD = OCC3D_ID["car"], OCC3D_ID["driveable_surface"]
CFG = MotionWorldModelConfig(point_cloud_range=(-8.0, -8.0, 0.0, 8.0, 8.0, 3.0), voxel_size=(1.0, 1.0, 1.0),
                             history_frames=2, future_frames=2, class_embed_dim=2, frame_channels=4,
                             channels=(16, 16, 16), cond_dim=8, pose=PoseHeadConfig(hidden=8))
EGO_STEP = 1.0                       # metres forward per frame (one voxel)
DIRECTIONS = torch.tensor([[1, 0], [-1, 0], [0, 1], [0, -1]])


def moving_boxes(n: int, seed: int):
    """n windows of 4 frames: occupancy (n, 4, 16, 16, 3) uint8 in each frame's grid frame, frame poses."""
    g = torch.Generator().manual_seed(seed)
    nx, ny, _ = CFG.grid_shape
    occ = torch.full((n, 4, nx, ny, 3), FREE, dtype=torch.uint8)
    occ[..., 0] = ROAD
    d = DIRECTIONS[torch.randint(0, 4, (n,), generator=g)]                   # (n, 2) voxels per frame (world)
    start = torch.randint(5, 11, (n, 2), generator=g)                        # world voxel of the car at frame 0
    for t in range(4):
        ego = t * int(EGO_STEP)                                              # ego x offset (voxels) at frame t
        for i in range(n):
            x, y = (start[i] + t * d[i]).tolist()
            x -= ego                                                         # into frame t's grid
            occ[i, t, max(x, 0):max(x + 2, 0), y:y + 2, 1] = CAR
    frames = torch.zeros(n, 4, 4, dtype=torch.float64)
    frames[:, :, 0] = (torch.arange(4, dtype=torch.float64) - 1) * EGO_STEP  # poses in frame 1 (the last history)
    return occ, frames


def car_iou(pred: torch.Tensor, target: torch.Tensor) -> float:
    p, t = pred == CAR, target == CAR
    return float((p & t).sum()) / max(1, int((p | t).sum()))


def test_residual_model_beats_the_warp_prior_on_a_moving_box():
    torch.manual_seed(0)
    model = build_motion_world_model(CFG)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    occ, frames = moving_boxes(64, seed=0)
    loss_cfg = MotionLossConfig(changed_weight=5.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(120):
        idx = torch.randint(0, len(occ), (16,), generator=g)
        out = model(occ[idx, :2], frames[idx, :2], frames[idx, 2:])
        loss = motion_world_model_loss(out, occ[idx, 2:], frames[idx, 2:], loss_cfg)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    test_occ, test_frames = moving_boxes(32, seed=123)
    with torch.no_grad():
        out = model(test_occ[:, :2], test_frames[:, :2], test_frames[:, 2:])
    prior_iou, model_iou = car_iou(out.prior, test_occ[:, 2:]), car_iou(out.sem_pred, test_occ[:, 2:])
    # The prior leaves the car behind: 1/3 overlap one frame ahead, none two frames ahead.
    assert prior_iou < 0.25
    assert model_iou > prior_iou + 0.3, (prior_iou, model_iou)
