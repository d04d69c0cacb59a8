"""``vlwm train`` / ``python train.py``: argument parsing only, then :func:`vlwm.train.engine.train`.

The guide's flags: ``--config`` / ``--py-config`` (the same), ``--work-dir``, ``--resume-from``,
``--load-from``, ``--seed``, ``--cfg-options key=value …`` (dotted keys, python literals).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlwm.io.dir_lock import FolderBusyError
from vlwm.models import CheckpointMismatchError
from vlwm.train.config import ConfigError, load_config, parse_cfg_options


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", "--py-config", dest="config", required=True, help="python config file")
    p.add_argument("--work-dir", help="output folder (checkpoints, logs, the run record); default out/<config name>")
    p.add_argument("--resume-from", help="resume the full training state from this checkpoint")
    p.add_argument("--load-from", help="start from these weights (strict, adapted when shapes need it)")
    p.add_argument("--seed", type=int, help="random seed (default: the config's, 42)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config keys, e.g. max_epochs=2 "
                   "data_root=data/x optimizer.lr=1e-4")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when available)")
    return p


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from vlwm.train.engine import train

    options = parse_cfg_options(args.cfg_options)
    for key in ("resume_from", "load_from", "seed", "device"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    try:
        cfg, raw = load_config(args.config, options)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    work_dir = args.work_dir or cfg.work_dir or str(Path("out") / Path(args.config).stem)
    try:
        summary = train(cfg, work_dir, argv if argv is not None else sys.argv, raw)
    except (FileNotFoundError, CheckpointMismatchError, FolderBusyError) as err:   # missing data / weights,
        print(f"error: {err}", file=sys.stderr)                                     # a busy work dir: say which
        return 1
    return summary.exit_code                # 0: finished or SIGTERM (saved, resumable); 130: SIGINT


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vlwm train`` on the CLI's subparsers."""
    p = subparsers.add_parser("train", help="train the VQ-VAE or the world model from a python config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_parser(p)
    p.set_defaults(func=run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = configure_parser(argparse.ArgumentParser(prog="train.py", description=__doc__)).parse_args(argv)
    return run(args, [sys.argv[0], *argv])
