"""VPQ (FIERY): hand cases for matches, id switches, false positives/negatives; instances and tracking."""

from __future__ import annotations

import numpy as np
import pytest

from vlwm.eval import TrackerConfig, VPQMetric, connected_instances, track_instances
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, OCC3D_ID

SPEC = GridSpec((-4.0, -4.0, 0.0, 4.0, 4.0, 1.6), (0.4, 0.4, 0.4))      # 20 x 20 x 4
CAR, TRUCK, BUILDING = OCC3D_ID["car"], OCC3D_ID["truck"], OCC3D_ID["manmade"]


def _scene(num_steps: int):
    """Two cars driving along x, one voxel per frame, and a static building; GT instance ids 1, 2."""
    sem = np.full((num_steps, *SPEC.shape), FREE, np.uint8)
    inst = np.zeros(sem.shape, np.int32)
    for t in range(num_steps):
        sem[t, 2 + t:6 + t, 2:4, 0:2], inst[t, 2 + t:6 + t, 2:4, 0:2] = CAR, 1
        sem[t, 10 - t:14 - t, 12:15, 0:2], inst[t, 10 - t:14 - t, 12:15, 0:2] = CAR, 2
        sem[t, 16:19, 16:19, :] = BUILDING                                # not a dynamic class: ignored
    return sem, inst


def _vpq(pred_sem, gt_sem, **kw):
    metric = VPQMetric(len(gt_sem), SPEC)
    metric.update(pred_sem[None], gt_sem[None], **{k: (v[None] if v is not None else None) for k, v in kw.items()})
    return metric.compute()


def test_perfect_prediction_is_one():
    sem, inst = _scene(3)
    res = _vpq(sem, sem.copy(), gt_instance=inst)                          # predicted instances: tracked components
    assert res.vpq == 1.0 and res.sq == 1.0 and res.rq == 1.0
    assert (res.true_positives, res.false_positives, res.false_negatives) == (6, 0, 0)
    assert res.vpq_per_step == [1.0, 1.0, 1.0] and res.class_vpq[CAR] == 1.0
    assert np.isnan(res.class_vpq[TRUCK])


def test_an_id_switch_is_penalised():
    sem, inst = _scene(3)
    pred_inst = inst.copy()
    pred_inst[2][inst[2] == 1] = 7                                          # car 1 changes id in the last frame
    switched = _vpq(sem, sem, gt_instance=inst, pred_instance=pred_inst)
    # frames 0, 1: 2 TP each; frame 2: car 2 TP, car 1 one FN + one FP.
    assert (switched.true_positives, switched.false_positives, switched.false_negatives) == (5, 1, 1)
    assert switched.vpq == pytest.approx(5 / (5 + 0.5 + 0.5))
    assert switched.vpq_per_step == [1.0, 1.0, pytest.approx(1 / 2)]
    consistent = _vpq(sem, sem, gt_instance=inst, pred_instance=inst + 10 * (inst > 0))
    assert consistent.vpq == 1.0                                            # other ids, but the same over time


def test_false_positives_and_negatives():
    sem, inst = _scene(1)
    pred = sem.copy()
    pred[inst == 2] = FREE                                                 # miss car 2: one FN
    pred[0, 14:16, 4:6, 0] = TRUCK                                         # an extra truck: one FP
    res = _vpq(pred, sem, gt_instance=inst)
    assert (res.true_positives, res.false_positives, res.false_negatives) == (1, 1, 1)
    assert res.vpq == pytest.approx(1 / (1 + 0.5 + 0.5))
    assert res.class_vpq[TRUCK] == 0.0


def test_matching_needs_iou_above_half_and_the_same_class():
    sem = np.full((1, *SPEC.shape), FREE, np.uint8)
    sem[0, 0:10, 0:1, 0:1] = CAR                                           # a 10-voxel bar
    inst = (sem == CAR).astype(np.int32)
    good = np.full_like(sem, FREE)
    good[0, 0:6, 0:1, 0:1] = CAR                                           # IoU 6 / 10
    assert _vpq(good, sem, gt_instance=inst).vpq == pytest.approx(0.6)
    bad = np.full_like(sem, FREE)
    bad[0, 0:5, 0:1, 0:1] = CAR                                            # IoU 5 / 10: not a match
    res = _vpq(bad, sem, gt_instance=inst)
    assert res.vpq == 0.0 and (res.false_positives, res.false_negatives) == (1, 1)
    wrong_class = np.where(sem == CAR, TRUCK, sem)
    assert _vpq(wrong_class, sem, gt_instance=inst).vpq == 0.0


def test_ground_truth_without_instances_falls_back_to_components():
    sem, _ = _scene(3)
    res = _vpq(sem, sem.copy())
    assert res.vpq == 1.0 and res.true_positives == 6
    empty = np.full_like(sem, FREE)
    nothing = _vpq(empty, empty)
    assert np.isnan(nothing.vpq) and nothing.true_positives == 0


def test_groups():
    sem, inst = _scene(2)
    metric = VPQMetric(2, SPEC)
    pred = np.stack([sem, np.full_like(sem, FREE)])
    metric.update(pred, np.stack([sem, sem]), gt_instance=np.stack([inst, inst]), group=["rover", "drone"])
    res = metric.compute()
    assert res.groups["rover"].vpq == 1.0 and res.groups["drone"].vpq == 0.0
    assert res.vpq == pytest.approx(4 / (4 + 0 + 4 / 2)) and res.num_samples == 2     # the drone's 4 FN


# ---------------------------------------------------------------------------------------------- instances


def test_connectivity_choice():
    sem = np.full(SPEC.shape, FREE, np.uint8)
    sem[0, 0, 0] = sem[1, 1, 1] = CAR                                      # corner neighbours
    sem[5, 5, 0] = sem[5, 5, 1] = CAR                                      # face neighbours
    _, c26 = connected_instances(sem, [CAR], connectivity=26)
    _, c6 = connected_instances(sem, [CAR], connectivity=6)
    assert len(c26) == 2 and len(c6) == 3
    _, big = connected_instances(sem, [CAR], connectivity=6, min_voxels=2)
    assert len(big) == 1                                                   # the two single voxels dropped
    with pytest.raises(ValueError):
        TrackerConfig(connectivity=8)


def test_tracker_links_components_and_compensates_ego_motion():
    # A parked car; the ego drives 6 m per frame, so in the grids the car jumps back 6 m each frame.
    sem = np.full((2, 40, 20, 4), FREE, np.uint8)
    spec = GridSpec((-8.0, -4.0, 0.0, 8.0, 4.0, 1.6), (0.4, 0.4, 0.4))
    sem[0, 30:34, 8:12, 0:2] = CAR                                          # x in [4, 5.6]
    sem[1, 15:19, 8:12, 0:2] = CAR                                          # 6 m further back
    frames = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 0.0, 0.0, 0.0]])
    linked = track_instances(sem, spec, frames=frames)
    assert set(np.unique(linked[0])) == set(np.unique(linked[1])) == {0, 1}
    unlinked = track_instances(sem, spec)                                   # 6 m > max_link_distance_m
    assert set(np.unique(unlinked[1])) == {0, 2}
    # A moving car is linked frame to frame (constant velocity), a second one gets its own id.
    scene, _ = _scene(4)
    ids = track_instances(scene, SPEC)
    assert all(len(np.unique(ids[t])) == 3 for t in range(4))
    assert np.array_equal(np.unique(ids), [0, 1, 2])
