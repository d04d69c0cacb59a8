"""Our recordings in OccWorld's own format, for the original OccWorld code (the guide's "integration mode").

Writes, under ``out_dir``::

    gts/<scene>/<token>/labels.npz                       semantics (uint8 ids), mask_lidar, mask_camera (uint8 0/1)
    nuscenes_infos_{train,val,test}_temporal_v3_scene.pkl {'infos': {scene: [info, ...]}, 'metadata': {...}}

Point OccWorld's ``data_path`` at ``out_dir`` and its ``imageset`` at the pickles.  A *scene* is a
run of consecutive usable frames of one sequence (a sequence with gaps or bad frames becomes
``<name>_part2``, ...); runs shorter than ``min_scene_frames`` are left out (OccWorld's
random-window training set fails on scenes shorter than its 16-frame windows, SPEC §1.4).  Splits
are the dataset's (by sequence, same seed; time blocks for tiny datasets).  Keyframes are every
``frame_stride``-th recorded frame.

Per info (what the reference's training dataset reads, SPEC §1.3): ``token``; ``gt_ego_fut_trajs``
(6, 2) — VAD-style per-step displacements of the next six keyframes in the keyframe's ego frame,
x right, y forward (row 0 is OccWorld's ``rel_poses``) — with ``gt_ego_fut_masks`` (6,);
``pose_mode`` / ``gt_ego_fut_cmd`` (3,) — the command [right, left, straight] (VAD rule, as
:mod:`vlwm.data.trajectory`); ``ego2global_translation`` / ``ego2global_rotation`` (w, x, y, z);
``lidar2ego_*``; ``cams`` (per camera: ``data_path``, ``cam_intrinsic``, ``sensor2ego_*``,
``sensor2lidar_*``) when the sequence recorded cameras; ``timestamp`` (µs), ``prev``/``next``,
``scene_token``, ``occ_path`` and our ``vlwm`` provenance.  Evaluation-only fields of the reference's
test mode (boxes, agent trajectories) are not produced.

The pickles hold only dicts, lists, strings, numbers and numpy arrays, and the arrays are written
so that numpy 1.x (OccWorld's environment) and 2.x both read them (``numpy.ndarray`` over a
``bytearray``, not numpy 2's private ``numpy._core`` reconstructor).  The grid is the data's: the
released OccWorld models need 200 x 200 x 16 (``--grid occ3d`` ground truth).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vlwm.data import layout
from vlwm.data.config import SPLITS, DatasetConfig
from vlwm.data.dataset import sequence_motion
from vlwm.data.splits import TIME_SPLIT, assign_splits, time_block
from vlwm.data.trajectory import pose13_yaws, to_ego_xy
from vlwm.data.validation import SequenceRecord, read_agent_type, validate_sequence
from vlwm.io import recording
from vlwm.io.frames import matrix_to_quat

OCCWORLD_TRAIN_FRAMES = 16    #: window of OccWorld's world-model training (return_len 15 + 1, SPEC §1.4)
FUTURE_STEPS = 6              #: rows of VAD's ``gt_ego_fut_trajs``
EXPORT_VERSION = "vlwm-occworld-export-1"
PICKLE_PROTOCOL = 4           #: readable by OccWorld's Python 3.8


def info_pickle_name(split: str) -> str:
    return f"nuscenes_infos_{split}_temporal_v3_scene.pkl"


@dataclass
class ExportReport:
    """What :func:`export_occworld` wrote: scenes per split (name, keyframes), runs left out, pickle paths."""

    scenes: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    left_out: list[str] = field(default_factory=list)
    pickles: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{s}: {len(v)} scene(s), {sum(n for _, n in v)} keyframes -> {self.pickles.get(s)}"
                 for s, v in self.scenes.items()]
        lines += [f"left out: {x}" for x in self.left_out]
        return "\n".join(lines)


class _PortablePickler(pickle.Pickler):
    """Pickles numpy arrays as ``numpy.ndarray(shape, dtype, buffer=bytearray)`` (numpy 1.x and 2.x)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            a = np.ascontiguousarray(obj)
            return np.ndarray, (a.shape, a.dtype.str, bytearray(a.tobytes()))
        return NotImplemented


def dump_plain_pickle(obj, path: Path) -> None:
    buf = io.BytesIO()
    _PortablePickler(buf, protocol=PICKLE_PROTOCOL).dump(obj)
    path.write_bytes(buf.getvalue())


def _quat_wxyz(r: np.ndarray) -> list[float]:
    x, y, z, w = matrix_to_quat(r)
    return [float(w), float(x), float(y), float(z)]


def _runs(rec: SequenceRecord, usable: np.ndarray, stride: int, max_gap_factor: float) -> list[list[int]]:
    """Runs of consecutive usable frames without gaps, each thinned to every ``stride``-th frame (keyframes)."""
    runs, current = [], []
    for pos in range(rec.num_frames):
        if current and usable[pos]:
            dt = rec.timestamps[pos] - rec.timestamps[current[-1]]
            if 0 < dt <= max_gap_factor / rec.frame_rate_hz:
                current.append(pos)
                continue
        if current:
            runs.append(current)
        current = [pos] if usable[pos] else []
    if current:
        runs.append(current)
    return [r[::stride] for r in runs]


def _cams(rec: SequenceRecord, frame: int) -> dict:
    t_bl = rec.T_body_lidar
    t_lb = np.linalg.inv(t_bl)
    out = {}
    for name, cal in rec.cameras.items():
        t_bc = cal["T_body_cam"]
        t_lc = t_lb @ t_bc
        out[name] = {"data_path": str(recording.image_path(rec.path, frame, name)), "type": name,
                     "sensor2ego_translation": t_bc[:3, 3].tolist(), "sensor2ego_rotation": _quat_wxyz(t_bc[:3, :3]),
                     "sensor2lidar_rotation": t_lc[:3, :3].copy(), "sensor2lidar_translation": t_lc[:3, 3].copy(),
                     "cam_intrinsic": cal["K"].copy()}
    return out


def _scene_infos(rec: SequenceRecord, scene: str, run: list[int], config: DatasetConfig) -> list[dict]:
    poses = rec.poses.astype(np.float64)
    yaw = pose13_yaws(poses)
    mode = sequence_motion(rec, config).gt_mode
    t_bl = rec.T_body_lidar
    infos = []
    for k, pos in enumerate(run):
        frame = rec.first_frame + pos
        fut = run[k: k + FUTURE_STEPS + 1]
        cum = to_ego_xy(poses[fut, :2] - poses[pos, :2], np.full(len(fut), yaw[pos]))   # (<=7, 2) x right, y fwd
        trajs = np.zeros((FUTURE_STEPS, 2))
        masks = np.zeros(FUTURE_STEPS)
        trajs[:len(fut) - 1] = np.diff(cum, axis=0)
        masks[:len(fut) - 1] = 1.0
        token = f"{scene}_{frame:06d}"
        info = {
            "token": token, "scene_token": scene, "frame_idx": k,
            "prev": f"{scene}_{rec.first_frame + run[k - 1]:06d}" if k else "",
            "next": f"{scene}_{rec.first_frame + run[k + 1]:06d}" if k + 1 < len(run) else "",
            "timestamp": int(round(float(rec.timestamps[pos]) * 1e6)),
            "occ_path": f"gts/{scene}/{token}",
            "gt_ego_fut_trajs": trajs, "gt_ego_fut_masks": masks,
            "pose_mode": mode[pos].astype(np.float64), "gt_ego_fut_cmd": mode[pos].astype(np.float64),
            "ego2global_translation": poses[pos, :3].tolist(),
            "ego2global_rotation": poses[pos, 3:7].tolist(),
            "lidar2ego_translation": t_bl[:3, 3].tolist(), "lidar2ego_rotation": _quat_wxyz(t_bl[:3, :3]),
            "lidar_path": str(recording.lidar_path(rec.path, frame)),
            "cams": _cams(rec, frame),
            "vlwm": {"sequence": rec.name, "frame": int(frame), "agent_type": rec.agent_type or "unknown"},
        }
        infos.append(info)
    return infos


def _write_labels(src: Path, dst: Path, free: int) -> None:
    sem, ml, mc = layout.read_occupancy(src, free, masks=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, semantics=sem, mask_lidar=ml.astype(np.uint8), mask_camera=mc.astype(np.uint8))


def export_occworld(data_root: str | Path, out_dir: str | Path, config: DatasetConfig | None = None,
                    min_scene_frames: int = OCCWORLD_TRAIN_FRAMES,
                    log: Callable[[str], None] | None = None) -> ExportReport:
    """Export every selected sequence (``config.agent_type``, grid checks as the dataset's) to ``out_dir``.

    ``config.split`` is ignored: all three splits are written.  Returns an :class:`ExportReport`.
    """
    config = config or DatasetConfig()
    root, out = Path(data_root), Path(out_dir)
    paths = recording.find_sequences(root)
    agents = {p.name: read_agent_type(p)[0] for p in paths}
    split_of = assign_splits(agents, config.ratios, config.seed, config.split_fallback)
    report = ExportReport()
    infos: dict[str, dict[str, list]] = {s: {} for s in SPLITS}
    for p in paths:
        if config.agent_type not in ("both", agents[p.name]):
            continue
        rec = validate_sequence(p, config)
        free = len(rec.label_names) - 1
        targets = [split_of[p.name]] if split_of[p.name] != TIME_SPLIT else list(SPLITS)
        for split in targets:
            usable = rec.usable.copy()
            if split_of[p.name] == TIME_SPLIT:
                lo, hi = time_block(rec.num_frames, config.ratios, split)
                usable[:lo], usable[hi:] = False, False
            runs = _runs(rec, usable, config.frame_stride, config.max_gap_factor)
            kept = [r for r in runs if len(r) >= min_scene_frames]
            for r in runs:
                if len(r) < min_scene_frames:
                    report.left_out.append(f"{rec.name} frames {rec.first_frame + r[0]}..{rec.first_frame + r[-1]} "
                                           f"({split}): {len(r)} keyframes < min_scene_frames {min_scene_frames}")
            for n, run in enumerate(kept):
                scene = rec.name + (f"_{split}" if split_of[p.name] == TIME_SPLIT else "") + \
                    (f"_part{n + 1}" if len(kept) > 1 else "")
                scene_infos = _scene_infos(rec, scene, run, config)
                for info, pos in zip(scene_infos, run):
                    _write_labels(recording.occupancy_path(rec.path, rec.first_frame + pos),
                                  out / info["occ_path"] / "labels.npz", free)
                infos[split][scene] = scene_infos
                report.scenes[split].append((scene, len(run)))
                if log:
                    log(f"{split}: {scene} ({len(run)} keyframes)")
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        path = out / info_pickle_name(split)
        dump_plain_pickle({"infos": infos[split], "metadata": {
            "version": EXPORT_VERSION, "source": str(root), "grid": config.grid.to_json(),
            "frame_stride": config.frame_stride, "split_seed": config.seed}}, path)
        report.pickles[split] = path
    return report
