"""The OccWorld IoU arithmetic on hand-counted examples (shared by training's validation and eval)."""

import math

import numpy as np
import torch

from vlwm.models.occupancy_iou import ABSENT_CLASS_IOU, LabelCounts, iou_float32, mean_iou, mean_present_iou

FREE3 = 2       # a 3-label space: 0, 1 and free = 2


def _counts(pred, target, mask=None):
    as_grid = lambda x: torch.tensor(x).reshape(1, 1, -1, 1, 1)        # (B=1, T=1, X, 1, 1)
    return LabelCounts.of(as_grid(pred), as_grid(target), 3, None if mask is None else as_grid(mask))


def test_counts_and_iou_of_a_hand_counted_example():
    c = _counts(pred=[0, 1, 1, 2], target=[0, 0, 1, 2])
    assert c.seen.tolist() == [[2, 1, 1]] and c.positive.tolist() == [[1, 2, 1]] and c.correct.tolist() == [[1, 1, 1]]
    assert c.total.tolist() == [4] and c.samples == 1
    np.testing.assert_array_equal(c.class_iou([0, 1]), [[0.5, 0.5]])          # 1 / (2 + 1 - 1), 1 / (1 + 2 - 1)
    assert mean_iou(c.class_iou([0, 1])) == [50.0]
    assert c.geometry_iou(FREE3) == [100.0]                                    # 3 occupied, all found


def test_absent_class_counts_as_one_in_the_miou_but_not_in_the_present_mean():
    c = _counts(pred=[0, 1, 2, 2], target=[0, 0, 2, 2])                        # class 1 never in the target
    iou = c.class_iou([0, 1])
    assert iou[0, 0] == 0.5 and math.isnan(iou[0, 1])
    assert mean_iou(iou) == [(0.5 + ABSENT_CLASS_IOU) / 2 * 100] and mean_present_iou(iou) == [50.0]


def test_mask_leaves_voxels_out_and_counts_pool_by_addition():
    masked = _counts(pred=[1, 1, 1, 2], target=[0, 0, 1, 2], mask=[False, False, True, True])
    assert masked.total.tolist() == [2] and masked.class_iou([1]).tolist() == [[1.0]]
    pooled = _counts(pred=[0, 1, 1, 2], target=[0, 0, 1, 2])
    pooled.add(masked)
    assert pooled.seen.tolist() == [[2, 2, 2]] and pooled.total.tolist() == [6] and pooled.samples == 2


def test_division_is_float32_like_the_reference():
    correct, seen = np.array([[1]]), np.array([[3]])
    assert iou_float32(correct, seen, seen)[0, 0] == float(np.float32(1) / np.float32(5))
    assert iou_float32(correct, seen, seen)[0, 0] != 1 / 5                      # float64 would differ
