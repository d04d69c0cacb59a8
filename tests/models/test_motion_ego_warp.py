"""vlwm.models.ego_warp: the torch ego warp against the eval baseline, and its geometric properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlwm.eval.baselines import ego_warp as eval_ego_warp
from vlwm.eval.trajectory import grid_motion_from_poses
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE
from vlwm.models.ego_warp import (compose, ego_warp, frame_poses_from_pose13, invert, matrix_to_pose,
                                  pose_to_matrix, relative, warp_features, warp_labels)

SPEC = GridSpec((-8.0, -6.4, -2.0, 8.0, 6.4, 4.0), (0.8, 0.8, 0.5))   # 20 x 16 x 12, non-square
SQUARE = GridSpec((-6.4, -6.4, -1.0, 6.4, 6.4, 3.0), (0.8, 0.8, 0.5))  # 16 x 16 x 8


def _grid(spec: GridSpec, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 18, (batch, *spec.shape), generator=g).to(torch.uint8)


def _motions(batch: int, steps: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([3.0, 3.0, 1.0, 0.7], dtype=torch.float64)
    return torch.randn(batch, steps, 4, generator=g, dtype=torch.float64) * scale


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_eval_baseline_torch_and_numpy(seed):
    last, motion = _grid(SPEC, 3, seed), _motions(3, 5, seed + 10)
    # Include whole-voxel and half-voxel shifts (centres land on voxel boundaries) and pure turns.
    motion[0, 0] = torch.tensor([0.8, -1.6, 0.5, 0.0], dtype=torch.float64)
    motion[0, 1] = torch.tensor([0.4, 0.4, 0.25, 0.0], dtype=torch.float64)
    motion[0, 2] = torch.tensor([0.0, 0.0, 0.0, math.pi / 2], dtype=torch.float64)
    ref = eval_ego_warp(last, motion, SPEC)
    assert torch.equal(ego_warp(last, motion, SPEC), ref)
    assert np.array_equal(ego_warp(last.numpy(), motion.numpy(), SPEC), ref.numpy())
    assert torch.equal(warp_labels(last, motion, SPEC), ref)
    # Some voxels come from the grid, some fall outside: the comparison is not trivial.
    assert 0.2 < float((ref == FREE).float().mean()) < 0.9


def test_accepts_level_transforms():
    last, motion = _grid(SPEC, 2, 3), _motions(2, 3, 4)
    assert torch.equal(warp_labels(last, pose_to_matrix(motion), SPEC), warp_labels(last, motion, SPEC))


def test_identity_motion_is_identity():
    last = _grid(SPEC, 2, 5)
    out = warp_labels(last, torch.zeros(2, 3, 4, dtype=torch.float64), SPEC)
    assert torch.equal(out, last[:, None].expand(-1, 3, -1, -1, -1))
    feat = torch.randn(2, 5, *SPEC.shape)
    assert torch.equal(warp_features(feat, torch.zeros(2, 1, 4), SPEC)[:, 0], feat)


def test_translation_round_trip_on_overlap():
    last = _grid(SPEC, 1, 6)
    t = torch.tensor([[[3 * 0.8, -2 * 0.8, 2 * 0.5, 0.0]]], dtype=torch.float64)   # whole voxels (3, -2, 2)
    moved = warp_labels(last, t, SPEC)[:, 0]
    back = warp_labels(moved, invert(t), SPEC)[:, 0]
    overlap = torch.zeros(SPEC.shape, dtype=torch.bool)
    overlap[3:, :-2, 2:] = True                                  # voxels whose shifted centre stays inside
    assert torch.equal(back[0][overlap], last[0][overlap])
    assert bool((back[0][~overlap] == FREE).all())
    # The shift itself: target voxel (i, j, k) shows source voxel (i + 3, j - 2, k + 2).
    assert torch.equal(moved[0, :-3, 2:, :-2], last[0, 3:, :-2, 2:])


def test_quarter_turn_is_a_rotation_of_the_array():
    last = _grid(SQUARE, 1, 7)
    out = warp_labels(last, torch.tensor([[[0.0, 0.0, 0.0, math.pi / 2]]], dtype=torch.float64), SQUARE)[0, 0]
    # Target (x, y) samples source (-y, x): out[i, j] = last[n-1-j, i], i.e. rot90 by -1 in (x, y).
    assert torch.equal(out, torch.rot90(last[0], k=-1, dims=(0, 1)))


def test_feature_warp_matches_label_warp():
    last = _grid(SPEC, 2, 8)
    motion = _motions(2, 4, 9)
    onehot = torch.nn.functional.one_hot(last.long(), 18).permute(0, 4, 1, 2, 3).float()   # (B, K, X, Y, Z)
    warped = warp_features(onehot, motion, SPEC)                                          # (B, T, K, X, Y, Z)
    labels = warp_labels(last, motion, SPEC)
    inside = warped.sum(dim=2) > 0
    assert torch.equal(warped.argmax(dim=2)[inside], labels[inside].long())
    assert bool((labels[~inside] == FREE).all())
    # BEV maps: the columns of the 3D warp with dz = 0.
    motion[..., 2] = 0.0
    bev = warp_features(onehot[..., 0], motion, SPEC)
    assert torch.equal(bev, warp_features(onehot, motion, SPEC)[..., 0])


def test_frame_algebra():
    a, b = _motions(4, 2, 11), _motions(4, 2, 12)
    assert torch.allclose(compose(a, invert(a))[..., :3], torch.zeros(4, 2, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(relative(a, b), compose(invert(a), b), atol=1e-12)
    assert torch.equal(relative(torch.zeros_like(b), b), b)               # exact: cos 0 = 1, sin 0 = 0
    m = pose_to_matrix(a)
    assert torch.allclose(torch.cos(matrix_to_pose(m)[..., 3] - a[..., 3]), torch.ones(4, 2, dtype=torch.float64))
    assert torch.allclose(pose_to_matrix(compose(a, b)), m @ pose_to_matrix(b), atol=1e-12)


def test_tilted_transform_is_refused():
    m = torch.eye(4, dtype=torch.float64)
    c, s = math.cos(0.1), math.sin(0.1)
    m[1:3, 1:3] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)     # roll
    with pytest.raises(ValueError, match="not level"):
        matrix_to_pose(m)


def test_frame_poses_from_pose13_match_eval():
    rng = np.random.default_rng(0)
    n = 10
    yaw = np.cumsum(rng.normal(0, 0.8, n)) + 3.0                           # crosses +-pi
    roll, pitch = rng.normal(0, 0.1, n), rng.normal(0, 0.1, n)
    # Quaternion (w, x, y, z) of R_z(yaw) R_y(pitch) R_x(roll).
    cy, sy, cp, sp, cr, sr = (f(a / 2) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    q = np.stack([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                  cr * cp * sy - sr * sp * cy], axis=1) * 1.7                 # any norm
    poses = np.zeros((n, 13))
    poses[:, :3] = rng.normal(0, 50, (n, 3))
    poses[:, 3:7] = q
    height = rng.uniform(1, 30, n)
    ref = grid_motion_from_poses(poses, height, 4)
    ours = frame_poses_from_pose13(torch.from_numpy(poses), torch.from_numpy(height), 4).numpy()
    # float64 arithmetic on values of O(100 m): agreement far below a millimetre / microradian.
    assert np.allclose(ours, ref, rtol=0, atol=1e-9)
