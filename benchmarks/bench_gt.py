"""Ground-truth stage benchmark: occupancy per frame on the full aerial grid, and its quality checks.

Run with ``.venv/bin/python benchmarks/bench_gt.py``; appends a dated section to
``benchmarks/RESULTS.md`` naming the machine and its load.

Measured on the default procedural city (1 km, seed 0) with the default traffic, the ``aerial``
grid (200 x 200 x 121 voxels of 0.4 x 0.4 x 1.25 m) and a drone at 30 m and at 100 m over several
places and headings (medians over places, each the median of repeats; one thread — BLAS pinned to
one — so the numbers are per core):

* semantics: scene voxelisation (surfaces, solid interiors, actor boxes at the frame's time);
* lidar visibility: DDA of the 64 x 2048 sweep of :func:`vlwm.sim.lidar.drone_lidar`;
* camera visibility, separately: six 640 x 360 drone cameras, one ray per 4 x 4 pixels;
* writing the frame file (compressed npz), the lidar source (a window of +-10 sweeps);
* numba compilation on the first call with an empty cache (excluded above), and loading from the cache;
* quality: returns in non-free voxels, lidar-vs-scene IoU on observed voxels along a flight,
  temporal agreement of consecutive frames warped by the ego motion.

The goal is <= 0.15 s per frame per core for semantics + lidar visibility.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # per-core numbers: no hidden BLAS or numba threads

import argparse  # noqa: E402
import datetime  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from common import machine, timed  # noqa: E402  (benchmarks/ is on sys.path)

from vlwm.gt.ego_frame import GridFrame, warp_to_frame  # noqa: E402
from vlwm.gt.frame_gt import GTConfig, occupancy_for_frame, write_occupancy  # noqa: E402
from vlwm.gt.grid import AERIAL  # noqa: E402
from vlwm.gt.lidar_source import LidarSweep, aggregate_sweeps  # noqa: E402
from vlwm.gt.priority import priority_ranks  # noqa: E402
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer  # noqa: E402
from vlwm.gt.visibility import PinholeCamera, camera_rays, camera_visibility, lidar_visibility  # noqa: E402
from vlwm.labels import DYNAMIC_OCC_CLASSES, OCC3D_ID  # noqa: E402
from vlwm.sim.camera import camera_rig  # noqa: E402
from vlwm.sim.dynamic_world import DynamicWorld  # noqa: E402
from vlwm.io.frames import Pose  # noqa: E402
from vlwm.sim.lidar import drone_lidar, scan  # noqa: E402
from vlwm.sim.traffic import Traffic  # noqa: E402
from vlwm.sim.traffic_config import TrafficConfig  # noqa: E402
from vlwm.world.procedural import CityConfig, generate_city  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ALTITUDES = (30.0, 100.0)
GOAL_S = 0.15
FLIGHT_SPEED = 5.0        #: m/s of the quality-check flight, recorded at 2 Hz (2.5 m between frames)
FRAME_DT = 0.5

COMPILE_SNIPPET = r"""
import time, numpy as np
t0 = time.perf_counter()
from vlwm.gt.voxelize import voxelize_surfaces, fill_solids, splat_points
from vlwm.gt.visibility import traverse
from vlwm.gt.priority import priority_ranks
from vlwm.labels import OCC3D_CLASS_NAMES
r = priority_ranks(OCC3D_CLASS_NAMES)
sem = np.full((4, 4, 4), 17, np.uint8)
tri = np.array([[[0.5, 0.5, 0.5], [2.5, 0.5, 0.5], [0.5, 2.5, 1.5]]])
t1 = time.perf_counter()
voxelize_surfaces(sem, tri, np.array([4], np.uint8), r)
fill_solids(sem, tri, np.zeros(1, int), np.array([4], np.uint8), r)
splat_points(sem, tri[0], np.full(3, 4, np.uint8), r)
m = np.zeros((4, 4, 4), np.uint8)
traverse(m, np.eye(4), np.zeros((1, 3)), np.ones((2, 3)) * 3)
traverse(m, np.eye(4), np.zeros((2, 3)), np.ones((2, 3)) * 3, sem, 17)
print(time.perf_counter() - t1)
"""


def compile_times() -> tuple[float, float]:
    """Seconds of the kernels' first calls with an empty numba cache, then with the cache it left."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        run = [sys.executable, "-c", COMPILE_SNIPPET]
        cold = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
        warm = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
    return cold, warm


def drone_pose(t, xy, altitude, yaw) -> Pose:
    return Pose.from_xyz_rpy(t, (xy[0], xy[1], altitude), (0.03, -0.05, yaw))


def per_frame(scene, world, traffic, vox, ranks, cams, places, altitude, repeats):
    """Median timings (s) over places of semantics, lidar and camera visibility, and hit statistics."""
    lidar = drone_lidar()
    config = GTConfig()
    sem_t, lid_t, cam_t, hits_ok, observed, cam_rays = [], [], [], [], [], 0
    for k, (xy, yaw) in enumerate(places):
        t = 10.0 + 7.0 * k
        pose = drone_pose(t, xy, altitude, yaw)
        frame = GridFrame.from_pose(pose, float(scene.ground_height(*xy)))
        points = scan(world.caster(t), pose, lidar)
        sweep = LidarSweep(pose, points, lidar.T_body_sensor())
        actors = ActorBoxes.from_traffic(traffic, t)
        ts, sem = timed(lambda: vox.semantics(frame, config.grid, ranks, actors), repeats)
        tl, mask = timed(lambda: lidar_visibility(config.grid, frame, sweep.T_world_lidar(), points), repeats)
        rays = camera_rays(pose, cams, config.camera_subsample)
        tc, _ = timed(lambda: camera_visibility(config.grid, frame, sem, 17,
                                                camera_rays(pose, cams, config.camera_subsample)), repeats)
        idx, inside = config.grid.index_of(frame.to_grid(sweep.world_points()))
        hits_ok.append(np.mean(sem[tuple(idx[inside].T)] != 17) if inside.any() else 1.0)
        observed.append(mask.mean())
        sem_t.append(ts)
        lid_t.append(tl)
        cam_t.append(tc)
        cam_rays = len(rays.ranges)
    return (statistics.median(sem_t), statistics.median(lid_t), statistics.median(cam_t), min(hits_ok),
            statistics.median(observed), cam_rays)


def flight_quality(scene, vox, ranks, window=10):
    """Lidar-vs-scene IoU on observed voxels and temporal agreement, static scene, drone at 30 m."""
    lidar = drone_lidar()
    n = 2 * window + 2
    poses = [drone_pose(FRAME_DT * k, (-60.0 + FLIGHT_SPEED * FRAME_DT * k, 25.0), 30.0, 0.15) for k in range(n)]
    sweeps = [LidarSweep(p, scan(scene.cast, p, lidar), lidar.T_body_sensor()) for p in poses]
    frames = [GridFrame.from_pose(p, 0.0) for p in poses]
    c = window
    t_agg, agg = timed(lambda: aggregate_sweeps(sweeps[:2 * window + 1], c, frames[c], AERIAL, ranks, 17,
                                                OCC3D_ID["others"]), 1)
    exact = vox.semantics(frames[c], AERIAL, ranks)
    seen = lidar_visibility(AERIAL, frames[c], sweeps[c].T_world_lidar(), sweeps[c].points).astype(bool)
    a, b = (exact != 17) & seen, (agg != 17) & seen
    iou = (a & b).sum() / max((a | b).sum(), 1)
    # temporal: frame c+1 against frame c warped by the known ego motion
    nxt = vox.semantics(frames[c + 1], AERIAL, ranks)
    seen_next = lidar_visibility(AERIAL, frames[c + 1], sweeps[c + 1].T_world_lidar(), sweeps[c + 1].points)
    warped = warp_to_frame(exact, AERIAL, frames[c], frames[c + 1], 17)
    warped_seen = warp_to_frame(seen.astype(np.uint8), AERIAL, frames[c], frames[c + 1], 0).astype(bool)
    static = ~np.isin(warped, DYNAMIC_OCC_CLASSES) & ~np.isin(nxt, DYNAMIC_OCC_CLASSES)
    both = warped_seen & seen_next.astype(bool) & static
    occupied = both & ((warped != 17) | (nxt != 17))
    return (t_agg, iou, np.mean(warped[both] == nxt[both]), np.mean(warped[occupied] == nxt[occupied]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--places", type=int, default=6, help="drone positions per altitude")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    args = p.parse_args(argv)
    header = machine()

    cold, warm = compile_times()
    scene = generate_city(CityConfig())
    traffic = Traffic(scene, TrafficConfig())
    world = DynamicWorld(scene, traffic)
    t_prep, vox = timed(lambda: SceneVoxelizer(scene), 1)
    ranks = priority_ranks(scene.label_map.names)
    cams = [PinholeCamera.from_config(c) for c in camera_rig("drone")]
    rng = np.random.default_rng(0)
    places = [(tuple(rng.uniform(-350, 350, 2)), float(rng.uniform(-np.pi, np.pi))) for _ in range(args.places)]
    # warm-up: the first call of each kernel loads it from the numba cache
    occupancy_for_frame(GridFrame(0, 0, 0, 0), GTConfig(), scene=vox)

    rows = [("numba compile, first call with an empty cache (excluded below)", f"{cold:.1f} s",
             f"then {warm * 1000:.0f} ms to load from the cache"),
            ("prepare scene (labels, solids, triangle bins)", f"{t_prep * 1000:.0f} ms",
             f"{scene.num_triangles:,} triangles, once per scene")]
    for altitude in ALTITUDES:
        ts, tl, tc, hits, observed, n_cam = per_frame(scene, world, traffic, vox, ranks, cams, places, altitude,
                                                      args.repeats)
        verdict = "meets" if ts + tl <= GOAL_S else "misses"
        rows += [(f"drone {altitude:.0f} m: semantics (scene + actors)", f"{ts * 1000:.1f} ms", ""),
                 (f"drone {altitude:.0f} m: lidar visibility (64 x 2048 sweep)", f"{tl * 1000:.1f} ms",
                  f"{observed * 100:.0f} % of voxels observed"),
                 (f"drone {altitude:.0f} m: **semantics + lidar visibility**", f"**{(ts + tl) * 1000:.0f} ms**",
                  f"{verdict} the {GOAL_S:.2f} s/frame/core goal; returns in non-free voxels >= {hits * 100:.2f} %"),
                 (f"drone {altitude:.0f} m: camera visibility (separate)", f"{tc * 1000:.1f} ms",
                  f"6 cameras 640 x 360, {n_cam:,} rays (1 per 4 x 4 px), rays and DDA")]

    pose = drone_pose(3.0, (0.0, 0.0), 30.0, 0.4)
    lidar = drone_lidar()
    sweep = LidarSweep(pose, scan(world.caster(3.0), pose, lidar), lidar.T_body_sensor())
    occ = occupancy_for_frame(GridFrame.from_pose(pose, 0.0), GTConfig(), scene=vox, sweeps=[sweep],
                              actors=ActorBoxes.from_traffic(traffic, 3.0), cameras=camera_rays(pose, cams))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "000001_occupancy.npz"
        t_write, _ = timed(lambda: write_occupancy(path, occ), 3)
        size_kb = path.stat().st_size / 1e3
    rows.append(("write one frame file (savez_compressed, atomic)", f"{t_write * 1000:.0f} ms", f"{size_kb:.0f} kB"))
    t_agg, iou, agree, agree_occ = flight_quality(scene, vox, ranks)
    rows += [("lidar source: aggregate +-10 sweeps (21 x 64 x 2048) into one grid", f"{t_agg * 1000:.0f} ms",
              "drone at 30 m, 5 m/s, 2 Hz"),
             ("quality: lidar source vs scene source, IoU on observed voxels", f"{iou:.3f}",
              "same flight, static scene, window +-10"),
             ("quality: consecutive frames (2.5 m apart) warped by ego motion", f"{agree:.4f}",
              f"agreement on voxels observed in both; {agree_occ:.3f} over voxels either calls occupied")]

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"## Occupancy ground truth — {now}", "", f"Machine: {header}. Single thread (per core); medians over "
             f"{args.places} places x {args.repeats} repeats per altitude. Aerial grid 200 x 200 x 121, default "
             "procedural city and traffic.", "", "| what | time | notes |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        results = REPO / "benchmarks" / "RESULTS.md"
        if not results.exists():
            results.write_text("# Benchmark results\n\nWritten by the scripts in this folder; newest last.\n")
        with open(results, "a") as fh:                                   # append only
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
