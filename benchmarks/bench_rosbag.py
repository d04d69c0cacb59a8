"""ROS 2 bag benchmark: ``vlwm export-bag`` and ``vlwm import-bag`` throughput on a recording.

Run with ``.venv/bin/python benchmarks/bench_rosbag.py [--recording DIR]``; appends a dated section
to ``benchmarks/RESULTS.md`` naming the machine and its load.

Without ``--recording`` a rover drives 20 s (2 Hz, the built-in rig: 64 x 2048 lidar and six
cameras) on the default procedural city, recorded into a temporary folder.  Each storage
(sqlite3, MCAP) is exported once and imported once (one pass each: the files are large, the
times are long enough), then the import is checked against the original (same frame count, poses
within 1e-6 m).  Reported: seconds, frames per second and bag size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import report  # noqa: E402  (benchmarks/ is on sys.path)

from vlwm.io.rosbag_export import export_bag
from vlwm.io.rosbag_import import ImportOptions, import_bag


def _record(tmp: Path) -> Path:
    """A 20 s rover recording on the default city (seed 0) under ``tmp``."""
    from vlwm.sim.jobs import run_jobs
    from vlwm.sim.mission_spec import MissionSpec
    from vlwm.sim.simulator import SimConfig
    from vlwm.world.procedural import CityConfig, generate_city

    scene = generate_city(CityConfig(seed=0)).save(tmp / "city.npz")
    spec = MissionSpec(vehicle="rover", pattern="patrol", goals=2, seed=0)
    return run_jobs(scene, [spec], tmp / "rec", SimConfig(duration_s=20.0, seed=0), workers=1)[0]


def _positions(seq: Path) -> np.ndarray:
    """(N, 3) positions of the pose files (a list or an {x, y, z} object, both written in the wild)."""
    out = []
    for p in sorted((seq / "poses").glob("*.json")):
        pos = json.loads(p.read_text())["position"]
        out.append([pos[k] for k in "xyz"] if isinstance(pos, dict) else pos)
    return np.asarray(out, np.float64)


def _size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recording", type=Path, help="a recording folder (default: simulate a 20 s rover drive)")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seq = args.recording or _record(tmp)
        frames = len(list((seq / "poses").glob("*.json")))
        truth = _positions(seq)
        for storage in ("sqlite3", "mcap"):
            bag = tmp / f"bag_{storage}"
            t0 = time.perf_counter()
            export_bag(seq, bag, storage=storage, progress=False)
            t_exp = time.perf_counter() - t0
            t0 = time.perf_counter()
            import_bag(bag, tmp / f"imported_{storage}", ImportOptions(agent="rover", progress=False))
            t_imp = time.perf_counter() - t0
            back = _positions(tmp / f"imported_{storage}")
            ok = back.shape == truth.shape and float(np.abs(back - truth).max()) < 1e-6
            rows.append((f"export-bag {storage}", f"{t_exp:.2f} s ({frames / t_exp:.1f} frames/s)",
                         f"{frames} frames, bag {_size(bag):.0f} MB"))
            rows.append((f"import-bag {storage}", f"{t_imp:.2f} s ({frames / t_imp:.1f} frames/s)",
                         f"round trip {'exact' if ok else 'MISMATCH'} (poses within 1e-6 m)"))
        source = str(args.recording) if args.recording else "a 20 s rover drive on the default city (seed 0)"
    report("ROS 2 bags (bench_rosbag.py)", rows,
           note=f"One pass each on {source}; lidar 64 x 2048 and six JPEG cameras per frame.",
           write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
