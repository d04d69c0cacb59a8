"""External predictions: one ``.npz`` per test window, scored exactly like the built-in methods.

Format (one owner: this module reads and writes it)::

    PRED_DIR/<window id>.npz          one file per entry of DIR/windows/test.json ("id")
        occupancy   (T_f, X, Y, Z) uint8   predicted class ids of the 6 future frames (Occ3D labels,
                                           17 = free), each frame in its own grid frame: the frame
                                           the ground truth of that future frame uses
        trajectory  (T_f, 3) float32/64   optional: predicted ego positions of the future frames in
                                           the grid frame of the last history frame (m; x forward,
                                           y left, z up from the ground under that frame)
        instances   (T_f, X, Y, Z) int32  optional: predicted instance ids of the dynamic objects,
                                           the same id for the same object over the 6 frames, 0 = none;
                                           without them VPQ cuts the occupancy into tracked connected
                                           components (two touching cars then count as one)

``X, Y, Z`` is the benchmark grid (``benchmark.json["grid"]["shape"]``).  The inputs of a window
are its first ``T_h = 4`` frames (``frames[:4]``), the targets the last 6; read them from
``splits/test/<sequence>/occupancy/NNNNNN_occupancy.vlo`` (:func:`vlwm.io.occupancy_file.read_frame`)
and ``poses/NNNNNN.json`` or with
:class:`vlwm.data.GazeboOccWorldDataset` (:func:`vlwm.benchmark.layout.split_dataset`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from vlwm.labels import NUM_OCC_CLASSES

OCCUPANCY_KEY = "occupancy"
TRAJECTORY_KEY = "trajectory"
INSTANCES_KEY = "instances"


class Prediction(NamedTuple):
    """One window's forecast, as every method hands it to the scorer."""

    occupancy: np.ndarray
    """(T_f, X, Y, Z) int64 class ids."""
    trajectory: np.ndarray | None = None
    """(T_f, 3) float64 ego positions (m, last history grid frame), or None."""
    instances: np.ndarray | None = None
    """(T_f, X, Y, Z) int64 instance ids, or None (VPQ then tracks connected components)."""


def prediction_path(pred_dir: Path, window_id: str) -> Path:
    """``PRED_DIR/<window id>.npz``."""
    return Path(pred_dir) / f"{window_id}.npz"


def save_prediction(pred_dir: Path, window_id: str, occupancy: np.ndarray, trajectory: np.ndarray | None = None,
                    instances: np.ndarray | None = None) -> Path:
    """Write one window's prediction (module docstring); returns the file."""
    path = prediction_path(pred_dir, window_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {OCCUPANCY_KEY: np.asarray(occupancy, np.uint8)}
    if trajectory is not None:
        arrays[TRAJECTORY_KEY] = np.asarray(trajectory, np.float64)
    if instances is not None:
        arrays[INSTANCES_KEY] = np.asarray(instances, np.int32)
    np.savez_compressed(path, **arrays)
    return path


def check_prediction_dir(pred_dir: Path, window_ids: list[str]) -> None:
    """Refuse a folder that lacks windows (naming a few and the count) before anything is scored."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"--predictions {pred_dir}: no such folder")
    missing = [w for w in window_ids if not prediction_path(pred_dir, w).is_file()]
    if missing:
        raise FileNotFoundError(f"--predictions {pred_dir}: {len(missing)} of {len(window_ids)} windows have no "
                                f"prediction file, e.g. {', '.join(m + '.npz' for m in missing[:3])}; write one "
                                f"<window id>.npz per entry of windows/test.json (docs/benchmark.md)")


def load_prediction(pred_dir: Path, window_id: str, shape: tuple[int, int, int, int]) -> Prediction:
    """One window's :class:`Prediction`.

    Raises ``ValueError`` naming the file for a missing key, a wrong shape or dtype, or labels
    outside 0..17.
    """
    path = prediction_path(pred_dir, window_id)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from exc
    if OCCUPANCY_KEY not in arrays:
        raise ValueError(f"{path}: no '{OCCUPANCY_KEY}' array (keys: {sorted(arrays)})")
    occ = arrays[OCCUPANCY_KEY]
    if occ.shape != tuple(shape):
        raise ValueError(f"{path}: '{OCCUPANCY_KEY}' has shape {occ.shape}, the benchmark needs {tuple(shape)} "
                         f"(T_f, X, Y, Z)")
    if not np.issubdtype(occ.dtype, np.integer):
        raise ValueError(f"{path}: '{OCCUPANCY_KEY}' must hold integer class ids, got {occ.dtype} (argmax logits first)")
    lo, hi = int(occ.min()), int(occ.max())
    if lo < 0 or hi >= NUM_OCC_CLASSES:
        raise ValueError(f"{path}: class ids in [{lo}, {hi}], outside 0..{NUM_OCC_CLASSES - 1}")
    traj = arrays.get(TRAJECTORY_KEY)
    if traj is not None:
        traj = np.asarray(traj, np.float64)
        if traj.shape != (shape[0], 3) or not np.all(np.isfinite(traj)):
            raise ValueError(f"{path}: '{TRAJECTORY_KEY}' must be finite ({shape[0]}, 3) positions, got {traj.shape}")
    inst = arrays.get(INSTANCES_KEY)
    if inst is not None and (inst.shape != tuple(shape) or not np.issubdtype(inst.dtype, np.integer)):
        raise ValueError(f"{path}: '{INSTANCES_KEY}' must be integer ids of shape {tuple(shape)}, got {inst.dtype} "
                         f"{inst.shape}")
    return Prediction(occ.astype(np.int64), traj, None if inst is None else inst.astype(np.int64))
