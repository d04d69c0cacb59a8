"""``vlwm benchmark eval``: score a baseline, a world-model checkpoint or external predictions.

Every method forecasts the same test windows (``windows/test.json``, 4 history + 6 future frames
at 2 Hz) and goes through the same :class:`~vlwm.benchmark.scoring.BenchmarkScorer`:

* ``copy_last`` — the last observed frame, repeated;
* ``ego_warp_cv`` — the last frame warped by a constant-velocity, constant-yaw-rate extrapolation of
  the history poses (:func:`vlwm.eval.baselines.ego_warp_cv`); its extrapolated positions are also
  scored as a trajectory;
* ``ego_warp_true`` — the last frame warped by the *true* future motion: an **oracle** (it sees the
  future poses), an upper bound for any method that leaves the world static;
* a checkpoint — the OccWorld-style world model's autoregressive rollout
  (:func:`vlwm.eval.run.rollout_batch`, the function ``vlwm eval`` uses) and its predicted trajectory;
* a predictions folder — :mod:`vlwm.benchmark.predictions`.

Output: ``results.json`` (schema in docs/benchmark.md) and ``results.md`` under ``out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vlwm.benchmark.layout import RESULTS_DIR, read_info, read_windows, split_dataset
from vlwm.benchmark.manifest import generator_versions, sha256_file
from vlwm.benchmark.predictions import Prediction, check_prediction_dir, load_prediction
from vlwm.benchmark.presets import BENCHMARK_ID
from vlwm.benchmark.scoring import HORIZONS, BenchmarkScorer
from vlwm.eval.baselines import constant_velocity_motion, copy_last, ego_warp, ego_warp_cv, future_grid_motion
from vlwm.gt.grid import GridSpec

#: Baselines by name; the oracle is marked in results.json and in every table.
BASELINES = ("copy_last", "ego_warp_cv", "ego_warp_true")
ORACLES = ("ego_warp_true",)
#: torch threads while scoring baselines and predictions: the per-window metrics (bincounts and warps of
#: ~10^5 voxels) are too small to gain from threads, and on a busy 2-core machine two spinning threads
#: made them 6x slower (measured: 95 s vs 16 s for 12 windows of the small preset).
SCORING_THREADS = 1
#: Default world-model config for ``--checkpoint`` (the small preset's grid).
DEFAULT_MODEL_CONFIG = Path(__file__).resolve().parents[2] / "config" / "benchmark_small_occworld.py"

#: ``(sample, window entry) -> (occupancy, trajectory or None[, instances or None])``, see :class:`Prediction`.
Forecast = Callable[[dict, dict], tuple]


def true_trajectory(sample: dict, frames: np.ndarray) -> np.ndarray:
    """(T_f, 3) true ego positions of the future frames in the last history grid frame (m)."""
    t_h = len(sample["history_poses"])
    return frames[:, :3] + np.stack([np.zeros(len(frames)), np.zeros(len(frames)),
                                     np.asarray(sample["ego_height"][t_h:], np.float64)], axis=1)


def cv_trajectory(sample: dict, num_future: int) -> np.ndarray:
    """(T_f, 3) constant-velocity ego positions in the last history grid frame: the planar motion of
    :func:`constant_velocity_motion`, height above the last ground extrapolated by the last climb rate."""
    hist = np.asarray(sample["history_poses"], np.float64)
    t_h = len(hist)
    h = np.asarray(sample["ego_height"][:t_h], np.float64)
    motion = constant_velocity_motion(hist, h, num_future)
    climb = hist[-1, 2] - hist[-2, 2]
    z = h[-1] + climb * np.arange(1, num_future + 1)
    return np.concatenate([motion[:, :2], z[:, None]], axis=1)


def baseline_forecast(name: str, spec: GridSpec) -> Forecast:
    """``sample, window -> (prediction (T_f, X, Y, Z), trajectory or None)`` of a baseline."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {list(BASELINES)}")

    def forecast(sample: dict, window: dict):
        hist = np.asarray(sample["history_occupancy"])
        t_f = len(sample["future_occupancy"])
        if name == "copy_last":
            return copy_last(hist, t_f), None
        if name == "ego_warp_cv":
            t_h = len(hist)
            return (ego_warp_cv(hist[-1], sample["history_poses"], np.asarray(sample["ego_height"][:t_h]), t_f, spec),
                    cv_trajectory(sample, t_f))
        return ego_warp(hist[-1], future_grid_motion(sample), spec), None
    return forecast


def checkpoint_forecast(checkpoint: Path, config: Path, bench_grid: GridSpec, device: str = "cpu") -> Forecast:
    """The world model's rollout (and predicted trajectory) of one window at a time."""
    import torch

    from vlwm.data.dataset import collate_fn
    from vlwm.eval.run import load_world_model, predicted_poses, rollout_batch
    from vlwm.train.config import load_config

    cfg, _ = load_config(config, {"device": device})
    if tuple(cfg.grid.shape) != tuple(bench_grid.shape) or tuple(cfg.grid.voxel_size) != tuple(bench_grid.voxel_size):
        raise ValueError(f"{config}: the model's grid {cfg.grid.shape} at {cfg.grid.voxel_size} m is not the "
                         f"benchmark's {bench_grid.shape} at {bench_grid.voxel_size} m: pass --config with the grid of "
                         f"this preset (config/benchmark_small_occworld.py for 'small')")
    dev = torch.device(device)
    model, _report = load_world_model(cfg, checkpoint, dev)

    def forecast(sample: dict, window: dict):
        batch = collate_fn([sample])
        pred, motion = rollout_batch(model, batch, cfg, dev)
        return pred[0].numpy(), predicted_poses(batch, 0, motion[0])[:, :3]
    return forecast


def predictions_forecast(pred_dir: Path, windows: list[dict], shape: tuple[int, ...]) -> Forecast:
    """Reads ``PRED_DIR/<window id>.npz`` (every file is checked to exist before scoring starts)."""
    check_prediction_dir(pred_dir, [w["id"] for w in windows])

    def forecast(sample: dict, window: dict):
        return load_prediction(pred_dir, window["id"], shape)
    return forecast


def score(bench: Path, method: str, forecast: Forecast, max_windows: int | None = None,
          progress: Callable[[int, int], None] | None = None, threads: int | None = SCORING_THREADS) -> dict[str, Any]:
    """Run ``forecast`` on the test windows and score it; returns ``results.json``'s content (unsaved).

    ``threads``: torch intra-op threads while scoring (restored afterwards); None leaves them as they are.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _score(bench, method, forecast, max_windows, progress)
    finally:
        torch.set_num_threads(previous)


def _score(bench: Path, method: str, forecast: Forecast, max_windows: int | None,
           progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    bench = Path(bench)
    info = read_info(bench)
    windows = read_windows(bench)
    spec = GridSpec(tuple(info["grid"]["point_cloud_range"]), tuple(info["grid"]["voxel_size"]))
    ds = split_dataset(bench, "test", info, info["eval_window_stride"], load_instances=True)
    if windows and max(w["index"] for w in windows) >= len(ds):
        raise ValueError(f"{bench}: windows/test.json refers to window {max(w['index'] for w in windows)} but the test "
                         f"split has {len(ds)}: the folder was changed after the build (run `vlwm benchmark verify {bench}`)")
    n = len(windows) if max_windows is None else min(len(windows), max_windows)
    scorer = BenchmarkScorer(spec, info["future_frames"], info["frame_rate_hz"])
    t0 = time.perf_counter()
    for i, window in enumerate(windows[:n]):
        name, frames_no = ds.window(window["index"])
        if name != window["sequence"] or int(frames_no[0]) != window["frames"][0]:
            raise ValueError(f"{bench}: window {window['id']} is not the test split's window {window['index']} "
                             f"({name} frame {int(frames_no[0])}): run `vlwm benchmark verify {bench}`")
        sample = ds[window["index"]]
        target = np.asarray(sample["future_occupancy"]).astype(np.int64)
        frames = future_grid_motion(sample)
        pred = Prediction(*forecast(sample, window))
        scorer.update(window, np.asarray(pred.occupancy).astype(np.int64), target,
                      np.asarray(sample["future_instances"]), frames, pred.trajectory,
                      true_trajectory(sample, frames) if pred.trajectory is not None else None, pred.instances)
        if progress is not None:
            progress(i + 1, n)
    return {"benchmark": BENCHMARK_ID, "preset": info["preset"], "method": method,
            "oracle": method in ORACLES, "split": "test", "num_windows": n,
            "complete": n == len(windows), "grid": info["grid"],
            "horizons": {h: k for h, k in zip(HORIZONS, (1, 3, 5))},
            "manifest_sha256": sha256_file(bench / "MANIFEST.json") if (bench / "MANIFEST.json").is_file() else None,
            "software": generator_versions(), "seconds": round(time.perf_counter() - t0, 1),
            "vpq_ground_truth": "simulator_instances", "scores": scorer.result()}


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    """``results.json`` and ``results.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "results.json", out / "results.md"
    js.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    md.write_text(markdown_table(results) + "\n")
    return js, md


def default_out(bench: Path, method: str) -> Path:
    """``DIR/results/<method>`` (ignored by ``verify``)."""
    return Path(bench) / RESULTS_DIR / method


def _f(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def markdown_table(results: dict) -> str:
    """One method's scores: a row per population (overall, per agent, per drone altitude band)."""
    name = results["method"] + (" (oracle)" if results["oracle"] else "")
    head = (["population", "windows"] + [f"mIoU {h}" for h in (*HORIZONS, "avg")] + [f"IoU {h}" for h in (*HORIZONS, "avg")]
            + [f"VPQ {h}" for h in (*HORIZONS, "avg")] + ["ADE (m)", "FDE (m)"])
    lines = [f"**{name}** on {results['benchmark']} ({results['preset']}), {results['num_windows']} test windows "
             "(mIoU, IoU, VPQ in %):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pop, e in results["scores"].items():
        vpq = e["vpq"] or {}
        traj = e["trajectory"] or {}
        cells = ([pop, str(e["num_windows"])] + [_f(e["miou"][h]) for h in (*HORIZONS, "avg")]
                 + [_f(e["iou"][h]) for h in (*HORIZONS, "avg")] + [_f(vpq.get(h)) for h in (*HORIZONS, "avg")]
                 + [_f(traj.get("ade")), _f(traj.get("fde"))])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
