"""Simulation benchmark: per-frame sensor and recording cost on the default procedural city.

Measured on one process (numba/embree single-threaded as used): a drone 30 m over the city
centre among the default traffic —
* one 64x2048 lidar sweep through the dynamic world (scene + traffic at the frame time);
* the six cameras at 640x360 with depth and semantics;
* whole frames recorded (sensors + JPEG/PNG/npy/JSON writes), from ``record_mission``;
* frames per second of two sequences recorded with ``--workers 2``.
Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import report, timed
from vlwm.sim.camera import camera_rig, render_rig
from vlwm.sim.dynamic_world import DynamicWorld
from vlwm.io.frames import Pose
from vlwm.sim.jobs import run_jobs, spread_specs
from vlwm.sim.lidar import drone_lidar, scan
from vlwm.sim.mission_spec import MissionSpec
from vlwm.sim.missions import survey_mission
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.sim.traffic import Traffic
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.procedural import CityConfig, generate_city


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--frames", type=int, default=20, help="frames per recorded sequence")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    scene = generate_city(CityConfig())
    t_traffic, traffic = timed(lambda: Traffic(scene, TrafficConfig()), 1)
    world = DynamicWorld(scene, traffic)
    pose = Pose.from_xyz_rpy(3.0, (0.0, 0.0, 30.0), (0.0, 0.0, 0.3))
    lidar = drone_lidar()
    rig = camera_rig("drone", 640, 360)
    scan(world.caster(3.0), pose, lidar)  # warm-up: BVH build, numba compile
    render_rig(world.caster(3.0), pose, rig)
    ts = iter(3.0 + 0.5 * i for i in range(1000))
    t_lidar, pts = timed(lambda: scan(world.caster(next(ts)), pose, lidar), args.repeats)
    t_cams, _ = timed(lambda: render_rig(world.caster(next(ts)), pose, rig), args.repeats)

    rows = [("traffic construction (default: 58 actors)", f"{t_traffic:.2f} s", f"{len(traffic.actors)} actors"),
            ("lidar 64x2048 through scene + traffic", f"{t_lidar * 1e3:.1f} ms", f"{len(pts):,} points; goal <= 25 ms"),
            ("six cameras 640x360, RGB + depth + semantics", f"{t_cams:.3f} s", "goal <= 0.4 s")]

    duration = (args.frames - 1) / 2.0
    config = SimConfig(duration_s=duration)
    mission = survey_mission(scene, (0.0, 0.0), size=100.0, spacing=15.0, altitude=30.0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record_mission(scene, mission, tmp, config, traffic=traffic, progress=False)
        t_frame = (time.perf_counter() - t0) / args.frames
        rows.append(("whole frame recorded (sensors + files), one process", f"{t_frame:.3f} s",
                     f"{args.frames} frames of a survey; goal <= 1 s"))
        scene_path = scene.save(Path(tmp) / "scene.npz")
        specs = spread_specs(MissionSpec(seed=0), 2, scene)
        t0 = time.perf_counter()
        run_jobs(scene_path, specs, Path(tmp) / "w2", config, workers=2, progress=False)
        wall = time.perf_counter() - t0
        rows.append(("two sequences with --workers 2", f"{2 * args.frames / wall:.2f} frames/s",
                     f"{2 * args.frames} frames in {wall:.1f} s incl. process start, scene load, traffic"))
    report("Simulation", rows, note="Single process unless stated; medians of repeats.", write=not args.no_write)


if __name__ == "__main__":
    main()
