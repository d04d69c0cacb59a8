"""``vlwm data ...``: argument parsing for the dataset stage (``check``, ``export-occworld``, ``convert``).

:func:`add_data_parser` registers the verb on ``vlwm``'s sub-parsers; each action calls the
stage's public functions (:func:`vlwm.data.check.check_dataset`,
:func:`vlwm.data.occworld_export.export_occworld`, :func:`vlwm.data.convert.convert_tree`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlwm.data.config import AGENT_CHOICES, DatasetConfig
from vlwm.gt.grid import GRID_PRESETS, GridSpec
from vlwm.io import recording

GRID_AUTO = "auto"


def _floats(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise argparse.ArgumentTypeError(f"{what}: expected {n} comma-separated numbers, got {len(vals)}")
    return vals


def _grid_from_data(root: Path) -> GridSpec | None:
    """The grid of the first sequence under ``root`` that has an ``occupancy/grid.json``."""
    for seq in recording.find_sequences(root):
        path = seq / recording.OCC_DIR / recording.GRID_FILE
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
                return GridSpec(tuple(doc["point_cloud_range"]), tuple(doc["voxel_size"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return None


def config_from_args(args: argparse.Namespace) -> DatasetConfig:
    """The DatasetConfig the common options describe (``--grid auto`` reads the data's grid.json)."""
    if args.point_cloud_range or args.voxel_size:
        if not (args.point_cloud_range and args.voxel_size):
            raise ValueError("give both --point-cloud-range and --voxel-size (or --grid)")
        grid = GridSpec(args.point_cloud_range, args.voxel_size)
    elif args.grid == GRID_AUTO:
        grid = _grid_from_data(Path(args.dir)) or GRID_PRESETS["aerial"]
    else:
        grid = GRID_PRESETS[args.grid]
    return DatasetConfig(history_frames=args.history_frames, future_frames=args.future_frames,
                         frame_skip=args.frame_skip, frame_stride=args.frame_stride, agent_type=args.agent_type,
                         train_ratio=args.train_ratio, val_ratio=args.val_ratio, test_ratio=args.test_ratio,
                         seed=args.seed, split_fallback=args.split_fallback,
                         point_cloud_range=grid.point_cloud_range, voxel_size=grid.voxel_size,
                         load_images=getattr(args, "images", False), load_lidar=getattr(args, "lidar", False))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="folder of recordings (drone_*/, rover_*/) or one recording")
    p.add_argument("--grid", choices=(GRID_AUTO, *GRID_PRESETS), default=GRID_AUTO,
                   help="expected grid: a preset, or 'auto' = the data's occupancy/grid.json (default)")
    p.add_argument("--point-cloud-range", type=lambda s: _floats(s, 6, "--point-cloud-range"),
                   metavar="X0,Y0,Z0,X1,Y1,Z1", help="custom grid extent, metres (with --voxel-size)")
    p.add_argument("--voxel-size", type=lambda s: _floats(s, 3, "--voxel-size"), metavar="DX,DY,DZ",
                   help="custom voxel size, metres")
    p.add_argument("--history-frames", type=int, default=4)
    p.add_argument("--future-frames", type=int, default=6)
    p.add_argument("--frame-skip", type=int, default=1, help="windows advance by this many frames")
    p.add_argument("--frame-stride", type=int, default=1, help="recorded frames between window frames")
    p.add_argument("--agent-type", choices=AGENT_CHOICES, default="both")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--train-ratio", type=float, default=0.8)
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--test-ratio", type=float, default=0.1)
    p.add_argument("--split-fallback", choices=("time", "error"), default="time",
                   help="too few sequences to split: 'time' blocks (default) or 'error'")


def cmd_data_check(args: argparse.Namespace) -> int:
    """Print the table and statistics; exit status 1 when any sequence has a problem."""
    from vlwm.data.check import check_dataset, format_check

    result = check_dataset(args.dir, config_from_args(args), stats_frames=args.stats_frames)
    print(json.dumps(result.to_json(), indent=2) if args.json else format_check(result))
    bad = any(c.error or (c.record and c.record.issues) for c in result.sequences)
    return 1 if bad else 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from vlwm.data.occworld_export import export_occworld

    report = export_occworld(args.dir, args.out, config_from_args(args), min_scene_frames=args.min_scene_frames,
                             log=print if args.verbose else None)
    print(report.summary())
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    """Convert the tree; exit status 1 (naming the files) when any frame file was not converted."""
    from vlwm.data.convert import convert_tree

    report = convert_tree(args.dir, progress=not args.quiet)
    print(report.summary())
    return 1 if report.failed else 0


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vlwm data check DIR``, ``vlwm data export-occworld DIR --out OUT`` and ``vlwm data convert ROOT``
    on ``vlwm``'s sub-parsers."""
    from vlwm.data.occworld_export import OCCWORLD_TRAIN_FRAMES

    d = subparsers.add_parser("data", help="check recordings as a dataset; export to OccWorld's format",
                              description="vlwm data check DIR [--json]\n"
                                          "vlwm data export-occworld DIR --out OUT\n"
                                          "vlwm data convert ROOT",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = d.add_subparsers(dest="data_action", metavar="ACTION")

    def usage(args: argparse.Namespace) -> int:
        d.print_help()
        return 0

    d.set_defaults(func=usage)

    c = actions.add_parser("check", help="validate every sequence; windows per split; class statistics")
    _common(c)
    c.add_argument("--images", action="store_true", help="require the six camera images of every frame")
    c.add_argument("--lidar", action="store_true", help="require every frame's lidar file")
    c.add_argument("--stats-frames", type=int, default=None,
                   help="read at most N frames (evenly spread) for the statistics (default all; 0 = none)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_data_check)

    e = actions.add_parser("export-occworld", help="write gts/ and info pickles for the original OccWorld code")
    _common(e)
    e.add_argument("--out", required=True, help="output folder (OccWorld's data_path)")
    e.add_argument("--min-scene-frames", type=int, default=OCCWORLD_TRAIN_FRAMES,
                   help=f"leave out runs of fewer keyframes (default {OCCWORLD_TRAIN_FRAMES}, OccWorld's window)")
    e.add_argument("--verbose", action="store_true", help="print every scene written")
    e.set_defaults(func=cmd_data_export)

    v = actions.add_parser("convert", help="rewrite older *_occupancy.npz frame files as .vlo, in place (resumable)")
    v.add_argument("dir", help="folder to convert (every *_occupancy.npz below it)")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_data_convert)
    return d
