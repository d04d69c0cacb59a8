"""The arithmetic of the OccWorld occupancy metric: pooled per-step, per-label counts and their IoU.

Reproduces the core of ``multi_step_MeanIou`` (official ``utils/metric_util.py:63-117``, SPEC §7.2):

* For every future step ``t`` and label ``c`` three counts are pooled over all samples: ``seen``
  (target == c), ``positive`` (prediction == c) and ``correct`` (both).  The IoU of a label is
  ``correct / (seen + positive - correct)`` of the pooled counts, not a mean of per-sample IoUs.
* Counts are int64 (the reference accumulates in float32, which rounds past 2^24, SPEC §10); each
  IoU is divided in float32 as the reference does, then averaged in float64, which gives the
  official numbers bit for bit.
* A label never seen in the targets at step ``t`` has IoU :data:`ABSENT_CLASS_IOU` in the mIoU
  [reference quirk, kept].  The geometry IoU is "label != free" against free.

Two users: training's validation (:mod:`vlwm.train.validation`) and the evaluation metric
(:class:`vlwm.eval.OccForecastMetric`, which adds visibility masks, groups and the 1 s / 2 s / 3 s
horizons).  Both therefore report the same numbers for the same predictions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

#: IoU the reference gives a class absent from the targets (``total_seen == 0``).
ABSENT_CLASS_IOU = 1.0


class LabelCounts:
    """Pooled counts of one population: ``seen``, ``positive``, ``correct`` (T, K) int64 and ``total`` (T,).

    Parameters
    ----------
    num_steps : int
        Future steps ``T``.
    num_labels : int
        Labels ``K`` in the label space, free included (18 for Occ3D).
    """

    def __init__(self, num_steps: int, num_labels: int):
        self.seen = np.zeros((num_steps, num_labels), np.int64)      # target == c
        self.positive = np.zeros((num_steps, num_labels), np.int64)  # prediction == c
        self.correct = np.zeros((num_steps, num_labels), np.int64)   # both
        self.total = np.zeros(num_steps, np.int64)                   # voxels counted
        self.samples = 0

    @classmethod
    def of(cls, pred: Tensor, target: Tensor, num_labels: int, mask: Tensor | None = None) -> "LabelCounts":
        """Counts of one batch.

        Parameters
        ----------
        pred, target : (B, T, X, Y, Z) int64 class ids in ``0..num_labels - 1``, on one device
            (:func:`check_labels` checks the range).
        mask : (B, T, X, Y, Z) bool, optional
            Voxels to count; the others are left out of prediction and target alike.
        """
        b, t = pred.shape[:2]
        out = cls(t, num_labels)
        out.samples = b
        for s in range(t):
            p, g = pred[:, s].reshape(-1), target[:, s].reshape(-1)
            if mask is not None:
                m = mask[:, s].reshape(-1)
                p, g = p[m], g[m]
            out.seen[s] = torch.bincount(g, minlength=num_labels).cpu().numpy()
            out.positive[s] = torch.bincount(p, minlength=num_labels).cpu().numpy()
            out.correct[s] = torch.bincount(g[p == g], minlength=num_labels).cpu().numpy()
            out.total[s] = g.numel()
        return out

    def add(self, other: "LabelCounts") -> None:
        """Pool ``other`` (same steps and labels) into these counts."""
        self.seen += other.seen
        self.positive += other.positive
        self.correct += other.correct
        self.total += other.total
        self.samples += other.samples

    def class_iou(self, class_ids: Sequence[int]) -> np.ndarray:
        """(T, C) float64 IoU of each step and label of ``class_ids`` (fractions); NaN where the
        label is absent from the targets of that step."""
        ids = list(class_ids)
        return iou_float32(self.correct[:, ids], self.seen[:, ids], self.positive[:, ids])

    def geometry_iou(self, free: int) -> list[float]:
        """(T,) IoU of "occupied" (label != ``free``) per step, %; 100 where no target voxel is occupied."""
        f = free
        seen_occ = self.total - self.seen[:, f]
        positive_occ = self.total - self.positive[:, f]
        correct_occ = self.total - self.seen[:, f] - self.positive[:, f] + self.correct[:, f]
        geo = iou_float32(correct_occ[:, None], seen_occ[:, None], positive_occ[:, None])[:, 0]
        return [float(np.mean([ABSENT_CLASS_IOU if np.isnan(v) else v])) * 100 for v in geo]


def mean_iou(class_iou: np.ndarray) -> list[float]:
    """(T,) semantic mIoU per step, %, from :meth:`LabelCounts.class_iou`: the reference rule, a
    label absent from the targets counts as :data:`ABSENT_CLASS_IOU`."""
    return [float(np.mean(np.where(np.isnan(row), ABSENT_CLASS_IOU, row).tolist())) * 100 for row in class_iou]


def mean_present_iou(class_iou: np.ndarray) -> list[float]:
    """(T,) mIoU per step over the labels present in the targets, %; NaN for a step with none."""
    return [float(np.mean(row[~np.isnan(row)])) * 100 if np.any(~np.isnan(row)) else math.nan
            for row in class_iou]


def iou_float32(correct: np.ndarray, seen: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """IoU ``correct / (seen + positive - correct)`` divided in float32 like the reference (float64 out).

    Entries with ``seen == 0`` (label absent from the targets) are NaN; the caller applies the rule.
    """
    union = (seen + positive - correct).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = (correct.astype(np.float32) / union).astype(np.float64)
    iou[seen == 0] = math.nan
    return iou


def check_labels(x: Tensor, num_labels: int, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when ``x`` holds a label outside ``0..num_labels - 1``."""
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi >= num_labels:
        raise ValueError(f"{where} has labels in [{lo}, {hi}], outside 0..{num_labels - 1}")
