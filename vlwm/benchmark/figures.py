"""Benchmark figures and the leaderboard table (matplotlib).

* :func:`horizon_curves` — mIoU (OccWorld rule) and IoU at 1 s / 2 s / 3 s, one line per method
  (oracles dashed), overall and per agent.
* :func:`example_windows` — one test window per agent as bird's-eye views (:func:`vlwm.viz.bev.bev_image`):
  the last observed frame, the truth at 1 / 2 / 3 s and the ``ego_warp_cv`` forecast, axes in metres.
* :func:`leaderboard_table` — the markdown leaderboard of several ``results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vlwm.benchmark.layout import RESULTS_DIR, read_info, read_windows, split_dataset
from vlwm.benchmark.scoring import HORIZONS

HORIZON_SECONDS = (1.0, 2.0, 3.0)


def load_results(bench: Path, files: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``results.json`` files given, else every ``DIR/results/*/results.json`` (sorted by method)."""
    paths = [Path(f) for f in files] if files else sorted((Path(bench) / RESULTS_DIR).glob("*/results.json"))
    if not paths:
        raise FileNotFoundError(f"no results.json under {Path(bench) / RESULTS_DIR}: run `vlwm benchmark eval` first")
    return [json.loads(p.read_text()) for p in paths]


def _label(r: dict) -> str:
    return r["method"] + (" (oracle)" if r.get("oracle") else "")


def horizon_curves(results: list[dict[str, Any]], path: Path) -> Path:
    """mIoU and IoU (%) against the forecast horizon (s): overall, drone and rover panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pops = [p for p in ("overall", "agent/drone", "agent/rover") if any(p in r["scores"] for r in results)]
    fig, axes = plt.subplots(2, len(pops), figsize=(4.2 * len(pops), 6.4), squeeze=False, sharex=True)
    for row, metric in enumerate(("miou", "iou")):
        for col, pop in enumerate(pops):
            ax = axes[row, col]
            for r in results:
                entry = r["scores"].get(pop)
                if entry is None:
                    continue
                y = [entry[metric][h] for h in HORIZONS]
                y = [np.nan if v is None else v for v in y]
                ax.plot(HORIZON_SECONDS, y, marker="o", linestyle="--" if r.get("oracle") else "-", label=_label(r))
            ax.set_title(f"{pop.split('/')[-1]}: {'mIoU (OccWorld rule)' if metric == 'miou' else 'IoU (geometry)'}",
                         fontsize=10)
            ax.set_xticks(HORIZON_SECONDS)
            ax.set_xlabel("forecast horizon (s)")
            ax.set_ylabel(f"{'mIoU' if metric == 'miou' else 'IoU'} (%)")
            ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    bench = results[0]
    fig.suptitle(f"{bench['benchmark']} ({bench['preset']}), test split: accuracy per horizon")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pick_window(windows: list[dict], agent: str) -> dict | None:
    """The agent's middle test window (a deterministic choice)."""
    mine = [w for w in windows if w["agent"] == agent]
    return mine[len(mine) // 2] if mine else None


def example_windows(bench: Path, out: Path) -> list[Path]:
    """One PNG per agent: last observed frame, truth at 1 / 2 / 3 s, ego_warp_cv at 1 / 2 / 3 s (BEV)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vlwm.benchmark.evaluate import baseline_forecast
    from vlwm.gt.grid import GridSpec
    from vlwm.viz.bev import bev_image

    bench, out = Path(bench), Path(out)
    info = read_info(bench)
    windows = read_windows(bench)
    spec = GridSpec(tuple(info["grid"]["point_cloud_range"]), tuple(info["grid"]["voxel_size"]))
    ds = split_dataset(bench, "test", info, info["eval_window_stride"])
    x0, y0, _, x1, y1, _ = spec.point_cloud_range
    extent = (y1, y0, x0, x1)                              # bev_image: x up, y to the left
    forecast = baseline_forecast("ego_warp_cv", spec)
    written = []
    for agent in ("drone", "rover"):
        w = _pick_window(windows, agent)
        if w is None:
            continue
        sample = ds[w["index"]]
        pred, _ = forecast(sample, w)
        hist, fut = np.asarray(sample["history_occupancy"]), np.asarray(sample["future_occupancy"])
        steps = {h: k for h, k in zip(HORIZONS, (1, 3, 5))}
        panels = [("last observed (t = 0)", hist[-1])] + [(f"truth {h}", fut[k]) for h, k in steps.items()]
        panels += [("", None)] + [(f"ego_warp_cv {h}", pred[k]) for h, k in steps.items()]
        fig, axes = plt.subplots(2, 4, figsize=(13, 6.8))
        for ax, (title, grid) in zip(axes.ravel(), panels):
            if grid is None:
                ax.axis("off")
                continue
            ax.imshow(bev_image(grid, scale=1), extent=extent, interpolation="nearest")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("y (m, left)")
            ax.set_ylabel("x (m, forward)")
        where = f"{w['district']}, {w['pattern']}" + (f", {w['altitude_m']:.0f} m" if w["altitude_m"] else "")
        fig.suptitle(f"{agent} test window {w['id']} ({where}); bird's-eye view, top voxel of each column, "
                     f"{spec.voxel_size[0]} m voxels")
        fig.tight_layout()
        path = out / f"example_{agent}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def _f(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def leaderboard_table(results: list[dict[str, Any]], populations=("overall", "agent/drone", "agent/rover")) -> str:
    """Markdown: per population, one row per method — mIoU / IoU / VPQ at 1, 2, 3 s and avg, ADE / FDE."""
    lines = []
    for pop in populations:
        rows = [r for r in results if pop in r["scores"]]
        if not rows:
            continue
        head = (["method", "windows"] + [f"mIoU {h}" for h in (*HORIZONS, "avg")] + [f"IoU {h}" for h in (*HORIZONS, "avg")]
                + [f"VPQ {h}" for h in (*HORIZONS, "avg")] + ["ADE (m)", "FDE (m)"])
        lines += [f"**{pop}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            e = r["scores"][pop]
            vpq, traj = e["vpq"] or {}, e["trajectory"] or {}
            cells = ([_label(r), str(e["num_windows"])] + [_f(e["miou"][h]) for h in (*HORIZONS, "avg")]
                     + [_f(e["iou"][h]) for h in (*HORIZONS, "avg")] + [_f(vpq.get(h)) for h in (*HORIZONS, "avg")]
                     + [_f(traj.get("ade")), _f(traj.get("fde"))])
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
