"""World-stage benchmark: lidar-sweep ray casting through our API vs raw Embree, and world build times.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_raycast.py``); appends a dated
section to ``benchmarks/RESULTS.md`` naming the machine.

Measured:
* one 64-beam x 2048-column spinning-lidar sweep (131,072 rays, elevations -75..+15 deg,
  200 m range) from a drone 30 m above the centre of the default procedural city:
  ``Scene.cast`` (distance, triangle, class, instance, normal) vs ``embreex`` called directly on
  the same mesh and rays in the same run (distances + triangle ids), median of repeats;
* generating the default 1 km city, saving and loading its scene file;
* importing the 657-building PLATEAU tile (``shared/data/plateau/53395404_bldg_6697_op.gml``).

``--section traffic`` (also part of ``all``) times the lidar through traffic, old and new side by
side in one run: the drone lidar of ``bench_sim.py`` (64 x 2048, 30 m over the default city's
centre, 58 actors) — raw ``embreex`` on the same world-frame rays against the scene alone, the
cast through scene plus traffic and the whole ``lidar.scan``, each by the path before the compiled
kernels (``lidar_before.py``) and by the current one, a new traffic time every repeat (so the
actors' tracer is rebuilt as in a recorded frame), repeats interleaved; median and minimum.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import report, timed  # benchmarks/ is on sys.path when a script here runs
from vlwm.world.procedural import CityConfig, generate_city
from vlwm.world.scene import Scene

REPO = Path(__file__).resolve().parents[1]
PLATEAU_TILE = REPO.parent / "shared" / "data" / "plateau" / "53395404_bldg_6697_op.gml"


def lidar_rays(position, beams=64, columns=2048, elev_deg=(-75.0, 15.0)):
    """Unit directions (beams*columns, 3) of a spinning lidar at ``position`` (ENU)."""
    el = np.deg2rad(np.linspace(*elev_deg, beams))
    az = np.linspace(0, 2 * np.pi, columns, endpoint=False)
    e, a = np.meshgrid(el, az, indexing="ij")
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    o = np.broadcast_to(np.asarray(position, np.float32), d.shape)
    return np.ascontiguousarray(o, np.float32), d.astype(np.float32)


def lidar_through_traffic(repeats: int) -> list[tuple[str, str, str]]:
    """Rows (what, time, notes) of the lidar-through-traffic comparison; see the module docstring."""
    from vlwm.sim.dynamic_world import DynamicWorld
    from vlwm.io.frames import Pose
    from vlwm.sim.lidar import drone_lidar, rover_lidar
    from vlwm.sim.traffic import Traffic, TrafficConfig

    from lidar_before import WorldBefore

    scene = generate_city(CityConfig())
    traffic = Traffic(scene, TrafficConfig())
    worlds = DynamicWorld(scene, traffic), WorldBefore(scene, traffic), DynamicWorld(scene, None)
    car = traffic.states(3.0)
    behind = car.position[0] - 8.0 * np.array([np.cos(car.yaw[0]), np.sin(car.yaw[0]), 0.0])
    scenarios = [
        ("drone 30 m over the centre (as bench_sim)", Pose.from_xyz_rpy(3.0, (0.0, 0.0, 30.0), (0.0, 0.0, 0.3)),
         drone_lidar()),
        ("rover 8 m behind car_0000", Pose.from_xyz_rpy(3.0, tuple(behind), (0.0, 0.0, float(car.yaw[0]))),
         rover_lidar()),
    ]
    rows = []
    for label, pose, lidar in scenarios:
        rows += _traffic_scenario(label, scene, worlds, pose, lidar, repeats)
    return rows


def _traffic_scenario(label, scene, worlds, pose, lidar, repeats):
    """Raw Embree, scene-only cast, old/new cast and old/new scan for one pose; rows for the table."""
    from embreex import mesh_construction, rtcore_scene

    from lidar_before import scan_before
    from vlwm.io.frames import rotate_vectors
    from vlwm.sim.lidar import scan, sweep_pattern

    new, old, static = worlds
    T = pose.matrix() @ lidar.T_body_sensor()
    d = rotate_vectors(T[:3, :3].astype(np.float32), sweep_pattern(lidar)[0])        # world-frame rays
    o_view = np.broadcast_to(T[:3, 3].astype(np.float32), d.shape)
    o = np.ascontiguousarray(o_view)
    raw = rtcore_scene.EmbreeScene()
    mesh_construction.TriangleMesh(raw, scene.vertices, scene.faces)
    tfar = np.full(len(d), lidar.max_range, np.float32)

    # Warm-up (BVH builds, numba compilation), then the same points from both paths, byte for byte.
    raw.run(o, d, dists=tfar.copy(), output=1)
    for t in (pose.timestamp - 0.002, pose.timestamp - 0.001):
        a, b = scan(new.caster(t), pose, lidar), scan_before(old.caster(t), pose, lidar)
        assert a.tobytes() == b.tobytes(), f"{label}: old and new lidar paths disagree"
    actor_points = int((a[:, 5] >= len(scene.instance_names)).sum())

    cases = {
        "raw": lambda t: raw.run(o, d, dists=tfar.copy(), output=1),
        "static": lambda t: static.caster(t)(o_view, d, lidar.max_range),
        "cast_old": lambda t: old.caster(t + 0.0005)(o_view, d, lidar.max_range),
        "cast_new": lambda t: new.caster(t + 0.0005)(o_view, d, lidar.max_range),
        "scan_old": lambda t: scan_before(old.caster(t), pose, lidar),
        "scan_new": lambda t: scan(new.caster(t), pose, lidar),
    }
    times = {k: [] for k in cases}
    cpu = {k: [] for k in cases}
    for i in range(repeats):                       # interleaved, so load spikes hit every case alike
        t = pose.timestamp + 0.001 * i             # a new traffic time: the actors' layer is rebuilt
        for name, fn in cases.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn(t)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}

    def cell(k):
        return f"{med[k] * 1e3:.1f} ms (min {low[k] * 1e3:.1f}; CPU {med_cpu[k] * 1e3:.1f})"

    def ratio(k):
        return (f"{med['raw'] / med[k]:.2f}x raw Embree (min/min {low['raw'] / low[k]:.2f}x, "
                f"CPU {med_cpu['raw'] / med_cpu[k]:.2f}x)")

    def goal(k):
        over = med[k] - med["raw"] / 0.8
        return ">= 0.8x: met" if over <= 0 else f">= 0.8x: missed by {over * 1e3:.1f} ms"

    n = len(d)
    return [
        (f"{label}: raw embreex, scene only, {n:,} rays", cell("raw"), f"{n / med['raw'] / 1e6:.2f} Mrays/s"),
        (f"{label}: cast, scene only (DynamicWorld, no traffic)", cell("static"), ratio("static")),
        (f"{label}: cast, scene + traffic, **old**", cell("cast_old"), ratio("cast_old")),
        (f"{label}: cast, scene + traffic, **new**", cell("cast_new"), f"{ratio('cast_new')}; {goal('cast_new')}"),
        (f"{label}: lidar.scan through scene + traffic, **old**", cell("scan_old"), ratio("scan_old")),
        (f"{label}: lidar.scan through scene + traffic, **new**", cell("scan_new"),
         f"{ratio('scan_new')}; <= 25 ms: {'met' if med['scan_new'] <= 0.025 else 'missed'}; {goal('scan_new')}; "
         f"{med['scan_old'] / med['scan_new']:.2f}x faster than old; {len(a):,} points, {actor_points:,} on "
         "actors, byte-identical to old"),
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--section", choices=("all", "world", "traffic"), default="all",
                   help="world: city build, scene file, raw vs Scene.cast, PLATEAU import; traffic: the "
                        "lidar through traffic, old and new paths; all: both")
    p.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    args = p.parse_args(argv)

    if args.section in ("all", "traffic"):
        report("Lidar through traffic", lidar_through_traffic(args.repeats), write=not args.no_write,
               note=f"Single thread; median (and minimum) of {args.repeats} interleaved repeats, a new traffic "
                    "time each repeat; CPU = median process CPU time (less sensitive to other jobs than "
                    "wall time); ratio = raw Embree time / time. Re-run with `.venv/bin/python "
                    f"benchmarks/bench_raycast.py --section traffic --repeats {args.repeats}`.")
    if args.section == "traffic":
        return

    rows = []
    t_gen, scene = timed(lambda: generate_city(CityConfig()), 3)
    rows.append(("generate default procedural city (1 km, seed 0)", f"{t_gen:.2f} s",
                 f"{scene.num_triangles:,} triangles, {scene.num_buildings} buildings"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.npz"
        t_save, _ = timed(lambda: scene.save(path), 3)
        t_load, scene = timed(lambda: Scene.load(path), 5)
        size_mb = path.stat().st_size / 1e6
    rows.append(("save scene file", f"{t_save * 1e3:.0f} ms", f"{size_mb:.1f} MB"))
    rows.append(("load scene file", f"{t_load * 1e3:.0f} ms", ""))

    # Embree builds its BVH at the first query: time mesh upload + build with a single ray.
    t_bvh, _ = timed(lambda: scene.cast([[0.0, 0.0, 500.0]], [[0.0, 0.0, -1.0]]), 1)
    rows.append(("build Embree BVH (first cast)", f"{t_bvh * 1e3:.0f} ms", ""))
    z = float(scene.ground_height(0.0, 0.0)) + 30.0
    o, d = lidar_rays((0.0, 0.0, z))

    from embreex import mesh_construction, rtcore_scene

    raw = rtcore_scene.EmbreeScene()
    mesh_construction.TriangleMesh(raw, scene.vertices, scene.faces)
    tfar = np.full(len(o), 200.0, np.float32)
    raw.run(o, d, dists=tfar.copy(), output=1)  # build the BVH outside the timing
    scene.cast(o, d, 200.0)
    t_raw, out = timed(lambda: raw.run(o, d, dists=tfar.copy(), output=1), args.repeats)
    t_api, hits = timed(lambda: scene.cast(o, d, 200.0), args.repeats)
    hit_frac = float(hits.hit.mean())
    assert np.array_equal(hits.triangle, np.where(out["primID"] >= 0, out["primID"], -1))
    rays = len(o)
    rows.append(("lidar sweep 64x2048, raw embreex (dist + triangle)", f"{t_raw * 1e3:.1f} ms",
                 f"{rays / t_raw / 1e6:.2f} Mrays/s"))
    rows.append(("lidar sweep 64x2048, Scene.cast (dist, tri, class, instance, normal)", f"{t_api * 1e3:.1f} ms",
                 f"{rays / t_api / 1e6:.2f} Mrays/s, {hit_frac:.1%} hits, "
                 f"**{t_raw / t_api:.2f}x raw Embree throughput**"))

    if PLATEAU_TILE.is_file():
        from vlwm.world.citygml import load_plateau

        t_imp, tile = timed(lambda: load_plateau([PLATEAU_TILE]), 3)
        rows.append(("import PLATEAU tile 53395404 (657 LOD1 buildings)", f"{t_imp:.2f} s",
                     f"{tile.num_buildings} buildings, {tile.num_triangles:,} triangles"))

    report("World stage", rows, write=not args.no_write)


if __name__ == "__main__":
    main()
