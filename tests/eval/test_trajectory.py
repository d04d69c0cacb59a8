"""PlanningMetric (ADE/FDE, L2 in both conventions, collision rates) and trajectories from motions/poses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlwm.data.trajectory import rel_motion
from vlwm.eval import PlanningMetric, grid_motion_from_poses, l2_per_step, poses_from_rel_motion
from vlwm.eval import stp3


def _hand_trajectory():
    """6 steps along x; the prediction is off sideways by 0, 1, ..., 5 m."""
    gt = np.stack([np.arange(1, 7, dtype=float), np.zeros(6)], axis=1)[None]      # (1, 6, 2)
    pred = gt.copy()
    pred[0, :, 1] = np.arange(6)
    return pred, gt


def test_l2_conventions_on_a_hand_trajectory():
    pred, gt = _hand_trajectory()
    metric = PlanningMetric(6)                                                      # 2 Hz
    metric.update(pred, gt)
    res = metric.compute()
    assert res.l2_at == {"1s": 1.0, "2s": 3.0, "3s": 5.0}                           # UniAD: at the horizon
    assert res.l2_avg == {"1s": 0.5, "2s": 1.5, "3s": 2.5}                          # ST-P3 / VAD: mean up to it
    assert res.l2_at_mean == 3.0 and res.l2_avg_mean == 1.5
    assert res.ade == 2.5 and res.fde == 5.0
    assert res.collision_at == {} and math.isnan(res.collision_avg_mean)


def test_samples_are_averaged_and_invalid_steps_skipped():
    pred, gt = _hand_trajectory()
    metric = PlanningMetric(6)
    metric.update(np.concatenate([pred, gt]), np.concatenate([gt, gt]),
                  valid=np.array([[True] * 5 + [False], [True] * 6]), group=["rover", "drone"])
    res = metric.compute()
    # sample 0 without its last step: ADE 2, FDE missing; sample 1 is perfect.
    assert res.ade == pytest.approx((2.0 + 0.0) / 2)
    assert res.fde == 0.0                                                           # only sample 1 has it
    assert res.l2_avg["3s"] == pytest.approx(1.0) and res.l2_at["1s"] == 0.5
    assert res.groups["rover"].ade == 2.0 and math.isnan(res.groups["rover"].fde)
    assert res.groups["drone"].l2_at == {"1s": 0.0, "2s": 0.0, "3s": 0.0}


def test_collision_rates_in_both_conventions():
    pred, gt = _hand_trajectory()
    metric = PlanningMetric(6)
    metric.update(pred, gt, collision=np.array([[0, 1, 0, 0, 0, 1]], bool))
    res = metric.compute()
    assert res.collision_at == {"1s": 100.0, "2s": 0.0, "3s": 100.0}
    assert res.collision_avg == pytest.approx({"1s": 50.0, "2s": 25.0, "3s": 100 / 3})


def test_planning_metric_agrees_with_the_reference_values(metric_fixture):
    inputs = metric_fixture["planning_metric"]["inputs"]
    ref = metric_fixture["planning_metric"]["outputs"]["metric_dict"]
    pred, gt = inputs["pred_traj_cumsum"].numpy(), inputs["gt_traj_cumsum"].numpy()
    metric = PlanningMetric(6)
    metric.update(pred, gt)
    res = metric.compute()
    for k in (1, 2, 3):                    # float64 here, float32 in the reference
        assert res.l2_avg[f"{k}s"] == pytest.approx(ref[f"plan_L2_{k}s"], rel=1e-6)
        assert res.l2_at[f"{k}s"] == pytest.approx(ref[f"plan_L2_{k}s_single"], rel=1e-6)
    assert res.ade == pytest.approx(metric_fixture["planning_metric"]["outputs"]["L2_6steps"], rel=1e-6)
    # The box-collision rates from the reference's per-step indicators.
    coll = metric_fixture["planning_metric"]["outputs"]["evaluate_coll_6steps"]["obj_box_coll_sum"].numpy()
    with_coll = PlanningMetric(6)
    with_coll.update(pred, gt, collision=coll[None] > 0)
    assert with_coll.compute().collision_avg["3s"] == pytest.approx(100 * ref["plan_obj_box_col_3s"], rel=1e-6)
    assert with_coll.compute().collision_at["3s"] == 100 * ref["plan_obj_box_col_3s_single"]


def test_stp3_l2_matches_the_reference_dtype(metric_fixture):
    inputs = metric_fixture["planning_metric"]["inputs"]
    pred, gt = inputs["pred_traj_cumsum"][0].numpy(), inputs["gt_traj_cumsum"][0].numpy()
    assert stp3.compute_l2(pred, gt) == metric_fixture["planning_metric"]["outputs"]["L2_6steps"]


# ---------------------------------------------------------------------------------------------- trajectories


def test_poses_from_rel_motion_composes_headings():
    straight = poses_from_rel_motion(np.array([[0.0, 1.0, 0.0, 0.0]] * 3))
    assert np.allclose(straight[:, :3], [[1, 0, 0], [2, 0, 0], [3, 0, 0]])          # x forward
    right = poses_from_rel_motion(np.array([[1.0, 0.0, 0.5, 0.0]]))                   # 1 m to the right, 0.5 up
    assert np.allclose(right, [[0, -1, 0.5, 0]])                                    # grid y is left
    turn = poses_from_rel_motion(np.array([[0.0, 1.0, 0.0, math.pi / 2], [0.0, 1.0, 0.0, 0.0]]))
    assert np.allclose(turn, [[1, 0, 0, math.pi / 2], [1, 1, 0, math.pi / 2]])       # 2nd step goes left
    batched = poses_from_rel_motion(np.zeros((4, 5, 4)))
    assert batched.shape == (4, 5, 4) and not batched.any()


def _pose13(x, y, z, yaw):
    p = np.zeros(13)
    p[:3] = x, y, z
    p[3], p[6] = math.cos(yaw / 2), math.sin(yaw / 2)
    return p


def test_grid_motion_from_poses_agrees_with_composed_rel_motion(rng):
    # A curving trajectory in world coordinates, heading along the curve.
    yaws = np.cumsum(rng.uniform(-0.4, 0.4, 8)) + 0.7
    xy = np.cumsum(np.stack([np.cos(yaws), np.sin(yaws)], axis=1) * 3.0, axis=0)
    poses = np.stack([_pose13(x, y, 2.0 + 0.1 * i, a) for i, ((x, y), a) in enumerate(zip(xy, yaws))])
    motion, ok = rel_motion(poses, np.ones(8, bool))
    assert ok[:-1].all()
    composed = poses_from_rel_motion(motion[2:-1])                  # frames 3..7 seen from frame 2
    ego_height = np.zeros(8)                                        # grid origin at the vehicle: dz = vehicle dz
    grid = grid_motion_from_poses(poses, ego_height, reference=2)
    assert np.allclose(grid[2], 0)
    assert np.allclose(composed, grid[3:], atol=1e-5)              # float32 rel_motion
    # The grid frame sits on the ground: with the ground flat at z = 0, dz is 0 while the vehicle climbs.
    flat = grid_motion_from_poses(poses, poses[:, 2], reference=2)
    assert np.allclose(flat[:, 2], 0) and np.allclose(flat[:, [0, 1, 3]], grid[:, [0, 1, 3]])


def test_l2_per_step_shapes():
    assert l2_per_step(np.zeros((2, 3, 3)), np.ones((2, 3, 3))).shape == (2, 3)
    with pytest.raises(ValueError):
        l2_per_step(np.zeros((2, 3)), np.zeros((3, 3)))
