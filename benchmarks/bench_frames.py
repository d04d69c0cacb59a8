"""Frame file benchmark: writing and reading one aerial ground-truth frame, old (npz) and new (.vlo) side by side.

The frame: the ``aerial`` grid (200 x 200 x 121) of a drone at 30 m over the procedural city with
traffic, made by the real ground-truth stage (semantics, lidar mask from a 64 x 2048 sweep, camera
mask from six cameras, instances).  Measured in one run, each the median of ``--repeats``:

* ``savez_compressed``: the old writer (all six arrays, ``occupancy`` repeated and ``instances``
  dense) and its reader (``np.load``);
* ``.vlo`` (:mod:`vlwm.io.occupancy_file`, python-zstandard level 1): write with every array, read
  semantics only, semantics + masks, everything;
* blosc2 (when the ``blosc2`` package is installed; not a dependency), the other candidate codec:
  the same arrays, masks as bytes with the bit-shuffle filter, instances sparse, LZ4 and ZSTD.

Goals (issue 16): write <= 20 ms with every array; read <= 3 ms (<= 5 ms with masks).  One thread.
Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from common import report, timed  # noqa: E402  (benchmarks/ is on sys.path)

from vlwm.gt.ego_frame import GridFrame  # noqa: E402
from vlwm.gt.frame_gt import GTConfig, load_occupancy, occupancy_for_frame, write_occupancy  # noqa: E402
from vlwm.gt.lidar_source import LidarSweep  # noqa: E402
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer  # noqa: E402
from vlwm.gt.visibility import PinholeCamera, camera_rays  # noqa: E402
from vlwm.io import occupancy_file  # noqa: E402
from vlwm.io.atomic import atomic_write  # noqa: E402
from vlwm.io.frames import Pose  # noqa: E402
from vlwm.sim.camera import camera_rig  # noqa: E402
from vlwm.sim.dynamic_world import DynamicWorld  # noqa: E402
from vlwm.sim.lidar import drone_lidar, scan  # noqa: E402
from vlwm.sim.traffic import Traffic, TrafficConfig  # noqa: E402
from vlwm.world.procedural import CityConfig, generate_city  # noqa: E402

WRITE_GOAL_MS, READ_GOAL_MS, READ_MASKS_GOAL_MS = 20.0, 3.0, 5.0


def make_frame():
    scene = generate_city(CityConfig(size=600.0, seed=0))
    traffic = Traffic(scene, TrafficConfig(seed=0, cars=60, pedestrians=60))
    world = DynamicWorld(scene, traffic)
    vox = SceneVoxelizer(scene)
    pose = Pose.from_xyz_rpy(3.0, (0.0, 0.0, 30.0), (0.03, -0.05, 0.4))
    lidar = drone_lidar()
    sweep = LidarSweep(pose, scan(world.caster(3.0), pose, lidar), lidar.T_body_sensor())
    cams = [PinholeCamera.from_config(c) for c in camera_rig("drone")]
    return occupancy_for_frame(GridFrame.from_pose(pose, 0.0), GTConfig(), scene=vox, sweeps=[sweep],
                               actors=ActorBoxes.from_traffic(traffic, 3.0), cameras=camera_rays(pose, cams))


def write_npz(path: Path, occ) -> None:
    """The old writer, as it was: ``np.savez_compressed`` of every array, then an atomic rename."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **occ.arrays())
    atomic_write(path, lambda fh: fh.write(buf.getbuffer()))


def read_npz(path: Path, keys) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in keys}


def blosc2_rows(occ, tmp: Path, repeats: int) -> list[tuple[str, str, str]]:
    """The other candidate: blosc2 over the same arrays (masks with bit-shuffle, instances sparse)."""
    try:
        import blosc2
    except ImportError:
        return [("blosc2", "not measured", "the blosc2 package is not installed (pip install blosc2)")]
    blosc2.set_nthreads(1)
    sem, ml, mc = occ.semantics, occ.mask_lidar, occ.mask_camera
    where = np.flatnonzero(occ.instances.reshape(-1) != 0).astype(np.uint32)
    ids = occ.instances.reshape(-1)[where]
    rows = []
    for codec in (blosc2.Codec.LZ4, blosc2.Codec.ZSTD):
        byte = dict(codec=codec, clevel=1 if codec == blosc2.Codec.ZSTD else 5, typesize=1, nthreads=1,
                    filters=[blosc2.Filter.SHUFFLE])
        bits = dict(byte, filters=[blosc2.Filter.BITSHUFFLE])
        path = tmp / f"frame_{codec.name}.b2"

        def write():
            parts = [blosc2.compress2(sem, **byte), blosc2.compress2(ml, **bits), blosc2.compress2(mc, **bits),
                     blosc2.compress2(where, **dict(byte, typesize=4)), blosc2.compress2(ids, **dict(byte, typesize=4))]
            sizes = np.array([len(p) for p in parts], np.int64)
            atomic_write(path, lambda fh: [fh.write(sizes.tobytes())] + [fh.write(p) for p in parts])
            return sizes

        t_write, sizes = timed(write, repeats)
        offsets = np.concatenate([[40], 40 + np.cumsum(sizes)])

        def read(n):
            blob = path.read_bytes()
            out = [np.empty(sem.shape, np.uint8) for _ in range(n)]
            for k in range(n):
                blosc2.decompress2(blob[offsets[k]:offsets[k + 1]], dst=out[k])
            return out

        t_sem, _ = timed(lambda: read(1), repeats)
        t_masks, back = timed(lambda: read(3), repeats)
        assert all(np.array_equal(a, b) for a, b in zip(back, (sem, ml, mc)))
        rows.append((f"blosc2 {codec.name}: write (semantics, masks, sparse instances)", f"{t_write * 1e3:.1f} ms",
                     f"{path.stat().st_size / 1e3:.0f} kB"))
        rows.append((f"blosc2 {codec.name}: read semantics / with masks", f"{t_sem * 1e3:.2f} ms",
                     f"with masks {t_masks * 1e3:.2f} ms"))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    args = p.parse_args(argv)
    occ = make_frame()
    raw = sum(a.nbytes for a in occ.arrays().values())
    r = args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "old").mkdir(), (tmp / "new").mkdir()     # apart: writing a .vlo removes an .npz of its frame
        old, new = tmp / "old" / "000001_occupancy.npz", tmp / "new" / "000001_occupancy.vlo"
        t_old_w, _ = timed(lambda: write_npz(old, occ), max(3, r // 2))
        t_old_r_sem, _ = timed(lambda: read_npz(old, ["semantics"]), r)
        t_old_r_masks, _ = timed(lambda: read_npz(old, ["semantics", "mask_lidar", "mask_camera"]), r)
        t_old_r_all, _ = timed(lambda: load_occupancy(old), r)
        t_new_w, _ = timed(lambda: write_occupancy(new, occ), r)
        t_new_r_sem, _ = timed(lambda: occupancy_file.read_frame(new, ["semantics"]), r)
        t_new_r_masks, _ = timed(lambda: occupancy_file.read_frame(new, ["semantics", "mask_lidar", "mask_camera"]), r)
        t_new_r_all, back = timed(lambda: load_occupancy(new), r)
        out = {"semantics": np.empty(occ.semantics.shape, np.uint8), "mask_lidar": np.empty(occ.semantics.shape, bool),
               "mask_camera": np.empty(occ.semantics.shape, bool)}
        t_into, _ = timed(lambda: occupancy_file.read_frame(new, list(out), out=out), r)
        ref = load_occupancy(old)
        lossless = set(back) == set(ref) and all(np.array_equal(back[k], ref[k]) and back[k].dtype == ref[k].dtype
                                                 for k in ref)
        size_old, size_new = old.stat().st_size, new.stat().st_size
        rows_b2 = blosc2_rows(occ, tmp, r)

    def verdict(ms, goal):
        return f"meets the {goal:.0f} ms goal" if ms <= goal else f"misses the {goal:.0f} ms goal by {ms - goal:.1f} ms"

    n_inst = int(np.count_nonzero(occ.instances))
    rows = [
        ("the frame", f"{raw / 1e6:.1f} MB raw", f"aerial 200 x 200 x 121; {100 * np.mean(occ.semantics != occ.free):.1f} % "
         f"occupied, {100 * occ.mask_lidar.mean():.0f} % lidar-observed, {100 * occ.mask_camera.mean():.0f} % "
         f"camera-observed, {n_inst} instance voxels"),
        ("old: write, savez_compressed (6 arrays), atomic", f"{t_old_w * 1e3:.0f} ms", f"{size_old / 1e3:.0f} kB"),
        ("old: read semantics (np.load)", f"{t_old_r_sem * 1e3:.1f} ms",
         f"with masks {t_old_r_masks * 1e3:.1f} ms; everything {t_old_r_all * 1e3:.1f} ms"),
        ("**new .vlo: write with every array**, atomic", f"**{t_new_w * 1e3:.1f} ms**",
         f"{size_new / 1e3:.0f} kB; {verdict(t_new_w * 1e3, WRITE_GOAL_MS)}; {t_old_w / t_new_w:.0f}x faster"),
        ("**new .vlo: read semantics**", f"**{t_new_r_sem * 1e3:.2f} ms**",
         f"{verdict(t_new_r_sem * 1e3, READ_GOAL_MS)}; {t_old_r_sem / t_new_r_sem:.0f}x faster"),
        ("**new .vlo: read semantics + both masks**", f"**{t_new_r_masks * 1e3:.2f} ms**",
         f"{verdict(t_new_r_masks * 1e3, READ_MASKS_GOAL_MS)}; into caller buffers (bool masks) "
         f"{t_into * 1e3:.2f} ms"),
        ("new .vlo: read everything (load_occupancy)", f"{t_new_r_all * 1e3:.2f} ms",
         f"incl. derived occupancy and dense int32 instances; lossless vs the npz: {'yes' if lossless else 'NO'}"),
        *rows_b2,
    ]
    report("Frame files (old npz vs new .vlo, one aerial frame)", rows,
           note=f"Medians of {r} repeats, one thread; python-zstandard level 1 for .vlo.", write=not args.no_write)


if __name__ == "__main__":
    main()
