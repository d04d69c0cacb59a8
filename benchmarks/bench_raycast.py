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
"""

from __future__ import annotations

import argparse
import tempfile
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    args = p.parse_args(argv)

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
