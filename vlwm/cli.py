"""``vlwm <verb>``: argument parsing only; every verb calls a stage's public functions.

Verbs grow with the pipeline; ``vlwm --help`` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from vlwm import __version__
from vlwm.world.sources import build_scene


def cmd_city(args: argparse.Namespace) -> int:
    from vlwm.world.scene import Scene

    if args.sources[:1] == ["info"]:
        if len(args.sources) != 2:
            raise SystemExit("usage: vlwm city info SCENE.npz [--json]")
        info = Scene.load(args.sources[1]).info()
        print(json.dumps(info, indent=2) if args.json else format_info(info))
        return 0
    if args.out is None:
        raise SystemExit("vlwm city: --out SCENE.npz is required to build a scene")
    t0 = time.perf_counter()
    scene = build_scene(args.sources, seed=args.seed, size=args.size)
    path = scene.save(args.out)
    info = scene.info()
    print(f"wrote {path}: {info['buildings']} buildings, {info['triangles']} triangles "
          f"from {info['source']} in {time.perf_counter() - t0:.1f} s")
    if args.json:
        print(json.dumps(info, indent=2))
    return 0


def format_info(info: dict) -> str:
    lo, hi = info["bounds_min"], info["bounds_max"]
    geo = info["geo_origin"]
    lines = [
        f"source      {info['source']}",
        f"buildings   {info['buildings']}  (instances {info['instances']})",
        f"triangles   {info['triangles']}  (vertices {info['vertices']})",
        f"bounds      x {lo[0]:.1f}..{hi[0]:.1f}  y {lo[1]:.1f}..{hi[1]:.1f}  z {lo[2]:.1f}..{hi[2]:.1f} m",
        "heights     " + ("none" if info["building_height_range"] is None else
                          "{:.1f}..{:.1f} m (building triangles)".format(*info["building_height_range"])),
        f"roads       {info['road_graph']['nodes']} nodes, {info['road_graph']['edges']} edges",
        f"geo-origin  EPSG:{geo['epsg']} ({geo['origin'][0]:.3f}, {geo['origin'][1]:.3f}, {geo['origin'][2]:.3f})"
        f" = {geo['latitude']:.6f} N {geo['longitude']:.6f} E",
        "classes     " + ", ".join(f"{k} {v}" for k, v in info["triangles_per_label"].items()),
    ]
    return "\n".join(lines)


def cmd_export_gazebo(args: argparse.Namespace) -> int:
    from vlwm.world.export import export_gazebo, export_mesh
    from vlwm.world.scene import Scene

    scene = Scene.load(args.scene)
    out = Path(args.out)
    if args.format == "sdf":
        world = export_gazebo(scene, out, model_name=args.name)
        print(f"wrote Gazebo world {world} (set GZ_SIM_RESOURCE_PATH={out / 'models'})")
    else:
        path = out if out.suffix else out / f"{args.name}.{args.format}"
        written = export_mesh(scene, path, args.format)
        print(f"wrote {written} ({scene.num_triangles} triangles)")
    return 0


def cmd_gt(args: argparse.Namespace) -> int:
    from vlwm.gt.frame_gt import GTConfig
    from vlwm.gt.grid import GridSpec
    from vlwm.gt.recording import generate

    grid = args.grid
    kw = dict(source=args.source, solid_interiors=not args.hollow, camera_mask=not args.no_camera_mask,
              lidar_window=args.lidar_window)
    if args.point_cloud_range or args.voxel_size:
        if not (args.point_cloud_range and args.voxel_size):
            raise SystemExit("vlwm gt: --point-cloud-range and --voxel-size go together")
        kw["grid"] = GridSpec(tuple(args.point_cloud_range), tuple(args.voxel_size))
        grid = "config"
    t0 = time.perf_counter()
    reports = generate(args.input, args.output, grid=grid, config=GTConfig(**kw), scene=args.scene,
                       overwrite=args.overwrite, workers=args.workers)
    for r in reports:
        print(r.summary())
    written = sum(len(r.written) for r in reports)
    failed = sum(len(r.failed) for r in reports) + sum(r.error is not None for r in reports)
    where = args.output or "each sequence's occupancy/"
    print(f"gt: wrote {written} occupancy frames for {len(reports)} sequence(s) into {where} "
          f"({failed} failures) in {time.perf_counter() - t0:.1f} s")
    return 1 if failed and not written else 0


def add_gt_arguments(g: argparse.ArgumentParser) -> None:
    g.add_argument("--input", nargs="+", required=True, help="sequence folders, globs, or recording roots")
    g.add_argument("--output", help="output root (default: write into each sequence's occupancy/)")
    g.add_argument("--source", choices=("scene", "lidar"), default="scene",
                   help="exact scene voxelisation (built-in recordings) or multi-sweep lidar aggregation")
    g.add_argument("--grid", default="aerial",
                   help="preset: aerial (default: one grid for drones and rovers, as the dataset expects), "
                        "occ3d (the pretrained OccWorld's), or auto (aerial for drones, occ3d for rovers)")
    g.add_argument("--point-cloud-range", type=float, nargs=6, metavar="V", help="custom grid x0 y0 z0 x1 y1 z1 (m)")
    g.add_argument("--voxel-size", type=float, nargs=3, metavar="V", help="custom voxel size dx dy dz (m)")
    g.add_argument("--scene", help="scene file (.npz) when the manifest does not name one")
    g.add_argument("--hollow", action="store_true", help="do not fill building interiors")
    g.add_argument("--no-camera-mask", action="store_true", help="skip mask_camera (written as zeros)")
    g.add_argument("--lidar-window", type=int, default=10, help="lidar source: sweeps before/after aggregated")
    g.add_argument("--overwrite", action="store_true", help="re-make frames that already have a file")
    g.add_argument("--workers", type=int, default=1, help="processes per sequence")


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on the embedded default world: city to forecast video and REPORT.md."""
    from vlwm.demo import run_demo

    run_demo(Path(args.out), seed=args.seed, size=args.size, duration=args.duration, workers=args.workers)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vlwm", description="VLWM: city models to 4D occupancy world models.")
    p.add_argument("--version", action="version", version=f"vlwm {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    c = sub.add_parser("city", help="build a scene (procedural or PLATEAU CityGML) or describe one",
                       description="vlwm city [procedural | FILE.gml|DIR ...] --out scene.npz [--seed N] [--size M]\n"
                                   "vlwm city info scene.npz [--json]",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("sources", nargs="*", default=["procedural"],
                   help="'procedural' (default), CityGML files or folders, or 'info SCENE.npz'")
    c.add_argument("--out", help="scene file to write (.npz)")
    c.add_argument("--seed", type=int, default=0, help="procedural city seed")
    c.add_argument("--size", type=float, default=None, help="procedural city side, metres (default 1000)")
    c.add_argument("--json", action="store_true", help="print the scene summary as JSON")
    c.set_defaults(func=cmd_city)

    e = sub.add_parser("export-gazebo", help="export a scene as a Gazebo (SDF 1.9) world or a mesh")
    e.add_argument("scene", help="scene file (.npz) from `vlwm city`")
    e.add_argument("--out", required=True, help="output folder (sdf) or mesh file/folder (glb, obj)")
    e.add_argument("--format", choices=("sdf", "glb", "obj"), default="sdf")
    e.add_argument("--name", default="vlwm_city", help="model name")
    e.set_defaults(func=cmd_export_gazebo)

    from vlwm.sim.cli import add_sim_server_parser, add_simulate_parser

    add_simulate_parser(sub)
    add_sim_server_parser(sub)

    from vlwm.data.cli import add_data_parser
    from vlwm.eval.cli import add_eval_parser
    from vlwm.io.cli import add_download_parser
    from vlwm.io.rosbag_cli import add_rosbag_parsers
    from vlwm.train.cli import add_train_parser
    from vlwm.viz.cli import add_viz_parser

    add_data_parser(sub)
    add_train_parser(sub)
    add_eval_parser(sub)
    add_viz_parser(sub)
    add_download_parser(sub)
    add_rosbag_parsers(sub)

    g = sub.add_parser("gt", help="occupancy ground truth (semantic voxel grids + visibility masks) for recordings")
    add_gt_arguments(g)
    g.set_defaults(func=cmd_gt)

    d = sub.add_parser("demo", help="run the whole pipeline on the embedded default world")
    d.add_argument("--out", default="out/demo", help="output folder")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", type=float, default=1000.0, help="city side, metres")
    d.add_argument("--duration", type=float, default=150.0, help="seconds recorded per vehicle")
    d.add_argument("--workers", type=int, default=2, help="parallel recording processes")
    d.set_defaults(func=cmd_demo)

    from vlwm.benchmark.cli import add_benchmark_parser

    add_benchmark_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"vlwm {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
