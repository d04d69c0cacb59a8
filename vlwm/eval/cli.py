"""``vlwm eval`` / ``python eval_metric_stp3.py``: argument parsing only, then :func:`vlwm.eval.run.evaluate`.

Flags: ``--py-config`` (or ``--config``), ``--work-dir`` (metrics.json / metrics.md go there),
``--checkpoint``, ``--split val|test``, ``--mask none|lidar|camera``, ``--max-windows``,
``--cfg-options key=value …``, ``--device``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlwm.models import CheckpointMismatchError
from vlwm.train.config import ConfigError, load_config, parse_cfg_options


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", "--py-config", dest="config", required=True, help="python config file")
    p.add_argument("--work-dir", help="output folder for metrics.json / metrics.md; default out/<config name>")
    p.add_argument("--checkpoint", required=True, help="world-model checkpoint (.pth)")
    p.add_argument("--split", choices=("val", "test"), default="val", help="dataset split (default val)")
    p.add_argument("--mask", choices=("none", "lidar", "camera"), default="none",
                   help="evaluate only the voxels visible to the lidar / cameras (default: all)")
    p.add_argument("--max-windows", type=int, help="evaluate at most this many windows")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config keys, e.g. data_root=data/x")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: the config's, else CUDA when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from vlwm.eval.run import evaluate, summary_line

    options = parse_cfg_options(args.cfg_options)
    if args.device is not None:
        options["device"] = args.device
    try:
        cfg, _ = load_config(args.config, options)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    work_dir = args.work_dir or cfg.work_dir or str(Path("out") / Path(args.config).stem)
    try:
        results = evaluate(cfg, args.checkpoint, work_dir, split=args.split, mask=args.mask,
                           max_windows=args.max_windows, progress=not args.no_progress)
    except (FileNotFoundError, CheckpointMismatchError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary_line(results))
    print(f"wrote {Path(work_dir) / 'metrics.json'} and {Path(work_dir) / 'metrics.md'}")
    return 0


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vlwm eval`` on the CLI's subparsers."""
    p = subparsers.add_parser("eval", help="forecast metrics of a world model and the baselines on a split",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_parser(p)
    p.set_defaults(func=run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = configure_parser(argparse.ArgumentParser(prog="eval_metric_stp3.py", description=__doc__)).parse_args(argv)
    return run(args)
