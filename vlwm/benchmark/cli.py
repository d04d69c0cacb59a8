"""``vlwm benchmark build | verify | eval | figures``: argument parsing only.

::

    vlwm benchmark build --preset small --out data/vlwm-tokyo-v1-small
    vlwm benchmark verify data/vlwm-tokyo-v1-small
    vlwm benchmark eval data/vlwm-tokyo-v1-small --baseline copy_last
    vlwm benchmark eval data/vlwm-tokyo-v1-small --checkpoint work/wm/latest.pth [--config CONFIG]
    vlwm benchmark eval data/vlwm-tokyo-v1-small --predictions my_predictions/ --name my-model
    vlwm benchmark figures data/vlwm-tokyo-v1-small --out docs/figures/benchmark
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def cmd_build(args: argparse.Namespace) -> int:
    from vlwm.benchmark.build import build_benchmark
    from vlwm.benchmark.presets import get_preset

    preset = get_preset(args.preset)
    t0 = time.perf_counter()
    print(f"benchmark build: preset '{preset.name}' -> {args.out}", flush=True)
    try:
        info = build_benchmark(preset, Path(args.out), Path(args.plateau_dir) if args.plateau_dir else None,
                               workers=args.workers)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None
    print(f"benchmark build: {len(info['districts'])} districts, {len(info['sequences'])} recordings in "
          f"{time.perf_counter() - t0:.0f} s; check it with `vlwm benchmark verify {args.out}`")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from vlwm.benchmark.manifest import verify

    report = verify(Path(args.dir))
    print(report.summary())
    return 0 if report.ok else 1


def cmd_eval(args: argparse.Namespace) -> int:
    from vlwm.benchmark.evaluate import (DEFAULT_MODEL_CONFIG, SCORING_THREADS, baseline_forecast, checkpoint_forecast, default_out,
                                         markdown_table, predictions_forecast, score, write_results)
    from vlwm.benchmark.layout import read_info, read_windows
    from vlwm.gt.grid import GridSpec

    bench = Path(args.dir)
    info = read_info(bench)
    spec = GridSpec(tuple(info["grid"]["point_cloud_range"]), tuple(info["grid"]["voxel_size"]))
    if args.baseline:
        method, forecast = args.baseline, baseline_forecast(args.baseline, spec)
    elif args.checkpoint:
        config = Path(args.config) if args.config else DEFAULT_MODEL_CONFIG
        method = args.name or "occworld"
        forecast = checkpoint_forecast(Path(args.checkpoint), config, spec, device=args.device)
    else:
        method = args.name or Path(args.predictions).name
        shape = (info["future_frames"], *info["grid"]["shape"])
        forecast = predictions_forecast(Path(args.predictions), read_windows(bench), shape)

    def progress(i: int, n: int) -> None:
        if i == n or i % 50 == 0:
            print(f"  {i}/{n} windows", flush=True)

    results = score(bench, method, forecast, max_windows=args.max_windows, progress=progress,
                    threads=None if args.checkpoint else SCORING_THREADS)
    if args.checkpoint:
        results["source"] = {"checkpoint": str(args.checkpoint), "config": str(config)}
    elif args.predictions:
        results["source"] = {"predictions": str(args.predictions)}
    else:
        results["source"] = {"baseline": args.baseline}
    out = Path(args.out) if args.out else default_out(bench, method)
    js, _ = write_results(results, out)
    print(markdown_table(results))
    print(f"\nwrote {js}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from vlwm.benchmark.figures import example_windows, horizon_curves, leaderboard_table, load_results

    bench = Path(args.dir)
    results = load_results(bench, args.results)
    out = Path(args.out)
    print(f"wrote {horizon_curves(results, out / 'miou_per_horizon.png')}")
    for p in example_windows(bench, out):
        print(f"wrote {p}")
    print(leaderboard_table(results))
    return 0


def add_benchmark_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vlwm benchmark`` and its verbs on the CLI's subparsers."""
    p = subparsers.add_parser("benchmark", help="the VLWM Tokyo benchmark: build, verify, eval, figures",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="benchmark_verb", metavar="VERB", required=True)

    b = sub.add_parser("build", help="build a preset (scenes, recordings, ground truth, manifest)")
    b.add_argument("--preset", choices=("tiny", "small", "full"), default="small",
                   help="small: 2 CPU cores in <= 10 min; full: the aerial grid 200 x 200 x 121; tiny: CI tests")
    b.add_argument("--out", required=True, help="new (or empty) folder")
    b.add_argument("--plateau-dir", help="folder with the PLATEAU CityGML tiles (default: ../shared/data/plateau "
                                         "beside the repository)")
    b.add_argument("--workers", type=int, default=2, help="parallel processes")
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("verify", help="re-hash a build against its MANIFEST.json (exit 1 naming what differs)")
    v.add_argument("dir", help="benchmark folder")
    v.set_defaults(func=cmd_verify)

    e = sub.add_parser("eval", help="score a baseline, a checkpoint or a predictions folder; writes results.json")
    e.add_argument("dir", help="benchmark folder")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--baseline", choices=("copy_last", "ego_warp_cv", "ego_warp_true"),
                      help="ego_warp_true is an oracle (true future motion)")
    what.add_argument("--checkpoint", help="world-model checkpoint (.pth)")
    what.add_argument("--predictions", help="folder of <window id>.npz files (docs/benchmark.md)")
    e.add_argument("--config", help="world-model config of --checkpoint (default config/benchmark_small_occworld.py)")
    e.add_argument("--name", help="method name in results.json (default: occworld / the predictions folder name)")
    e.add_argument("--device", default="cpu", help="--checkpoint: cpu, cuda, ...")
    e.add_argument("--out", help="output folder (default DIR/results/<method>)")
    e.add_argument("--max-windows", type=int, help="score only the first N windows (results say complete: false)")
    e.set_defaults(func=cmd_eval)

    f = sub.add_parser("figures", help="per-horizon mIoU curves of scored methods and example windows")
    f.add_argument("dir", help="benchmark folder")
    f.add_argument("--results", nargs="*", help="results.json files (default: DIR/results/*/results.json)")
    f.add_argument("--out", required=True, help="output folder of the PNG files")
    f.set_defaults(func=cmd_figures)
    return p

