"""Video panoptic quality (VPQ) of forecast occupancy for the dynamic classes, FIERY's definition.

FIERY (Hu et al., ICCV 2021; ``fiery/metrics.py: PanopticMetric``) scores future instance
segmentation as

    VPQ = sum_t sum_{(p, q) in TP_t} IoU(p, q)  /  sum_t (|TP_t| + |FP_t| / 2 + |FN_t| / 2)

* In each frame a predicted and a true instance **match** when their IoU exceeds 0.5 and their
  classes agree (IoU > 0.5 makes matches unique).
* **Temporal consistency**: per sequence, every true instance remembers the predicted id it last
  matched.  A match with a *different* predicted id (an id switch) counts as one false negative
  plus one false positive instead of a true positive, and the memory moves to the new id.
* Unmatched true instances present in the frame are false negatives, unmatched predicted ones false
  positives.
* Numerator and denominator are summed over frames, sequences and the whole data set before the
  division (FIERY's code; the paper writes the sum over t of per-frame ratios).  We report that
  pooled value as ``vpq`` and, per future step, the same ratio pooled over sequences
  (``vpq_per_step``).  With no instance anywhere the value is NaN (FIERY reports 0).

Instances, in 3-D voxel grids:

* **Ground truth**: the caller's instance grids (the simulator's per-object ids, consistent over
  time); id <= 0 is "no instance".  An instance's class in a frame is the majority class of its
  voxels there; instances whose class is not dynamic are ignored.  Without instance grids the
  ground truth goes through the same procedure as the predictions (documented fallback: two
  touching cars then form one instance).
* **Predictions**: per frame, connected components of each dynamic class (``scipy.ndimage.label``,
  **26-connectivity** — face, edge and corner neighbours — by default, so thin diagonal structures
  stay whole; 6 is available), linked over time by :func:`track_instances`: constant-velocity
  centroid prediction, ego motion compensated when the grid frames' poses are given, and a
  Hungarian assignment (same class, centroid distance at most ``max_link_distance_m``) — FIERY
  likewise links its instances by Hungarian matching of (flow-warped) centres.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from vlwm.gt.grid import GridSpec
from vlwm.labels import DYNAMIC_OCC_CLASSES

#: A true and a predicted instance match above this IoU (FIERY, and panoptic quality generally).
MATCH_IOU = 0.5
#: Largest track x component cost matrix solved exactly (Hungarian); larger ones are linked greedily.
DENSE_ASSIGNMENT_LIMIT = 1_000_000
#: Nearest tracks considered for each component.
LINK_CANDIDATES = 8
#: Neighbourhoods of :func:`scipy.ndimage.generate_binary_structure` rank 3.
CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}


@dataclass(frozen=True)
class TrackerConfig:
    """How predicted (or id-less true) occupancy is cut into instances and linked over time."""

    connectivity: int = 26
    """Voxel neighbourhood of a connected component: 6, 18 or 26."""
    min_voxels: int = 1
    """Components smaller than this are dropped (1 keeps everything, as FIERY)."""
    max_link_distance_m: float = 5.0
    """Largest distance (m) between a track's predicted centroid and a component to link them."""

    def __post_init__(self):
        if self.connectivity not in CONNECTIVITY_RANK:
            raise ValueError(f"TrackerConfig.connectivity must be one of {sorted(CONNECTIVITY_RANK)}, "
                             f"got {self.connectivity}")


def connected_instances(sem: np.ndarray, classes: Sequence[int], connectivity: int = 26,
                        min_voxels: int = 1) -> tuple[np.ndarray, dict[int, int]]:
    """Connected components of each class of one frame.

    Parameters
    ----------
    sem : (X, Y, Z) int, class ids.
    classes : the classes to cut into instances.

    Returns
    -------
    instances : (X, Y, Z) int32, 0 = none, 1..N the components.
    classes_of : ``{instance id: class}``.
    """
    structure = ndimage.generate_binary_structure(3, CONNECTIVITY_RANK[connectivity])
    out = np.zeros(sem.shape, np.int32)
    classes_of: dict[int, int] = {}
    things = np.isin(sem, list(classes))
    if not things.any():
        return out, classes_of
    found = set(np.unique(sem[things]).tolist())
    present = [c for c in classes if c in found]
    # label only inside the box around the classes' voxels (dynamic objects are sparse in a large grid);
    # components are numbered in raster order, which a box keeps, so the ids are those of the whole grid
    box = tuple(slice(int(ix[0]), int(ix[-1]) + 1) for ix in
                (np.flatnonzero(things.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)))
    crop, out_crop = sem[box], out[box]                                                  # views
    for c in present:
        labels, n = ndimage.label(crop == c, structure=structure)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = np.flatnonzero(sizes >= min_voxels)
        keep = keep[keep > 0]
        new = np.zeros(n + 1, np.int32)
        new[keep] = len(classes_of) + 1 + np.arange(len(keep), dtype=np.int32)
        out_crop[labels > 0] = new[labels[labels > 0]]
        classes_of.update({int(new[k]): int(c) for k in keep})
    return out, classes_of


def track_instances(sem: np.ndarray, spec: GridSpec, classes: Sequence[int] = DYNAMIC_OCC_CLASSES,
                    frames: np.ndarray | None = None, config: TrackerConfig = TrackerConfig()) -> np.ndarray:
    """Instances of a sequence with ids consistent over time.

    Parameters
    ----------
    sem : (T, X, Y, Z) int
        Class ids per frame, each frame in its own grid frame.
    spec : GridSpec
        The grid (for metres).
    classes : the dynamic classes.
    frames : (T, 4) float, optional
        ``(dx, dy, dz, dyaw)`` of each frame's grid frame in one common frame (e.g.
        :func:`vlwm.eval.trajectory.grid_motion_from_poses`); without it the grids are taken as
        not moving.

    Returns
    -------
    (T, X, Y, Z) int32 instance ids (0 = none); a component linked to a component of the previous
    frame keeps its id.
    """
    sem = np.asarray(sem)
    out = np.zeros(sem.shape, np.int32)
    next_id = 1
    tracks: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}    # id -> (class, centroid common frame, velocity)
    for t in range(len(sem)):
        inst, cls = connected_instances(sem[t], classes, config.connectivity, config.min_voxels)
        ids = sorted(cls)
        cent = _centroids(inst, ids, spec)                                                 # (n, 3) own grid frame
        if frames is not None:
            cent = _to_common(cent, np.asarray(frames, np.float64)[t])
        prev = list(tracks)
        assigned: dict[int, int] = {}
        if prev and ids:
            prev_pos = np.array([tracks[k][1] + tracks[k][2] for k in prev])              # constant velocity
            prev_cls = np.array([tracks[k][0] for k in prev])
            for r, c in _link(prev_pos, prev_cls, cent, np.array([cls[i] for i in ids]), config.max_link_distance_m):
                assigned[ids[c]] = prev[r]
        new_tracks = {}
        relabel = np.zeros(max(ids, default=0) + 1, np.int32)
        for n, i in enumerate(ids):
            if i in assigned:
                tid = assigned[i]
                vel = cent[n] - tracks[tid][1]
            else:
                tid, next_id = next_id, next_id + 1
                vel = np.zeros(3)
            relabel[i] = tid
            new_tracks[tid] = (cls[i], cent[n], vel)
        tracks = new_tracks
        out[t] = relabel[inst]
    return out


def _centroids(inst: np.ndarray, ids: list[int], spec: GridSpec) -> np.ndarray:
    """(n, 3) float64 centroid (metres, grid frame) of each instance id."""
    if not ids:
        return np.zeros((0, 3))
    idx = np.argwhere(inst > 0)
    lab = inst[inst > 0]
    count = np.bincount(lab, minlength=max(ids) + 1)[ids].astype(np.float64)
    sums = np.stack([np.bincount(lab, weights=idx[:, a], minlength=max(ids) + 1)[ids] for a in range(3)], axis=1)
    return spec.centres(sums / count[:, None])                # mean voxel index -> metres


def _to_common(points: np.ndarray, frame: np.ndarray) -> np.ndarray:
    c, s = math.cos(frame[3]), math.sin(frame[3])
    x = c * points[:, 0] - s * points[:, 1] + frame[0]
    y = s * points[:, 0] + c * points[:, 1] + frame[1]
    return np.stack([x, y, points[:, 2] + frame[2]], axis=1)


def _link(prev_pos: np.ndarray, prev_cls: np.ndarray, cur_pos: np.ndarray, cur_cls: np.ndarray,
          max_distance: float) -> list[tuple[int, int]]:
    """(track row, component column) pairs: same class, centroids at most ``max_distance`` apart.

    Candidates: each component's :data:`LINK_CANDIDATES` nearest tracks within reach (k-d tree).
    Hungarian assignment on them; a problem larger than :data:`DENSE_ASSIGNMENT_LIMIT` cells
    (thousands of speckles) is assigned greedily, nearest first.
    """
    pairs = []
    for c in np.unique(cur_cls):
        rows, cols = np.flatnonzero(prev_cls == c), np.flatnonzero(cur_cls == c)
        if not len(rows):
            continue
        kk = min(LINK_CANDIDATES, len(rows))
        d, r = cKDTree(prev_pos[rows]).query(cur_pos[cols], k=kk, distance_upper_bound=max_distance)
        d, r = d.reshape(len(cols), kk), r.reshape(len(cols), kk)             # (n, k); r == len(rows): none
        k = np.repeat(np.arange(len(cols)), kk)
        d, r = d.ravel(), r.ravel()
        ok = r < len(rows)
        if not ok.any():
            continue
        r, k, d = r[ok], k[ok], d[ok]
        ur, r = np.unique(r, return_inverse=True)
        uk, k = np.unique(k, return_inverse=True)
        if len(ur) * len(uk) <= DENSE_ASSIGNMENT_LIMIT:
            big = (min(len(ur), len(uk)) + 1) * (max_distance + 1.0)            # more links always win
            cost = np.full((len(ur), len(uk)), big)
            cost[r, k] = d
            chosen = [(a, b) for a, b in zip(*linear_sum_assignment(cost)) if cost[a, b] < big]
        else:
            chosen, used_r, used_k = [], set(), set()
            for n in np.argsort(d, kind="stable"):
                if r[n] not in used_r and k[n] not in used_k:
                    chosen.append((r[n], k[n]))
                    used_r.add(r[n])
                    used_k.add(k[n])
        pairs += [(int(rows[ur[a]]), int(cols[uk[b]])) for a, b in chosen]
    return pairs


# ---------------------------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VPQResult:
    """Video panoptic quality of the dynamic classes (fractions in [0, 1]; NaN without instances)."""

    vpq: float
    """Pooled over every class, frame and sequence (FIERY's value)."""
    sq: float
    """Segmentation quality: mean IoU of the true positives."""
    rq: float
    """Recognition quality: TP / (TP + FP/2 + FN/2)."""
    vpq_per_step: list[float]
    """(T,) VPQ of each future step, pooled over sequences and classes."""
    class_vpq: dict[int, float]
    """VPQ per dynamic class id (NaN where the class never occurred)."""
    true_positives: int
    false_positives: int
    false_negatives: int
    num_samples: int
    groups: dict[str, "VPQResult"] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class VPQMetric:
    """Accumulates VPQ over sequences.

    Parameters
    ----------
    num_steps : int
        Future steps T of every update.
    spec : GridSpec
        The grid (metres, for linking instances over time).
    classes : sequence of int
        The dynamic ("thing") classes; default :data:`vlwm.labels.DYNAMIC_OCC_CLASSES`.
    tracker : TrackerConfig
        How id-less occupancy is cut into tracked instances.
    """

    def __init__(self, num_steps: int, spec: GridSpec, classes: Sequence[int] = DYNAMIC_OCC_CLASSES,
                 tracker: TrackerConfig = TrackerConfig()):
        self.num_steps, self.spec, self.tracker = int(num_steps), spec, tracker
        self.classes = [int(c) for c in classes]
        self._col = {c: i for i, c in enumerate(self.classes)}
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._shape = (self.num_steps, len(self.classes))           # (T, C) accumulators
        self._acc: dict[str | None, dict] = {}                     # population (None = all) -> sums

    def _bucket(self, name: str | None) -> dict:
        if name not in self._acc:
            self._acc[name] = {k: np.zeros(self._shape, np.float64 if k == "iou" else np.int64)
                               for k in ("iou", "tp", "fp", "fn")} | {"samples": 0}
        return self._acc[name]

    def update(self, pred_sem, gt_sem, gt_instance=None, pred_instance=None, frames=None,
               group: str | Sequence[str] | None = None) -> None:
        """Add a batch of sequences.

        Parameters
        ----------
        pred_sem, gt_sem : (B, T, X, Y, Z) int class ids (numpy or torch).
        gt_instance : (B, T, X, Y, Z) int, optional
            True instance ids, consistent over time (<= 0: none).  Without them the ground truth
            is cut and tracked like the prediction.
        pred_instance : (B, T, X, Y, Z) int, optional
            Predicted instance ids, when the model makes them; else :func:`track_instances`.
        frames : (B, T, 4) float, optional
            Poses of the future grid frames in one frame per sequence (ego-motion compensation
            for the tracker).
        group : str or sequence of B str, optional
            Population of the batch or of each sequence.
        """
        pred_sem, gt_sem = _np(pred_sem), _np(gt_sem)
        if pred_sem.shape != gt_sem.shape or pred_sem.ndim != 5 or pred_sem.shape[1] != self.num_steps:
            raise ValueError(f"VPQMetric.update: pred {pred_sem.shape} and gt {gt_sem.shape} must both be "
                             f"(B, {self.num_steps}, X, Y, Z)")
        b = len(pred_sem)
        names = [group] * b if group is None or isinstance(group, str) else list(group)
        if len(names) != b:
            raise ValueError(f"VPQMetric.update: {len(names)} group names for a batch of {b}")
        for i in range(b):
            fr = None if frames is None else _np(frames)[i]
            gi = _np(gt_instance)[i] if gt_instance is not None else \
                track_instances(gt_sem[i], self.spec, self.classes, fr, self.tracker)
            pi = _np(pred_instance)[i] if pred_instance is not None else \
                track_instances(pred_sem[i], self.spec, self.classes, fr, self.tracker)
            counts = self._sequence(pred_sem[i], pi, gt_sem[i], gi)
            for name in {None, names[i]}:
                acc = self._bucket(name)
                for k in ("iou", "tp", "fp", "fn"):
                    acc[k] += counts[k]
                acc["samples"] += 1

    def _sequence(self, pred_sem, pred_inst, gt_sem, gt_inst) -> dict[str, np.ndarray]:
        """FIERY's per-frame matching with id-switch penalty over one sequence."""
        out = {k: np.zeros(self._shape, np.float64 if k == "iou" else np.int64) for k in ("iou", "tp", "fp", "fn")}
        memory: dict[int, int] = {}                                              # true id -> last matched pred id
        for t in range(self.num_steps):
            g_ids, g_cls = self._instances(gt_inst[t], gt_sem[t])
            p_ids, p_cls = self._instances(pred_inst[t], pred_sem[t])
            gi, pj, iou = _overlaps(gt_inst[t], g_ids, pred_inst[t], p_ids)     # pairs that intersect
            matched_g, matched_p = np.zeros(len(g_ids), bool), np.zeros(len(p_ids), bool)
            for a, b, v in zip(gi, pj, iou):
                if v <= MATCH_IOU or g_cls[a] != p_cls[b]:
                    continue
                g, p, col = int(g_ids[a]), int(p_ids[b]), self._col[int(g_cls[a])]
                matched_g[a] = matched_p[b] = True
                if g in memory and memory[g] != p:                               # id switch
                    out["fn"][t, col] += 1
                    out["fp"][t, col] += 1
                else:
                    out["tp"][t, col] += 1
                    out["iou"][t, col] += v
                memory[g] = p
            cols = len(self.classes)
            out["fn"][t] += np.bincount(self._columns(g_cls[~matched_g]), minlength=cols)
            out["fp"][t] += np.bincount(self._columns(p_cls[~matched_p]), minlength=cols)
        return out

    def _instances(self, inst: np.ndarray, sem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ids present in a frame whose majority class is dynamic, and those classes (int64)."""
        ids = np.unique(inst[inst > 0])
        if not len(ids):
            return ids, np.zeros(0, np.int64)
        lookup = np.searchsorted(ids, inst[inst > 0])
        votes = np.zeros((len(ids), int(sem.max()) + 1), np.int64)
        np.add.at(votes, (lookup, sem[inst > 0].astype(np.int64)), 1)
        cls = votes.argmax(axis=1)
        keep = np.isin(cls, self.classes)
        return ids[keep], cls[keep]

    def _columns(self, classes: np.ndarray) -> np.ndarray:
        """Accumulator column of each class id."""
        lut = np.zeros(max(self.classes) + 1, np.int64)
        lut[self.classes] = np.arange(len(self.classes))
        return lut[classes]

    def compute(self) -> VPQResult:
        if None not in self._acc:
            raise RuntimeError("VPQMetric.compute: nothing accumulated; call update() first")
        result = self._result(self._acc[None])
        groups = {g: self._result(a) for g, a in sorted(self._acc.items(), key=lambda kv: str(kv[0])) if g is not None}
        return VPQResult(**{**asdict(result), "groups": groups})

    def _result(self, a: dict) -> VPQResult:
        iou, tp, fp, fn = a["iou"], a["tp"], a["fp"], a["fn"]

        def ratio(num, den):
            return float(num / den) if den > 0 else math.nan

        den = tp + fp / 2 + fn / 2
        return VPQResult(
            vpq=ratio(iou.sum(), den.sum()), sq=ratio(iou.sum(), tp.sum()), rq=ratio(tp.sum(), den.sum()),
            vpq_per_step=[ratio(iou[t].sum(), den[t].sum()) for t in range(self.num_steps)],
            class_vpq={c: ratio(iou[:, k].sum(), den[:, k].sum()) for c, k in self._col.items()},
            true_positives=int(tp.sum()), false_positives=int(fp.sum()), false_negatives=int(fn.sum()),
            num_samples=int(a["samples"]))


def _overlaps(g_inst: np.ndarray, g_ids: np.ndarray, p_inst: np.ndarray,
              p_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every intersecting (true, predicted) pair of one frame: row in ``g_ids``, row in ``p_ids``, IoU."""
    if not len(g_ids) or not len(p_ids):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    some = np.flatnonzero((g_inst.ravel() > 0) | (p_inst.ravel() > 0))             # voxels of any instance
    gi = _compact(g_inst.ravel()[some], g_ids).astype(np.int64)                  # -1 where not listed
    pi = _compact(p_inst.ravel()[some], p_ids).astype(np.int64)
    g_area = np.bincount(gi[gi >= 0], minlength=len(g_ids))
    p_area = np.bincount(pi[pi >= 0], minlength=len(p_ids))
    both = (gi >= 0) & (pi >= 0)
    keys, inter = np.unique(gi[both] * len(p_ids) + pi[both], return_counts=True)
    g, p = np.divmod(keys, len(p_ids))
    return g, p, inter / (g_area[g] + p_area[p] - inter)


def _compact(ids: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Position of each id in the sorted ``listed`` array, -1 for ids not in it."""
    pos = np.searchsorted(listed, ids)
    pos = np.clip(pos, 0, len(listed) - 1)
    return np.where(listed[pos] == ids, pos, -1)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
