"""``vlwm download`` (and ``python -m vlwm.io.cli``): the guide's ``download_and_prepare_data.sh``.

    --all            folders + official weights + info pickles + PLATEAU
    --models         folders + official weights + info pickles
    --plateau        folders + PLATEAU CityGML
    --skip-plateau   everything but PLATEAU

PLATEAU: the pinned archive of --plateau-release (default: the release of the catalogue page the
training guide cites) is downloaded to data/plateau/tokyo23ku/downloads/ and its udx/{bldg,tran,veg,dem}
CityGML extracted; --plateau-url replaces the address, --plateau-zip takes zips already on disk.
The first download's sha256 and size are recorded in pretrained/downloads.lock.json and later runs
are held to them (PLATEAU publishes no checksums: trust on first use).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from vlwm.io.download import DownloadError, RetryPolicy
from vlwm.io.layout import PLATEAU_RELDIR, prepare_layout
from vlwm.io.plateau import (PLATEAU_ATTRIBUTION, PLATEAU_DEFAULT_RELEASE, PLATEAU_LAYERS, PLATEAU_RELEASES,
                              unmatched_meshes)


def add_download_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``download`` verb on a ``vlwm`` subparsers object."""
    p = subparsers.add_parser("download", help="download pretrained weights and PLATEAU data, set up the folders",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=cmd_download)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", action="store_const", dest="what", const="all", help="everything")
    what.add_argument("--models", action="store_const", dest="what", const="models",
                      help="official OccWorld VQ-VAE, world model and info pickles")
    what.add_argument("--plateau", action="store_const", dest="what", const="plateau",
                      help="PLATEAU Tokyo 23-ward CityGML")
    what.add_argument("--skip-plateau", action="store_const", dest="what", const="skip-plateau",
                      help="everything but PLATEAU")
    p.add_argument("--dest", type=Path, default=Path("."), help="root of the layout (default: current folder)")
    p.add_argument("--no-pickles", action="store_true", help="skip the nuScenes info pickles")
    p.add_argument("--plateau-release", default=PLATEAU_DEFAULT_RELEASE, choices=sorted(PLATEAU_RELEASES),
                   help=f"pinned PLATEAU CityGML release to download (default: {PLATEAU_DEFAULT_RELEASE}); "
                   + "; ".join(f"{k}: {r.catalogue}" for k, r in sorted(PLATEAU_RELEASES.items())))
    p.add_argument("--plateau-url", metavar="URL",
                   help="address of the CityGML zip, replacing the pinned one of the release")
    p.add_argument("--plateau-zip", type=Path, nargs="+", default=[], metavar="FILE",
                   help="CityGML zip(s) already on disk: no download")
    p.add_argument("--plateau-mesh", nargs="+", default=[], metavar="CODE",
                   help="keep only files of these mesh-code prefixes (e.g. 533945 53394525)")
    p.add_argument("--plateau-textures", action="store_true",
                   help="also extract the building facade textures (udx/bldg/*_appearance/; large, unused by occupancy)")
    p.add_argument("--plateau-layers", nargs="+", default=list(PLATEAU_LAYERS), metavar="LAYER",
                   help=f"udx layers to keep (default: {' '.join(PLATEAU_LAYERS)})")
    p.add_argument("--retries", type=int, default=5, help="attempts per file for broken transfers")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to connect (no retry after)")
    p.add_argument("--read-timeout", type=float, default=60.0, help="seconds of silence before a retry")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_download(args: argparse.Namespace) -> int:
    from vlwm.io.plateau import download_plateau
    from vlwm.io.pretrained import CheckpointStructureError, download_models
    from vlwm.models.official_weights import verify_official_checkpoint

    policy = RetryPolicy(attempts=args.retries, connect_timeout_s=args.connect_timeout,
                         read_timeout_s=args.read_timeout)
    root = args.dest
    for d in prepare_layout(root):
        print(f"folder   {d}")
    failures = []
    if args.what in ("all", "models", "skip-plateau"):
        try:
            for path in download_models(root, verify_official_checkpoint, policy=policy, progress=not args.quiet,
                                        pickles=not args.no_pickles):
                print(f"verified {path}")
        except (DownloadError, CheckpointStructureError, ValueError) as err:
            failures.append(f"models: {err}")
    if args.what in ("all", "plateau"):
        try:
            files = download_plateau(root, release=args.plateau_release, url=args.plateau_url,
                                     archives=args.plateau_zip, layers=args.plateau_layers,
                                     meshes=args.plateau_mesh, policy=policy, progress=not args.quiet,
                                     textures=args.plateau_textures)
            gml = {layer: sum(1 for f in files if f.parent.name == layer and f.suffix == ".gml")
                   for layer in args.plateau_layers}
            print(f"plateau  {len(files)} files under {root / PLATEAU_RELDIR} (.gml: "
                  + ", ".join(f"{k} {v}" for k, v in gml.items()) + f")\n  {PLATEAU_ATTRIBUTION}")
            missing = unmatched_meshes(files, args.plateau_mesh)
            if missing:
                print(f"warning: no PLATEAU file for mesh codes {missing} (outside the 23 wards, or a typo)",
                      file=sys.stderr)
        except (DownloadError, ValueError, OSError) as err:
            failures.append(f"plateau: {err}")
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="download_and_prepare_data.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    return cmd_download(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
