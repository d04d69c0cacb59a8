"""Baselines: copy_last and ego_warp on a synthetic moving-ego sequence through a static world."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlwm.eval import OccForecastMetric, copy_last, ego_warp, future_grid_motion
from vlwm.gt.ego_frame import GridFrame, warp_to_frame
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE

SPEC = GridSpec((-4.0, -4.0, 0.0, 4.0, 4.0, 1.6), (0.4, 0.4, 0.4))      # 20 x 20 x 4, centred on the ego
HISTORY, FUTURE, STEP_VOXELS = 3, 4, 2                                  # the ego moves 0.8 m forward per frame


def _static_world_sequence(rng):
    """A static world (x-aligned), sampled by an ego driving along +x, one grid per frame.

    The world is free beyond what the last history frame sees, so everything a future frame
    contains was visible in the last one.
    """
    x, y, z = SPEC.shape
    length = x + STEP_VOXELS * (HISTORY + FUTURE)
    world = rng.integers(0, 17, size=(length, y, z)).astype(np.uint8)
    world[rng.random(world.shape) < 0.6] = FREE
    last_offset = STEP_VOXELS * (HISTORY - 1)
    world[last_offset + x:] = FREE
    frames = np.stack([world[STEP_VOXELS * t:STEP_VOXELS * t + x] for t in range(HISTORY + FUTURE)])
    # 13-d poses: yaw 0 (grid x = world x), 1.5 m above the ground.
    poses = np.zeros((HISTORY + FUTURE, 13), np.float32)
    poses[:, 0] = STEP_VOXELS * SPEC.voxel_size[0] * np.arange(HISTORY + FUTURE)
    poses[:, 2], poses[:, 3] = 1.5, 1.0
    sample = {"history_occupancy": frames[:HISTORY], "future_occupancy": frames[HISTORY:],
              "history_poses": poses[:HISTORY], "future_poses": poses[HISTORY:],
              "ego_height": np.full(HISTORY + FUTURE, 1.5, np.float32)}
    return sample


def test_ego_warp_is_exact_for_whole_voxel_translations_and_beats_copy_last(rng):
    sample = _static_world_sequence(rng)
    motion = future_grid_motion(sample)                                     # (T_f, 4)
    assert np.allclose(motion, [[0.8 * (k + 1), 0, 0, 0] for k in range(FUTURE)], atol=1e-6)
    target = sample["future_occupancy"][None]                               # (1, T_f, X, Y, Z)
    warped = ego_warp(sample["history_occupancy"][-1], motion, SPEC)
    assert warped.shape == (FUTURE, *SPEC.shape) and warped.dtype == np.uint8
    assert np.array_equal(warped, target[0])                               # exact
    copied = copy_last(sample["history_occupancy"][None], FUTURE)
    assert np.array_equal(copied[0, 2], sample["history_occupancy"][-1])
    scores = {}
    for name, pred in (("ego_warp", warped[None]), ("copy_last", copied)):
        metric = OccForecastMetric(FUTURE)
        metric.update(pred, target)
        scores[name] = metric.compute()
    assert scores["ego_warp"].miou == [100.0] * FUTURE
    assert all(w > c for w, c in zip(scores["ego_warp"].miou, scores["copy_last"].miou))
    assert all(w > c for w, c in zip(scores["ego_warp"].iou, scores["copy_last"].iou))


def test_free_outside_the_last_grid(rng):
    last = rng.integers(0, 17, size=SPEC.shape).astype(np.uint8)
    out = ego_warp(last, np.array([[2.0, 0.0, 0.0, 0.0]]), SPEC)[0]       # 5 voxels forward
    assert np.array_equal(out[:-5], last[5:]) and (out[-5:] == FREE).all()
    up = ego_warp(last, np.array([[0.0, 0.0, 0.4, 0.0]]), SPEC, free=99)[0]
    assert np.array_equal(up[:, :, :-1], last[:, :, 1:]) and (up[:, :, -1] == 99).all()


def test_quarter_turn_is_an_exact_rotation(rng):
    last = rng.integers(0, 18, size=SPEC.shape).astype(np.uint8)
    out = ego_warp(last, np.array([[0.0, 0.0, 0.0, math.pi / 2]]), SPEC)[0]
    # The future grid is turned left by 90 degrees: its voxel (i, j) sees the last grid's (N-1-j, i).
    assert np.array_equal(out, last[::-1].transpose(1, 0, 2))


def test_matches_warp_to_frame_for_any_rigid_motion(rng):
    last = rng.integers(0, 18, size=SPEC.shape).astype(np.uint8)
    dx, dy, dz, yaw = 0.93, -1.37, 0.2, 0.41
    ours = ego_warp(last, np.array([[dx, dy, dz, yaw]]), SPEC)[0]
    theirs = warp_to_frame(last, SPEC, GridFrame(0.0, 0.0, 0.0, 0.0), GridFrame(dx, dy, dz, yaw), FREE)
    assert np.array_equal(ours, theirs)


def test_batched_torch_inputs(rng):
    last = torch.from_numpy(rng.integers(0, 18, size=(2, *SPEC.shape)).astype(np.int64))
    motion = torch.tensor([[[0.4, 0.0, 0.0, 0.0], [0.8, 0.4, 0.0, 0.1]], [[0.0, 0.0, 0.0, -0.3], [1.2, 0, 0, 0]]])
    out = ego_warp(last, motion, SPEC)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, *SPEC.shape) and out.dtype == torch.int64
    for b in range(2):
        assert np.array_equal(out[b].numpy(), ego_warp(last[b].numpy(), motion[b].numpy(), SPEC))
    copied = copy_last(last[:, None].repeat(1, 3, 1, 1, 1), 5)
    assert copied.shape == (2, 5, *SPEC.shape) and torch.equal(copied[:, 4], last)
    with pytest.raises(ValueError, match="motion"):
        ego_warp(last, motion[0], SPEC)
