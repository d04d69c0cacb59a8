"""``vlwm visualize-data DIR [--out FILE.mp4] [--max-frames N]``: argument parsing only."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_visualize_data(args: argparse.Namespace) -> int:
    from vlwm.io import recording
    from vlwm.viz.data_video import visualize_data

    seqs = recording.find_sequences(Path(args.dir))       # FileNotFoundError naming the folder when none
    for seq in seqs:
        if args.out is None:
            out = Path(f"{seq.name}.mp4")
        elif len(seqs) == 1:
            out = Path(args.out)
        else:
            out = Path(args.out).with_name(f"{Path(args.out).stem}_{seq.name}.mp4")
        files = visualize_data(seq, out, max_frames=args.max_frames, fps=args.fps, gif=args.gif,
                               progress=not args.quiet)
        extra = f" + {files.gif}" if files.gif else ""
        print(f"{seq.name}: wrote {files.frames} frames ({files.size[0]}x{files.size[1]}, {args.fps:g} fps) "
              f"to {files.mp4}{extra}")
    return 0


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return n


def add_viz_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vlwm visualize-data`` on ``vlwm``'s sub-parsers."""
    v = subparsers.add_parser("visualize-data", help="render a recording (cameras, lidar BEV, occupancy) to a video",
                              description="vlwm visualize-data DIR [--out FILE.mp4] [--max-frames N]")
    v.add_argument("dir", help="a recording folder, or a folder of recordings (one video each)")
    v.add_argument("--out", default=None, help="video file (.mp4; default ./<sequence>.mp4)")
    v.add_argument("--max-frames", type=_positive, default=None, help="render at most N frames")
    v.add_argument("--fps", type=float, default=5.0, help="video frame rate (default 5)")
    v.add_argument("--gif", action="store_true", help="also write a GIF beside the MP4")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_visualize_data)
    return v
