"""OccForecastMetric: parity with the official multi_step_MeanIou, hand cases, masks, groups, horizons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlwm.eval import OccForecastMetric, horizon_steps
from vlwm.labels import FREE


def _random_occ(rng, shape, free_fraction=0.6):
    occ = rng.integers(0, 17, size=shape)
    occ[rng.random(shape) < free_fraction] = FREE
    return occ.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- parity


def test_parity_with_official_metric(metric_fixture):
    inputs, ref = metric_fixture["occupancy_metrics"]["inputs"], metric_fixture["occupancy_metrics"]["outputs"]
    metric = OccForecastMetric(6)                                  # 2 Hz: 1 s / 2 s / 3 s = steps 1 / 3 / 5
    metric.update(inputs["pred"], inputs["target"])                # uint8 (1, 6, 50, 50, 16)
    res = metric.compute()
    # Bit for bit: the same float32 per-class division and float64 means as the reference.
    assert res.miou == [float(v) for v in ref["sem_miou_per_t"]]
    assert res.iou == [float(v) for v in ref["vox_iou_per_t"]]
    assert res.miou_avg == float(ref["avg_1s_2s_3s_miou"])
    assert res.iou_avg == float(ref["avg_1s_2s_3s_iou"])
    assert float(np.mean(res.miou)) == ref["sem_miou_mean_over_t"]
    assert float(np.mean(res.iou)) == ref["vox_iou_mean_over_t"]
    assert res.miou[0] == ref["MeanIoU_t0_single_class_miou"]
    assert res.horizons == {"1s": 1, "2s": 3, "3s": 5}
    assert res.miou_at == {"1s": res.miou[1], "2s": res.miou[3], "3s": res.miou[5]}
    acc = ref["sem_accumulators"]
    counts = metric._all
    for ours, theirs in ((counts.seen, "total_seen"), (counts.correct, "total_correct"),
                         (counts.positive, "total_positive")):
        assert np.array_equal(ours[:, :17], acc[theirs].numpy().astype(np.int64))
    # Class 9 is absent from both (IoU 1); class 5 only predicted — also 1, the reference quirk.
    assert math.isnan(res.class_iou[0][9]) and math.isnan(res.class_iou[0][5])
    print("parity:", [round(v, 4) for v in res.miou], [round(v, 4) for v in res.iou],
          round(res.miou_avg, 4), round(res.iou_avg, 4))


def test_batches_accumulate_like_one_pass(rng):
    pred, target = _random_occ(rng, (3, 2, 6, 5, 4)), _random_occ(rng, (3, 2, 6, 5, 4))
    whole, parts = OccForecastMetric(2, frame_rate_hz=1.0), OccForecastMetric(2, frame_rate_hz=1.0)
    whole.update(torch.from_numpy(pred), torch.from_numpy(target))
    for i in range(3):
        parts.update(pred[i:i + 1], target[i:i + 1])
    a, b = whole.compute(), parts.compute()
    assert a.miou == b.miou and a.iou == b.iou and a.num_samples == b.num_samples == 3
    # Pooled counts, not a mean of per-sample IoUs.
    singles = []
    for i in range(3):
        m = OccForecastMetric(2, frame_rate_hz=1.0)
        m.update(pred[i:i + 1], target[i:i + 1])
        singles.append(m.compute().iou[0])
    assert a.iou[0] != pytest.approx(np.mean(singles), abs=1e-9)


# ---------------------------------------------------------------------------------------------- hand cases


def test_perfect_prediction_scores_100(rng):
    target = _random_occ(rng, (2, 3, 8, 8, 4))
    metric = OccForecastMetric(3, frame_rate_hz=1.0)
    metric.update(target, target.copy())
    res = metric.compute()
    assert res.miou == [100.0] * 3 and res.iou == [100.0] * 3 and res.miou_present == [100.0] * 3
    assert res.miou_at == {"1s": 100.0, "2s": 100.0, "3s": 100.0} and res.miou_avg == 100.0


def test_empty_prediction_has_zero_iou(rng):
    target = _random_occ(rng, (1, 2, 8, 8, 4))
    metric = OccForecastMetric(2)
    metric.update(np.full_like(target, FREE), target)
    res = metric.compute()
    assert res.iou == [0.0, 0.0]
    assert res.miou_present == [0.0, 0.0]
    # Classes absent from the targets score 1 by the reference rule, present ones 0.
    absent = [sum(1 for c in range(17) if not np.any(target[:, t] == c)) for t in range(2)]
    assert res.miou == pytest.approx([100 * a / 17 for a in absent])


def test_tiny_case_by_hand():
    # One step, 2 x 2 x 1 voxels.  target: [0, 1 / free, free], pred: [0, 0 / 1, free].
    target = np.array([[[[[0], [1]], [[FREE], [FREE]]]]], np.uint8)
    pred = np.array([[[[[0], [0]], [[1], [FREE]]]]], np.uint8)
    metric = OccForecastMetric(1, frame_rate_hz=1.0)
    metric.update(pred, target)
    res = metric.compute()
    # class 0: 1 / (1 + 2 - 1) = 1/2; class 1: 0 / (1 + 1 - 0) = 0; 15 absent classes count 1.
    assert res.class_iou[0][0] == 50.0 and res.class_iou[0][1] == 0.0
    assert res.miou == [pytest.approx(100 * (0.5 + 0 + 15) / 17)]
    assert res.miou_present == [25.0]
    # geometry: target occupied {0, 1}, predicted {0, 1, 2}: 2 / 3.
    assert res.iou == [pytest.approx(200 / 3)]
    assert res.horizons == {"1s": 0}                            # 1 Hz: only 1 s is reached
    assert res.num_voxels == [4]


# ---------------------------------------------------------------------------------------------- masks, groups


def test_mask_ignores_voxels_in_both(rng):
    target = _random_occ(rng, (1, 2, 8, 8, 4))
    pred = target.copy()
    wrong = rng.random(target.shape) < 0.3
    pred[wrong] = (pred[wrong] + 1) % 18
    masked = OccForecastMetric(2)
    masked.update(pred, target, mask=~wrong)
    res = masked.compute()
    assert res.miou == [100.0, 100.0] and res.iou == [100.0, 100.0]
    assert res.num_voxels == [int((~wrong[:, t]).sum()) for t in range(2)]
    unmasked = OccForecastMetric(2)
    unmasked.update(pred, target)
    assert unmasked.compute().iou[0] < 100.0
    # A (B, 1, X, Y, Z) mask broadcasts over the steps.
    one = OccForecastMetric(2)
    one.update(pred, target, mask=torch.ones(1, 1, 8, 8, 4, dtype=torch.bool))
    assert one.compute().miou == unmasked.compute().miou


def test_groups_are_separate_populations(rng):
    pred, target = _random_occ(rng, (3, 2, 6, 6, 4)), _random_occ(rng, (3, 2, 6, 6, 4))
    metric = OccForecastMetric(2)
    metric.update(pred, target, group=["drone", "rover", "drone"])
    res = metric.compute()
    assert set(res.groups) == {"drone", "rover"}
    drone = OccForecastMetric(2)
    drone.update(pred[[0, 2]], target[[0, 2]])
    rover = OccForecastMetric(2)
    rover.update(pred[1:2], target[1:2], group="rover")
    everything = OccForecastMetric(2)
    everything.update(pred, target)
    assert res.groups["drone"].miou == drone.compute().miou and res.groups["drone"].num_samples == 2
    assert res.groups["rover"].iou == rover.compute().groups["rover"].iou
    assert res.miou == everything.compute().miou and res.num_samples == 3
    assert res.to_dict()["groups"]["rover"]["num_samples"] == 1


# ---------------------------------------------------------------------------------------------- horizons, errors


def test_horizons_follow_the_frame_rate():
    assert horizon_steps(6, 2.0) == {"1s": 1, "2s": 3, "3s": 5}
    assert horizon_steps(30, 10.0) == {"1s": 9, "2s": 19, "3s": 29}
    assert horizon_steps(4, 2.0) == {"1s": 1, "2s": 3}              # 3 s not reached
    with pytest.raises(ValueError, match="not a whole step"):
        horizon_steps(10, 2.5)


def test_bad_inputs_are_errors(rng):
    metric = OccForecastMetric(2)
    occ = _random_occ(rng, (1, 2, 4, 4, 2))
    with pytest.raises(ValueError, match="steps"):
        metric.update(occ[:, :1], occ[:, :1])
    with pytest.raises(ValueError, match="outside"):
        metric.update(np.full_like(occ, 40), occ)
    with pytest.raises(TypeError, match="argmax"):
        metric.update(torch.zeros(1, 2, 4, 4, 2), occ)
    with pytest.raises(RuntimeError, match="nothing accumulated"):
        metric.compute()
