"""Occupancy forecasting metrics: per-step mIoU (semantic) and IoU (geometry), the OccWorld protocol.

Reproduces ``multi_step_MeanIou`` of the official code (``utils/metric_util.py:63-117``, SPEC §7.2):

* Counts are accumulated over the **whole evaluation set** per future step ``t`` and class ``c``:
  ``seen`` (target == c), ``positive`` (prediction == c), ``correct`` (both).  The IoU of a class is
  ``correct / (seen + positive - correct)`` computed from the pooled counts — not a mean of
  per-sample IoUs.
* Semantic mIoU: mean over the 17 classes 0..16 (free = 17 excluded, but free voxels still count as
  misses / false alarms of the other classes).  **A class never seen in the targets at step t gets
  IoU 1** whatever was predicted [reference quirk, kept]; :attr:`OccForecastResult.miou_present`
  is the same mean over the classes that occur, for data sets (like ours) where many of the 17
  classes never appear.
* Geometry IoU: the occupied class ``label != free`` against free.
* Aggregates: the steps at 1 s / 2 s / 3 s (:mod:`vlwm.data.horizons`) and their mean, the numbers
  OccWorld's ``eval_metric_stp3.py`` prints as "avg val miou/iou".

Exactness: counts are int64 (the reference accumulates in float32 and rounds once counts pass
2^24, SPEC §10); each class IoU is divided in float32 as the reference does, then averaged in
float64 — on the reference fixture this gives the official numbers bit for bit.  That arithmetic
is :mod:`vlwm.models.occupancy_iou`, which training's validation uses too.

Additions (not in the reference, which applies no mask and has one population): an optional
**visibility mask** (Occ3D's lidar or camera mask; voxels outside it are ignored in prediction and
target alike) and **groups** (e.g. the sample's ``agent_type``, drone / rover), each accumulated
separately next to the overall counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch

from vlwm.data.config import OCCWORLD_FRAME_RATE_HZ
from vlwm.data.horizons import DEFAULT_HORIZONS_S, horizon_steps
from vlwm.labels import FREE, NUM_OCC_CLASSES
from vlwm.models.occupancy_iou import LabelCounts, check_labels, mean_iou, mean_present_iou


@dataclass(frozen=True)
class OccForecastResult:
    """Occupancy metrics of one population (all samples, or one group). Percentages."""

    miou: list[float]
    """(T,) semantic mIoU per future step, %, reference rule (absent classes count as 100)."""
    iou: list[float]
    """(T,) geometry IoU (occupied vs free) per future step, %."""
    miou_present: list[float]
    """(T,) semantic mIoU over the classes present in the targets at that step, % (NaN if none)."""
    class_iou: list[list[float]]
    """(T, C) IoU per step and evaluated class (``class_ids`` order), %; NaN where the class is absent."""
    class_ids: list[int]
    """The evaluated class ids (C of them)."""
    horizons: dict[str, int]
    """``{"1s": step index, ...}``: the reported horizons the prediction reaches."""
    miou_at: dict[str, float]
    """Semantic mIoU at each horizon, %."""
    iou_at: dict[str, float]
    """Geometry IoU at each horizon, %."""
    miou_avg: float
    """Mean of ``miou_at`` (OccWorld's "avg val miou"), %; NaN without horizons."""
    iou_avg: float
    """Mean of ``iou_at`` (OccWorld's "avg val iou"), %."""
    num_samples: int
    """Samples (sequences of T steps) accumulated."""
    num_voxels: list[int]
    """(T,) voxels counted per step (after masking)."""
    groups: dict[str, "OccForecastResult"] = field(default_factory=dict)
    """Per-group results (empty for a group result itself)."""

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (groups nested)."""
        return asdict(self)


class OccForecastMetric:
    """Accumulates forecast occupancy against the ground truth; :meth:`compute` gives the numbers.

    Parameters
    ----------
    num_steps : int
        Future steps ``T`` of every update.
    frame_rate_hz : float
        Rate of the predicted frames (2 Hz for OccWorld; ``sample["frame_rate_hz"]`` for ours): sets
        which steps are 1 s / 2 s / 3 s.
    horizons_s : sequence of float
        The reported horizons (seconds).
    num_classes : int
        Labels in the label space, free included (18 for Occ3D).
    free : int
        The free label (17 for Occ3D).
    class_ids : sequence of int, optional
        Classes averaged into the mIoU; default every label but ``free`` (0..16, as the reference).

    Example
    -------
    >>> metric = OccForecastMetric(6)
    >>> metric.update(pred, target, mask=None, group=batch["agent_type"])   # (B, 6, X, Y, Z) class ids
    >>> res = metric.compute(); res.miou, res.iou_at["2s"], res.groups["drone"].miou_avg
    """

    def __init__(self, num_steps: int, frame_rate_hz: float = OCCWORLD_FRAME_RATE_HZ,
                 horizons_s: Sequence[float] = DEFAULT_HORIZONS_S, num_classes: int = NUM_OCC_CLASSES,
                 free: int = FREE, class_ids: Sequence[int] | None = None):
        if not 0 <= free < num_classes:
            raise ValueError(f"OccForecastMetric: free label {free} outside 0..{num_classes - 1}")
        self.num_steps, self.num_classes, self.free = int(num_steps), int(num_classes), int(free)
        self.class_ids = ([c for c in range(num_classes) if c != free] if class_ids is None
                          else [int(c) for c in class_ids])
        bad = [c for c in self.class_ids if not 0 <= c < num_classes or c == free]
        if bad:
            raise ValueError(f"OccForecastMetric: class_ids {bad} are not non-free labels of 0..{num_classes - 1}")
        self.horizons = horizon_steps(self.num_steps, frame_rate_hz, horizons_s)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._all = LabelCounts(self.num_steps, self.num_classes)
        self._groups: dict[str, LabelCounts] = {}

    # ------------------------------------------------------------------ accumulation

    def update(self, pred, target, mask=None, group: str | Sequence[str] | None = None) -> None:
        """Add a batch.

        Parameters
        ----------
        pred, target : (B, T, X, Y, Z) integer class ids (torch or numpy; uint8 or int64), the
            prediction and the ground truth of the same future frames, each in its own grid frame.
        mask : (B, T, X, Y, Z) bool, optional
            Voxels to evaluate (e.g. ``future_mask_camera``); others are ignored in both.
            Anything broadcastable to ``pred`` works ((B, 1, X, Y, Z) for one mask per sample).
        group : str or sequence of B str, optional
            Population of the whole batch, or of each sample (``batch["agent_type"]``).
        """
        pred, target = _as_long(pred), _as_long(target).to(pred.device)
        if pred.shape != target.shape or pred.dim() != 5:
            raise ValueError(f"OccForecastMetric.update: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                             f"must both be (B, T, X, Y, Z)")
        b, t = pred.shape[:2]
        if t != self.num_steps:
            raise ValueError(f"OccForecastMetric.update: {t} steps, the metric was built for {self.num_steps}")
        for name, x in (("pred", pred), ("target", target)):
            check_labels(x, self.num_classes, f"OccForecastMetric.update: {name}")
        if mask is not None:
            mask = torch.as_tensor(np.ascontiguousarray(mask) if isinstance(mask, np.ndarray) else mask,
                                   device=pred.device).bool().expand(pred.shape)
        groups = _batch_groups(group, b)
        for name in dict.fromkeys(groups):                      # each population of the batch, in order
            rows = [i for i, g in enumerate(groups) if g == name]
            sel = slice(None) if len(rows) == b else torch.tensor(rows, device=pred.device)
            counts = LabelCounts.of(pred[sel], target[sel], self.num_classes, None if mask is None else mask[sel])
            self._all.add(counts)
            if name is not None:
                self._groups.setdefault(name, LabelCounts(self.num_steps, self.num_classes)).add(counts)

    # ------------------------------------------------------------------ results

    def compute(self) -> OccForecastResult:
        """The metrics of everything accumulated, overall and per group."""
        if self._all.samples == 0:
            raise RuntimeError("OccForecastMetric.compute: nothing accumulated; call update() first")
        result = self._result(self._all)
        groups = {name: self._result(c) for name, c in sorted(self._groups.items())}
        return OccForecastResult(**{**asdict(result), "groups": groups})

    def _result(self, c: LabelCounts) -> OccForecastResult:
        ids = self.class_ids
        class_iou = c.class_iou(ids)                                   # (T, C) fractions, NaN absent
        miou, miou_present, iou = mean_iou(class_iou), mean_present_iou(class_iou), c.geometry_iou(self.free)
        miou_at = {h: miou[k] for h, k in self.horizons.items()}
        iou_at = {h: iou[k] for h, k in self.horizons.items()}
        return OccForecastResult(
            miou=miou, iou=iou, miou_present=miou_present, class_iou=(class_iou * 100).tolist(), class_ids=list(ids),
            horizons=dict(self.horizons), miou_at=miou_at, iou_at=iou_at,
            miou_avg=float(np.mean(list(miou_at.values()))) if miou_at else math.nan,
            iou_avg=float(np.mean(list(iou_at.values()))) if iou_at else math.nan,
            num_samples=c.samples, num_voxels=c.total.tolist())


def _as_long(x) -> torch.Tensor:
    """Torch int64 view of integer class ids (numpy or torch)."""
    x = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
    if x.is_floating_point() or x.dtype == torch.bool:
        raise TypeError(f"class ids must be an integer tensor, got {x.dtype}; take argmax of logits first")
    return x.long()


def _batch_groups(group: str | Sequence[str] | None, batch: int) -> list[str | None]:
    """One group name (or None) per sample."""
    if group is None or isinstance(group, str):
        return [group] * batch
    groups = [None if g is None else str(g) for g in group]
    if len(groups) != batch:
        raise ValueError(f"group: {len(groups)} names for a batch of {batch} samples")
    return groups
