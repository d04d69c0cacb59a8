"""Validation helpers: the OccWorld forecast metric and bird's-eye views for TensorBoard.

The metric is :class:`vlwm.eval.OccForecastMetric` (per-step mIoU / IoU by the OccWorld
protocol, SPEC §7.2), the same code the evaluation script reports with.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from vlwm.eval import OccForecastMetric
from vlwm.labels import FREE, OCC3D_PALETTE


def forecast_metric(num_steps: int) -> OccForecastMetric:
    """A fresh per-step mIoU / IoU accumulator for ``num_steps`` frames."""
    return OccForecastMetric(num_steps)


def bev_image(grid: Tensor) -> np.ndarray:
    """Bird's-eye view (3, Y, X) uint8 of one (X, Y, Z) class-id grid: the top-most non-free class
    of each column in the Occ3D palette (white where the column is free), x up the image."""
    g = grid.detach().long().cpu().numpy()
    occupied = g != FREE
    top = g.shape[2] - 1 - np.argmax(occupied[:, :, ::-1], axis=2)            # highest occupied level
    cls = np.take_along_axis(g, top[..., None], axis=2)[..., 0]
    cls[~occupied.any(axis=2)] = FREE
    rgb = OCC3D_PALETTE[cls]                                                  # (X, Y, 3), x forward
    return np.ascontiguousarray(rgb[::-1, ::-1].transpose(2, 0, 1))          # forward up, left to the left


def bev_pair(target: Tensor, pred: Tensor) -> np.ndarray:
    """Target and prediction BEVs side by side, (3, X, 2Y + 4) uint8 with a grey separator."""
    a, b = bev_image(target), bev_image(pred)
    sep = np.full((3, a.shape[1], 4), 128, np.uint8)
    return np.concatenate([a, sep, b], axis=2)

