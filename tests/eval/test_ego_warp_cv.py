"""ego_warp_cv: on a vehicle that really moves at constant velocity and yaw rate it is the true warp."""

import math

import numpy as np
import pytest

from vlwm.eval.baselines import constant_velocity_motion, ego_warp, ego_warp_cv
from vlwm.eval.trajectory import grid_motion_from_poses
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE

SPEC = GridSpec((-8.0, -8.0, -2.0, 8.0, 8.0, 6.0), (0.5, 0.5, 1.0))


def _poses(n: int, start=(12.3, -4.1, 31.0), yaw0=0.4, step=1.37, lateral=0.21, dyaw=0.071, climb=0.0):
    """(n, 13) poses of a vehicle repeating one body-frame step (forward, lateral, yaw change) per frame."""
    out = np.zeros((n, 13))
    x, y, yaw = start[0], start[1], yaw0
    for k in range(n):
        out[k, :3] = (x, y, start[2] + climb * k)
        out[k, 3], out[k, 6] = math.cos(yaw / 2), math.sin(yaw / 2)        # qw, qz: yaw about z
        c, s = math.cos(yaw), math.sin(yaw)
        x, y, yaw = x + c * step - s * lateral, y + s * step + c * lateral, yaw + dyaw
    return out


@pytest.mark.parametrize("dyaw,lateral", [(0.071, 0.21), (0.0, 0.0), (-0.13, -0.4)])
def test_constant_velocity_motion_is_the_true_future_motion(dyaw, lateral):
    t_h, t_f = 4, 6
    poses = _poses(t_h + t_f, dyaw=dyaw, lateral=lateral)
    height = np.full(t_h + t_f, 31.0)                                       # flat ground: grid frames at z = 0
    true = grid_motion_from_poses(poses, height, t_h - 1)[t_h:]
    cv = constant_velocity_motion(poses[:t_h], height[:t_h], t_f)
    # float64 composition of 6 rigid steps of ~1.4 m: rounding ~1e-14 m; a wrong rule is off by > 1 cm
    np.testing.assert_allclose(cv, true, rtol=0, atol=1e-9)


def test_ego_warp_cv_equals_the_true_warp(rng):
    t_h, t_f = 4, 6
    poses = _poses(t_h + t_f)
    height = np.full(t_h + t_f, 31.0)
    last = rng.choice(np.array([0, 4, 11, FREE], np.uint8), size=SPEC.shape, p=[0.1, 0.1, 0.2, 0.6])
    true = ego_warp(last, grid_motion_from_poses(poses, height, t_h - 1)[t_h:], SPEC)
    cv = ego_warp_cv(last, poses[:t_h], height[:t_h], t_f, SPEC)
    assert cv.shape == (t_f, *SPEC.shape) and cv.dtype == np.uint8
    np.testing.assert_array_equal(cv, true)
    assert (cv[0] != cv[-1]).any()                                          # the warp really moved the grid


def test_constant_velocity_needs_two_history_poses():
    with pytest.raises(ValueError, match="T_h >= 2"):
        constant_velocity_motion(_poses(1), np.ones(1), 6)
