"""The ST-P3 planning metric exactly as OccWorld runs it (``utils/metric_stp3.py``, SPEC §7.3).

This is the reference arithmetic, kept for parity with published numbers: obstacles are a
bird's-eye-view raster of 200 x 200 cells of 0.5 m covering [-50, 50] m, **row = forward
(decreasing), column = right**, one map per future step (OccWorld rasterises the future boxes of
vehicles and pedestrians into it; any boolean map in that layout works).  Trajectories are in
OccWorld's ego frame: **x right, y forward**, metres, positions relative to the current ego.

* :func:`box_collision` — the ego box (ST-P3's nuScenes car, 4.084 x 1.85 m, axis-aligned, centre
  0.5 m ahead of the waypoint) rasterised at each waypoint; cells outside the map are clamped to
  its border [reference behaviour].
* :func:`point_collision` — the reference's single-cell probe ``row = (24.875 - y) / 0.5``,
  ``col = (24.875 + x) / 0.5``: because of a halved offset it looks ~25 m left and ahead of the
  waypoint, not at it [reference quirk, reproduced; not a meaningful collision test].
* :func:`evaluate_coll` — both, with the ST-P3 rule that steps where the **true** trajectory's box
  already collides are not counted (they stay in the denominator of the rates).
* :func:`compute_l2` and :func:`planning_metrics` — the per-sample dict of
  ``TransVQVAE.compute_planner_metric_stp3`` (18 values at 1 s / 2 s / 3 s = waypoints 2 / 4 / 6).

Dtypes follow the reference (float32 trajectories give float32 arithmetic), so the values match it
bit for bit.  For our own grids use :mod:`vlwm.eval.collision`; to aggregate over a data set feed
the per-step indicators to :class:`vlwm.eval.trajectory.PlanningMetric`.
"""

from __future__ import annotations

import math

import numpy as np

#: BEV raster of the reference: (lower bound, upper bound, cell size) in metres, both axes.
BEV_BOUND = (-50.0, 50.0, 0.5)
BEV_CELLS = int(round((BEV_BOUND[1] - BEV_BOUND[0]) / BEV_BOUND[2]))            # 200
#: Centre of the first cell (the reference's ``bx``), metres.
BEV_FIRST_CENTRE = BEV_BOUND[0] + BEV_BOUND[2] / 2.0                              # -49.75
#: ST-P3's ego vehicle (nuScenes car): width and length in metres, box centre ahead of the waypoint.
EGO_WIDTH_M, EGO_LENGTH_M = 1.85, 4.084
EGO_FORWARD_SHIFT_M = 0.5
#: Horizons of the reference: seconds -> number of waypoints (2 Hz).
STP3_HORIZONS = {1: 2, 2: 4, 3: 6}


def ego_footprint_cells() -> np.ndarray:
    """(n, 2) int64 (row offset along forward, column offset along the side) cells of the ego box.

    The reference rasterises the box corners with ``skimage.draw.polygon`` in cell coordinates
    centred on the map; for an axis-aligned rectangle that is every integer point inside it (none
    of ST-P3's corners falls on an integer, so the boundary rule never matters).  32 cells: 8
    along the length, 4 across.
    """
    dx, first = np.float32(BEV_BOUND[2]), np.float32(BEV_FIRST_CENTRE)
    lon = (np.array([-EGO_LENGTH_M / 2 + EGO_FORWARD_SHIFT_M, EGO_LENGTH_M / 2 + EGO_FORWARD_SHIFT_M]) - first) / dx
    lat = (np.array([-EGO_WIDTH_M / 2, EGO_WIDTH_M / 2]) - first) / dx
    rows = np.arange(math.ceil(lon.min()), math.floor(lon.max()) + 1)
    cols = np.arange(math.ceil(lat.min()), math.floor(lat.max()) + 1)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.int64)


def box_collision(traj, obstacles) -> np.ndarray:
    """Whether the ego box at each waypoint covers an obstacle cell (``evaluate_single_coll``).

    Parameters
    ----------
    traj : (T, 2) float32 or float64
        Waypoints (x right, y forward), metres, relative to the current ego.
    obstacles : (T, 200, 200) bool or 0/1
        Obstacle raster per step (row = forward decreasing, column = right).

    Returns
    -------
    (T,) bool.
    """
    traj = np.asarray(traj)
    obstacles = np.asarray(obstacles)
    _check(traj, obstacles, "box_collision")
    cells = ego_footprint_cells()                                            # (n, 2)
    scaled = traj[:, ::-1] / np.asarray(BEV_BOUND[2], traj.dtype)            # (T, 2) (forward, right) cells, traj dtype
    pos = scaled[:, None, :].astype(np.float64) + cells[None]                # (T, n, 2)
    r = np.clip((BEV_CELLS - pos[..., 0]).astype(np.int32), 0, BEV_CELLS - 1)
    c = np.clip(pos[..., 1].astype(np.int32), 0, BEV_CELLS - 1)
    t = np.arange(len(traj))[:, None]
    return np.any(obstacles[t, r, c] != 0, axis=1)


def point_collision(traj, obstacles) -> tuple[np.ndarray, np.ndarray]:
    """The reference's single-cell probe (see the module docstring: it is off by ~25 m).

    Returns
    -------
    hit : (T,) bool, obstacle at the probed cell (False where the cell is off the map).
    on_map : (T,) bool, whether the probed cell lies on the map.
    """
    traj = np.asarray(traj)
    obstacles = np.asarray(obstacles)
    _check(traj, obstacles, "point_collision")
    dt = traj.dtype
    half_first = -np.asarray(BEV_FIRST_CENTRE, dt) / np.asarray(2, dt)          # 24.875: the quirk
    cell = np.asarray(BEV_BOUND[2], dt)
    row = ((half_first - traj[:, 1]) / cell).astype(np.int64)                 # truncation toward zero (torch .long())
    col = ((half_first + traj[:, 0]) / cell).astype(np.int64)
    on_map = (row >= 0) & (row < BEV_CELLS) & (col >= 0) & (col < BEV_CELLS)
    hit = np.zeros(len(traj), bool)
    t = np.flatnonzero(on_map)
    hit[t] = obstacles[t, row[t], col[t]] != 0
    return hit, on_map


def evaluate_coll(pred, gt, obstacles) -> tuple[np.ndarray, np.ndarray]:
    """Per-step point and box collisions of one sample, ST-P3 exclusion applied (``evaluate_coll``).

    Parameters
    ----------
    pred, gt : (T, 2) float, predicted and true waypoints (x right, y forward), metres.
    obstacles : (T, 200, 200) obstacle raster.

    Returns
    -------
    obj_coll, obj_box_coll : (T,) int64 0/1; 0 at steps where ``gt``'s box collides.
    """
    gt_box = box_collision(gt, obstacles)
    hit, on_map = point_collision(pred, obstacles)
    obj_coll = (hit & on_map & ~gt_box).astype(np.int64)
    obj_box_coll = (box_collision(pred, obstacles) & ~gt_box).astype(np.int64)
    return obj_coll, obj_box_coll


def compute_l2(pred, gt) -> float:
    """Mean over waypoints of the L2 error, summed in the input dtype like the reference."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    dt = np.result_type(pred.dtype, gt.dtype)
    d = np.sqrt((pred[:, 0] - gt[:, 0]).astype(dt) ** 2 + (pred[:, 1] - gt[:, 1]).astype(dt) ** 2)
    total = np.asarray(0, dt)
    for v in d:                                                               # sequential, as Python's sum()
        total = total + v
    return float(total / np.asarray(len(d), dt))


def planning_metrics(pred, gt, obstacles) -> dict[str, float]:
    """The 18 values of ``compute_planner_metric_stp3`` for one sample (6 waypoints at 2 Hz).

    Keys ``plan_L2_{k}s`` (ST-P3/VAD: average up to k s), ``plan_L2_{k}s_single`` (UniAD: at k s),
    ``plan_obj_col_{k}s[_single]`` (point probe), ``plan_obj_box_col_{k}s[_single]`` (box), k = 1, 2, 3;
    collision values are fractions (not percent), as the reference stores them.
    """
    pred, gt, obstacles = np.asarray(pred), np.asarray(gt), np.asarray(obstacles)
    if len(pred) < max(STP3_HORIZONS.values()):
        raise ValueError(f"planning_metrics: needs {max(STP3_HORIZONS.values())} waypoints, got {len(pred)}")
    obj, box = evaluate_coll(pred, gt, obstacles)
    out: dict[str, float] = {}
    for k, n in STP3_HORIZONS.items():
        out[f"plan_L2_{k}s"] = compute_l2(pred[:n], gt[:n])
        out[f"plan_obj_col_{k}s"] = float(np.mean(obj[:n].astype(np.float32), dtype=np.float32))
        out[f"plan_obj_box_col_{k}s"] = float(np.mean(box[:n].astype(np.float32), dtype=np.float32))
        out[f"plan_L2_{k}s_single"] = compute_l2(pred[n - 1:n], gt[n - 1:n])
        out[f"plan_obj_col_{k}s_single"] = float(obj[n - 1])
        out[f"plan_obj_box_col_{k}s_single"] = float(box[n - 1])
    return out


def _check(traj: np.ndarray, obstacles: np.ndarray, where: str) -> None:
    if traj.ndim != 2 or traj.shape[1] != 2:
        raise ValueError(f"{where}: trajectory must be (T, 2) (x right, y forward), got {traj.shape}")
    if obstacles.shape != (len(traj), BEV_CELLS, BEV_CELLS):
        raise ValueError(f"{where}: obstacles must be ({len(traj)}, {BEV_CELLS}, {BEV_CELLS}), got {obstacles.shape}")
