"""Benchmark scores of one method: occupancy, VPQ and trajectory metrics with their breakdowns.

One :class:`BenchmarkScorer` per method accumulates the test windows (one at a time) into the
project's metrics — :class:`~vlwm.eval.occupancy.OccForecastMetric` (mIoU by the OccWorld rule,
mIoU over present classes, IoU, per-class IoU), :class:`~vlwm.eval.vpq.VPQMetric` (FIERY's VPQ with
the simulator's instance ids as truth) and, when the method predicts the ego trajectory,
:class:`~vlwm.eval.trajectory.PlanningMetric` (ADE / FDE / L2) — twice: grouped by agent
(``drone`` / ``rover``) and by drone altitude band (``low`` / ``mid`` / ``high``).

:meth:`BenchmarkScorer.result` gives one **entry** per population (``overall``, ``agent/drone``,
``agent/rover``, ``band/low`` …)::

    {"num_windows": 120,
     "miou": {"1s": 71.2, "2s": 64.0, "3s": 58.3, "avg": 64.5},        # %, OccWorld rule
     "miou_present": {...}, "iou": {...},                               # %
     "vpq": {"1s": 31.0, "2s": ..., "3s": ..., "avg": ..., "all": ...}, # %, "all" = pooled over the 6 steps
     "class_iou": {"car": {"1s": ..., "2s": ..., "3s": ..., "avg": ...}, ...},   # classes present
     "trajectory": {"ade": 0.4, "fde": 0.9, "l2": {"1s": ..., "2s": ..., "3s": ..., "avg": ...}} or None}

NaN (nothing to measure, e.g. VPQ without any dynamic instance) is written as ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vlwm.eval.occupancy import OccForecastMetric
from vlwm.eval.trajectory import PlanningMetric
from vlwm.eval.vpq import TrackerConfig, VPQMetric
from vlwm.gt.grid import GridSpec
from vlwm.labels import OCC3D_CLASS_NAMES

HORIZONS = ("1s", "2s", "3s")


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else round(float(v), 4)


def _at(values: dict[str, float]) -> dict[str, float | None]:
    """``{"1s", "2s", "3s", "avg"}`` of a per-horizon dict (avg over the finite horizons)."""
    out = {h: _num(values.get(h)) for h in HORIZONS}
    finite = [v for v in out.values() if v is not None]
    out["avg"] = _num(np.mean(finite)) if len(finite) == len(HORIZONS) else None      # null if any is null
    return out


class BenchmarkScorer:
    """Accumulates one method's forecasts of the test windows.

    Parameters
    ----------
    spec : GridSpec
        The benchmark grid.
    num_future : int
        Future frames per window (6).
    frame_rate_hz : float
        Rate of the frames (2 Hz).
    """

    def __init__(self, spec: GridSpec, num_future: int, frame_rate_hz: float):
        self.spec, self.num_future = spec, int(num_future)
        self.occ_agent = OccForecastMetric(num_future, frame_rate_hz=frame_rate_hz)
        self.occ_band = OccForecastMetric(num_future, frame_rate_hz=frame_rate_hz)
        self.vpq_agent = VPQMetric(num_future, spec, tracker=TrackerConfig())
        self.vpq_band = VPQMetric(num_future, spec, tracker=TrackerConfig())
        self.plan = PlanningMetric(num_future, frame_rate_hz=frame_rate_hz)
        self.plan_band = PlanningMetric(num_future, frame_rate_hz=frame_rate_hz)
        self.horizons = dict(self.occ_agent.horizons)
        self.windows = 0
        self.with_trajectory = 0
        self.band_windows = 0
        self.band_trajectories = 0

    def update(self, window: dict[str, Any], pred: np.ndarray, target: np.ndarray, gt_instances: np.ndarray,
               frames: np.ndarray, pred_traj: np.ndarray | None = None, gt_traj: np.ndarray | None = None,
               pred_instances: np.ndarray | None = None) -> None:
        """Add one window.

        Parameters
        ----------
        window : the window's entry of ``windows/test.json`` (``agent``, ``band``).
        pred, target : (T_f, X, Y, Z) integer class ids, each future frame in its own grid frame.
        gt_instances : (T_f, X, Y, Z) int32 true instance ids (0 = none), consistent over the window.
        frames : (T_f, 4) float64 true future grid frames in the last history grid frame (tracker's
            ego-motion compensation).
        pred_traj, gt_traj : (T_f, 3) float64, optional
            Predicted and true ego positions of the future frames in the last history grid frame (m).
        pred_instances : (T_f, X, Y, Z) int, optional
            Predicted instance ids (consistent over the window, <= 0 none); without them VPQ cuts the
            prediction into tracked connected components (:func:`vlwm.eval.vpq.track_instances`).
        """
        if pred.shape != target.shape or pred.shape[0] != self.num_future:
            raise ValueError(f"window {window['id']}: prediction {pred.shape} and target {target.shape} must both "
                             f"be ({self.num_future}, X, Y, Z)")
        p, t = pred[None], target[None]
        pi = None if pred_instances is None else pred_instances[None]
        agent, band = window["agent"], window.get("band")
        self.occ_agent.update(p, t, group=agent)
        self.vpq_agent.update(p, t, gt_instance=gt_instances[None], pred_instance=pi, frames=frames[None], group=agent)
        if band is not None:
            self.occ_band.update(p, t, group=band)
            self.vpq_band.update(p, t, gt_instance=gt_instances[None], pred_instance=pi, frames=frames[None], group=band)
            self.band_windows += 1
        if pred_traj is not None and gt_traj is not None:
            self.plan.update(pred_traj[None], gt_traj[None], group=agent)
            if band is not None:
                self.plan_band.update(pred_traj[None], gt_traj[None], group=band)
                self.band_trajectories += 1
            self.with_trajectory += 1
        self.windows += 1

    def result(self) -> dict[str, dict[str, Any]]:
        """``{"overall": entry, "agent/<name>": entry, "band/<name>": entry}`` (module docstring)."""
        if self.windows == 0:
            raise RuntimeError("BenchmarkScorer.result: no window scored")
        occ, vpq = self.occ_agent.compute(), self.vpq_agent.compute()
        plan = self.plan.compute() if self.with_trajectory else None
        out = {"overall": self._entry(occ, vpq, plan)}
        for g in occ.groups:
            out[f"agent/{g}"] = self._entry(occ.groups[g], vpq.groups.get(g),
                                            plan.groups.get(g) if plan is not None else None)
        if self.band_windows:
            occ_b, vpq_b = self.occ_band.compute(), self.vpq_band.compute()
            plan_b = self.plan_band.compute() if self.band_trajectories else None
            for g in sorted(occ_b.groups, key=["low", "mid", "high"].index):
                out[f"band/{g}"] = self._entry(occ_b.groups[g], vpq_b.groups.get(g),
                                               plan_b.groups.get(g) if plan_b is not None else None)
        return out

    def _entry(self, occ, vpq, plan) -> dict[str, Any]:
        class_iou = {}
        for j, c in enumerate(occ.class_ids):
            per = {h: occ.class_iou[k][j] for h, k in self.horizons.items()}
            if any(math.isfinite(v) for v in per.values()):
                class_iou[OCC3D_CLASS_NAMES[c]] = _at(per)
        present = {h: occ.miou_present[k] for h, k in self.horizons.items()}
        entry = {"num_windows": occ.num_samples, "miou": _at(occ.miou_at), "miou_present": _at(present),
                 "iou": _at(occ.iou_at), "class_iou": class_iou, "vpq": None, "trajectory": None}
        if vpq is not None:
            steps = {h: 100 * vpq.vpq_per_step[k] for h, k in self.horizons.items()}
            entry["vpq"] = {**_at(steps), "all": _num(100 * vpq.vpq)}
        if plan is not None:
            entry["trajectory"] = {"ade": _num(plan.ade), "fde": _num(plan.fde), "l2": _at(plan.l2_at),
                                   "l2_cumulative": _at(plan.l2_avg)}
        return entry
