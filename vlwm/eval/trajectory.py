"""Ego-motion metrics: ADE / FDE and L2 at 1 s / 2 s / 3 s in both conventions, collision rates.

**Two L2 conventions** are in use, and the difference is large (OpenDriveLab/UniAD#166, #173;
hustvl/VAD#47):

* ``l2_avg`` — **ST-P3 / VAD convention**: the L2 error averaged over every waypoint up to and
  including the horizon (OccWorld's ``plan_L2_ks``, SPEC §7.3).
* ``l2_at`` — **UniAD convention**: the L2 error at the horizon waypoint only (OccWorld's
  ``plan_L2_ks_single``; the OccWorld paper's L2 rows are these, SPEC §7.4).

Collision rates follow the same split (``collision_avg`` / ``collision_at``); the per-step
collision indicators come from :mod:`vlwm.eval.collision` (our grids) or :mod:`vlwm.eval.stp3`
(the reference BEV).  ADE is ``l2_avg`` over the whole prediction, FDE ``l2_at`` its last step.
Like the reference, each sample's value is computed first and the data set value is the mean over
samples (``eval_metric_stp3.py:242-243``).  Rates are in percent, distances in metres.

**Trajectories.**  A trajectory is the ego position at each future step in the grid frame of the
last observed frame (x forward, y left, z up; metres).  :func:`poses_from_rel_motion` builds it
from per-step motions (the dataset's ``rel_motion`` or a model's predicted one), composing the
heading changes; OccWorld instead sums its 2-d displacements without rotation (SPEC §7.3) — pass
``np.cumsum(rel_poses, axis=-2)`` to reproduce that.  L2 does not depend on the axes' names, only
on prediction and ground truth sharing them.  :func:`grid_motion_from_poses` gives the ground-truth
poses of the future *grid* frames from the recorded 13-d poses (what :func:`vlwm.eval.baselines.ego_warp`
and the collision check need).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from vlwm.angles import wrap_angle
from vlwm.data.config import OCCWORLD_FRAME_RATE_HZ
from vlwm.data.horizons import DEFAULT_HORIZONS_S, horizon_steps
from vlwm.data.trajectory import pose13_yaws


# ---------------------------------------------------------------------------------------------
# Trajectories from motions and poses
# ---------------------------------------------------------------------------------------------


def poses_from_rel_motion(rel_motion) -> np.ndarray:
    """Compose per-step motions into poses relative to the starting frame.

    Parameters
    ----------
    rel_motion : (..., T, 4) float
        ``(dx right, dy forward, dz up, dyaw)`` from frame i to frame i + 1, in frame i's ego frame
        (metres, radians; the dataset's ``rel_motion``, :mod:`vlwm.data.trajectory`).  Use
        ``rel_motion[..., h - 1:h - 1 + T_f, :]`` of a sample for the future frames after its last
        history frame ``h - 1``.

    Returns
    -------
    (..., T, 4) float64 ``(x forward, y left, z up, yaw)``: the vehicle's pose at frame i + 1
    relative to the vehicle at frame 0 (axes of frame 0's grid frame).  Columns 0..2 are the
    trajectory; add frame 0's ``ego_height`` to z to put it in that grid frame, whose origin lies on
    the ground.  With z zeroed, the rows are the ``motion`` argument of
    :func:`vlwm.eval.baselines.ego_warp` (the grid follows the ground, not the altitude).
    """
    m = np.asarray(rel_motion, np.float64)
    if m.shape[-1] != 4:
        raise ValueError(f"poses_from_rel_motion: expected (..., T, 4) (dx right, dy forward, dz up, dyaw), "
                         f"got {m.shape}")
    yaw_after = np.cumsum(m[..., 3], axis=-1)                       # heading after each step
    yaw_before = yaw_after - m[..., 3]                              # heading the step is expressed in
    fwd, left = m[..., 1], -m[..., 0]
    c, s = np.cos(yaw_before), np.sin(yaw_before)
    step = np.stack([c * fwd - s * left, s * fwd + c * left, m[..., 2]], axis=-1)
    xyz = np.cumsum(step, axis=-2)
    return np.concatenate([xyz, wrap_angle(yaw_after)[..., None]], axis=-1)


def grid_motion_from_poses(poses, ego_height, reference: int) -> np.ndarray:
    """Poses of each frame's grid frame in the grid frame of frame ``reference``.

    Parameters
    ----------
    poses : (N, 13) float
        Recorded poses ``[x, y, z, qw, qx, qy, qz, ...]`` (world frame; a sample's
        ``concatenate([history_poses, future_poses])``).
    ego_height : (N,) float
        Vehicle height above the ground under it (the sample's ``ego_height``); the grid frame's
        origin sits at ``z - ego_height`` (:mod:`vlwm.gt.ego_frame`).
    reference : int
        The frame whose grid frame the result is expressed in (the last history frame, ``T_h - 1``).

    Returns
    -------
    (N, 4) float64 ``(dx, dy, dz, dyaw)``: origin (metres; x forward, y left, z up) and heading
    (rad) of every frame's grid frame in the reference grid frame.
    """
    p = np.asarray(poses, np.float64)
    h = np.asarray(ego_height, np.float64)
    if p.ndim != 2 or p.shape[1] != 13 or h.shape != (len(p),):
        raise ValueError(f"grid_motion_from_poses: poses must be (N, 13) and ego_height (N,), got {p.shape} and "
                         f"{h.shape}")
    yaw = pose13_yaws(p)
    origin = np.stack([p[:, 0], p[:, 1], p[:, 2] - h], axis=1)
    d = origin - origin[reference]
    c, s = math.cos(yaw[reference]), math.sin(yaw[reference])
    dx = c * d[:, 0] + s * d[:, 1]
    dy = -s * d[:, 0] + c * d[:, 1]
    return np.stack([dx, dy, d[:, 2], wrap_angle(yaw - yaw[reference])], axis=1)


def l2_per_step(pred, gt) -> np.ndarray:
    """(..., T) float64 Euclidean distance between predicted and true positions (..., T, D), metres."""
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if p.shape != g.shape:
        raise ValueError(f"l2_per_step: pred {p.shape} and gt {g.shape} differ")
    return np.sqrt(np.sum((p - g) ** 2, axis=-1))


# ---------------------------------------------------------------------------------------------
# The accumulating metric
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanningResult:
    """Ego-motion metrics of one population. Metres and percent; NaN where nothing was valid."""

    ade: float
    """Mean L2 over all predicted steps (m)."""
    fde: float
    """L2 at the last predicted step (m)."""
    l2_avg: dict[str, float]
    """ST-P3 / VAD convention: L2 averaged over the steps up to each horizon (m)."""
    l2_at: dict[str, float]
    """UniAD convention: L2 at each horizon (m)."""
    l2_avg_mean: float
    """Mean of ``l2_avg`` over the horizons (the "avg" column)."""
    l2_at_mean: float
    """Mean of ``l2_at`` over the horizons."""
    collision_avg: dict[str, float]
    """Collision rate averaged over the steps up to each horizon (%); empty without collisions."""
    collision_at: dict[str, float]
    """Collision rate at each horizon (%)."""
    collision_avg_mean: float
    collision_at_mean: float
    horizons: dict[str, int]
    """``{"1s": step index, ...}``."""
    num_samples: int
    groups: dict[str, "PlanningResult"] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class PlanningMetric:
    """Accumulates predicted ego trajectories (and optional collision indicators) against the truth.

    Parameters
    ----------
    num_steps : int
        Future steps ``T``.
    frame_rate_hz : float
        Rate of the future frames (sets which steps are 1 s / 2 s / 3 s).
    horizons_s : sequence of float
        Reported horizons, seconds.
    """

    def __init__(self, num_steps: int, frame_rate_hz: float = OCCWORLD_FRAME_RATE_HZ,
                 horizons_s: Sequence[float] = DEFAULT_HORIZONS_S):
        self.num_steps = int(num_steps)
        self.horizons = horizon_steps(self.num_steps, frame_rate_hz, horizons_s)
        self.reset()

    def reset(self) -> None:
        self._l2: list[np.ndarray] = []          # (B, T) float64
        self._valid: list[np.ndarray] = []       # (B, T) bool
        self._coll: list[np.ndarray] = []        # (B, T) float64, NaN where not given
        self._group: list[str | None] = []

    def update(self, pred, gt, valid=None, collision=None, group: str | Sequence[str] | None = None) -> None:
        """Add a batch.

        Parameters
        ----------
        pred, gt : (B, T, D) float
            Predicted and true ego positions at the future steps, one frame for both (metres;
            D = 2 for OccWorld's planar trajectories, 3 for drones).
        valid : (B, T) bool, optional
            Steps whose true position exists (the dataset's ``rel_poses_valid``); others are skipped.
        collision : (B, T) bool, optional
            Whether the predicted ego collides at each step (already 0 where the true trajectory
            collides, the ST-P3 exclusion — :func:`vlwm.eval.collision.occupancy_collisions`).
        group : str or sequence of B str, optional
            Population of the batch or of each sample (``batch["agent_type"]``).
        """
        l2 = l2_per_step(pred, gt)
        if l2.ndim != 2 or l2.shape[1] != self.num_steps:
            raise ValueError(f"PlanningMetric.update: expected (B, {self.num_steps}, D) positions, got "
                             f"{np.shape(pred)}")
        b = l2.shape[0]
        ok = np.ones_like(l2, bool) if valid is None else np.broadcast_to(np.asarray(valid, bool), l2.shape)
        coll = np.full(l2.shape, np.nan) if collision is None else \
            np.broadcast_to(np.asarray(collision, np.float64), l2.shape)
        if group is None or isinstance(group, str):
            names = [group] * b
        else:
            names = list(group)
            if len(names) != b:
                raise ValueError(f"PlanningMetric.update: {len(names)} group names for a batch of {b}")
        self._l2.append(l2)
        self._valid.append(ok.copy())
        self._coll.append(coll.copy())
        self._group.extend(names)

    def compute(self) -> PlanningResult:
        if not self._l2:
            raise RuntimeError("PlanningMetric.compute: nothing accumulated; call update() first")
        l2, ok, coll = (np.concatenate(a) for a in (self._l2, self._valid, self._coll))
        names = np.array(self._group, dtype=object)
        result = self._result(l2, ok, coll)
        groups = {g: self._result(l2[names == g], ok[names == g], coll[names == g])
                  for g in sorted({n for n in self._group if n is not None})}
        return PlanningResult(**{**asdict(result), "groups": groups})

    def _result(self, l2: np.ndarray, ok: np.ndarray, coll: np.ndarray) -> PlanningResult:
        last = self.num_steps - 1
        l2_avg = {h: _sample_mean(l2[:, :k + 1], ok[:, :k + 1]) for h, k in self.horizons.items()}
        l2_at = {h: _sample_mean(l2[:, k:k + 1], ok[:, k:k + 1]) for h, k in self.horizons.items()}
        has_coll = ~np.isnan(coll)
        c_avg = {h: 100 * _sample_mean(coll[:, :k + 1], ok[:, :k + 1] & has_coll[:, :k + 1])
                 for h, k in self.horizons.items()} if has_coll.any() else {}
        c_at = {h: 100 * _sample_mean(coll[:, k:k + 1], ok[:, k:k + 1] & has_coll[:, k:k + 1])
                for h, k in self.horizons.items()} if has_coll.any() else {}
        return PlanningResult(
            ade=_sample_mean(l2, ok), fde=_sample_mean(l2[:, last:], ok[:, last:]),
            l2_avg=l2_avg, l2_at=l2_at, l2_avg_mean=_nanmean(l2_avg), l2_at_mean=_nanmean(l2_at),
            collision_avg=c_avg, collision_at=c_at, collision_avg_mean=_nanmean(c_avg),
            collision_at_mean=_nanmean(c_at), horizons=dict(self.horizons), num_samples=len(l2))


def _sample_mean(values: np.ndarray, ok: np.ndarray) -> float:
    """Mean over samples of each sample's mean over its valid steps; samples without any are skipped."""
    count = ok.sum(axis=1)
    keep = count > 0
    if not keep.any():
        return math.nan
    per_sample = np.where(ok, values, 0.0).sum(axis=1)[keep] / count[keep]
    return float(per_sample.mean())


def _nanmean(d: dict[str, float]) -> float:
    v = [x for x in d.values() if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan
