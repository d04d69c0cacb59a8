"""Dataset benchmark: GazeboOccWorldDataset samples per second and bytes per sample on ``aerial`` grids.

Data: two drone survey sequences of 30 frames each, recorded by the built-in simulator over a
procedural city (no cameras) and given ``aerial`` ground truth (200 x 200 x 121 at 0.4 x 0.4 x
1.25 m, scene source) by the real ground-truth stage, in a temporary folder — so the frame files
compress like real ones.  The same frames are also written in the old format (``np.savez_compressed``
of all six arrays, as the old writer did) in a second folder.  Samples: 4 history + 6 future frames
(the guide's defaults), 42 windows.

Measured through ``torch.utils.data.DataLoader(collate_fn=collate_fn)`` with 0 and 2 workers
(persistent; one warm-up epoch, then the median of ``--epochs`` epochs), shuffled (training) and
in order, side by side in one run:

* **old**: npz files, one sample at a time (``ds[i]``), stacked by ``default_collate`` into fresh
  shared memory — the loader before issue 16;
* **new**: ``.vlo`` files, the DataLoader's batch path (``__getitems__``: frames decoded straight
  into a worker's reused shared-memory batch, no collate copy; :mod:`vlwm.data.shared_batch`);
  also with masks and instances, and with a consumer that copies each batch into a reused
  buffer, as a host-to-device copy reads it.

Goals: >= 100 samples/s with 2 workers shuffled, >= 1 GB/s of grids, <= 60 MB per sample.
Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from common import report, timed
from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.data.layout import read_occupancy
from vlwm.gt.frame_gt import GTConfig, load_occupancy
from vlwm.gt.grid import AERIAL
from vlwm.gt.recording import generate as generate_gt
from vlwm.sim.missions import survey_mission
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.procedural import CityConfig, generate_city

FRAMES_PER_SEQUENCE = 30
MB = 1e6


def make_data(root: Path) -> list[Path]:
    """Two recorded, ground-truthed drone sequences under ``root`` (returns their folders)."""
    city = generate_city(CityConfig(size=400.0, seed=1))
    traffic_cfg = TrafficConfig(seed=0, cars=20, buses=2, trucks=2, pedestrians=20, drones=2)
    config = SimConfig(duration_s=(FRAMES_PER_SEQUENCE - 1) / 2.0, record_cameras=False, traffic=traffic_cfg)
    city.save(root / "scenes" / "city.npz")  # the recordings refer to it as ../scenes/city.npz
    seqs = []
    for i, centre in enumerate(((0.0, 0.0), (60.0, -40.0))):
        mission = survey_mission(city, centre, size=100.0, spacing=15.0, altitude=12.0)
        seqs.append(record_mission(city, mission, root, config, name=f"drone_bench_{i}", progress=False,
                                   scene_ref="../scenes/city.npz"))
    for rep in generate_gt([str(s) for s in seqs], grid="aerial", config=GTConfig(camera_mask=False), workers=2):
        if rep.error or rep.failed:
            raise RuntimeError(rep.summary())
    return seqs


def npz_copy(root: Path, dest: Path) -> Path:
    """The tree under ``root`` with every ``.vlo`` frame rewritten as the old writer's npz (all six arrays)."""
    shutil.copytree(root, dest)
    for vlo in sorted(dest.rglob("*_occupancy.vlo")):
        np.savez_compressed(vlo.with_name(vlo.name.replace(".vlo", ".npz")), **load_occupancy(vlo))
        vlo.unlink()
    return dest


class OneAtATime(Dataset):
    """The old loader path: samples read one by one (no ``__getitems__``)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def old_collate(samples: list[dict]) -> dict:
    """The old ``collate_fn``: every array stacked by ``default_collate`` (into new shared memory in a worker)."""
    return {k: [s[k] for s in samples] if isinstance(samples[0][k], (str, list, tuple))
            else default_collate([s[k] for s in samples]) for k in samples[0]}


def sample_bytes(sample: dict) -> int:
    return sum(v.nbytes for v in sample.values() if isinstance(v, np.ndarray))


def loader_rate(ds, workers: int, shuffle: bool, epochs: int, collate=collate_fn, batch_size: int = 1,
                consume: bool = False) -> tuple[float, float]:
    """(median samples/s over ``epochs`` timed epochs, first-epoch samples/s incl. worker start)."""
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers, collate_fn=collate,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    sink = {}
    rates = []
    for _ in range(epochs + 1):
        t0, n = time.perf_counter(), 0
        for batch in loader:
            n += batch["history_occupancy"].shape[0]
            if consume:                     # what a host-to-device copy does: read every grid byte once
                for k, v in batch.items():
                    if isinstance(v, torch.Tensor) and v.dim() >= 4:
                        if k not in sink or sink[k].shape != v.shape:
                            sink[k] = torch.empty_like(v)
                        sink[k].copy_(v)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates[1:]), rates[0]


def shared_memory_rate(repeats: int = 5) -> float:
    """GB/s of copying a fresh 48 MB uint8 tensor into new shared memory (the per-sample cost of a worker)."""
    src = torch.ones(10 * AERIAL.num_voxels, dtype=torch.uint8)
    t, _ = timed(lambda: src.clone().share_memory_(), repeats)
    return src.numel() / t / 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per loader setting (after a warm-up)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "new"
        root.mkdir()
        t0 = time.perf_counter()
        seqs = make_data(root)
        t_make = time.perf_counter() - t0
        old_root = npz_copy(root, Path(tmp) / "old")
        files = sorted(seqs[0].glob("occupancy/*_occupancy.vlo"))
        old_files = sorted((old_root / seqs[0].name).glob("occupancy/*_occupancy.npz"))
        kb = np.mean([f.stat().st_size for f in files]) / 1e3
        old_kb = np.mean([f.stat().st_size for f in old_files]) / 1e3
        sem, _, _ = read_occupancy(files[len(files) // 2], 17, masks=False)
        decode = {}
        for name, fs in (("old", old_files), ("new", files)):
            for masks in (False, True):
                decode[name, masks], _ = timed(lambda: [read_occupancy(f, 17, masks=masks) for f in fs[:10]], 3)

        base = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)   # every window in one split
        t_build, ds = timed(lambda: GazeboOccWorldDataset(root, DatasetConfig(**base)), 3)
        old_ds = GazeboOccWorldDataset(old_root, DatasetConfig(**base))
        masked = GazeboOccWorldDataset(root, DatasetConfig(load_masks=True, **base))
        full = GazeboOccWorldDataset(root, DatasetConfig(load_masks=True, load_instances=True, **base))
        sizes = {name: sample_bytes(d[0]) / MB for name, d in (("grids", ds), ("masks", masked), ("full", full))}
        rows = [
            ("test data: 2 sequences x 30 frames, simulated + aerial GT", f"{t_make:.0f} s",
             f"{kb:.0f} kB per .vlo frame file (old npz: {old_kb:.0f} kB); "
             f"{100 * np.mean(sem != 17):.1f} % of voxels occupied"),
            ("decode one frame, semantics: old npz / new .vlo", f"{decode['old', False] / 10 * 1e3:.2f} / "
             f"{decode['new', False] / 10 * 1e3:.2f} ms", f"with both masks {decode['old', True] / 10 * 1e3:.2f} / "
             f"{decode['new', True] / 10 * 1e3:.2f} ms"),
            ("dataset construction (validation of 60 frames)", f"{t_build * 1e3:.0f} ms",
             f"{len(ds)} windows of 10 frames"),
            ("bytes per sample: grids only (default) / + masks / + masks + instances",
             f"{sizes['grids']:.1f} / {sizes['masks']:.1f} / {sizes['full']:.1f} MB",
             "uint8 class ids, bool masks, int32 instances; goal <= 60 MB for the default"),
        ]
        settings = (
            ("old: npz, one sample at a time, default_collate", OneAtATime(old_ds), old_collate, 0, True, 1, False),
            ("old: npz, one sample at a time, default_collate", OneAtATime(old_ds), old_collate, 2, True, 1, False),
            ("new: .vlo, batch path, shuffled", ds, collate_fn, 0, True, 1, False),
            ("**new: .vlo, batch path, shuffled**", ds, collate_fn, 2, True, 1, False),
            ("new: .vlo, batch path, in order", ds, collate_fn, 2, False, 1, False),
            ("new: .vlo, batch path, shuffled, batch_size 4", ds, collate_fn, 2, True, 4, False),
            ("new: .vlo, shuffled, consumer copies every batch", ds, collate_fn, 2, True, 1, True),
            ("old: npz, shuffled, consumer copies every batch", OneAtATime(old_ds), old_collate, 2, True, 1, True),
            ("new: .vlo, shuffled, with masks", masked, collate_fn, 2, True, 1, False),
            ("new: .vlo, shuffled, with masks + instances", full, collate_fn, 2, True, 1, False),
            ("new loader on old npz files (shuffled)", old_ds, collate_fn, 2, True, 1, False),
        )
        for what, data, collate, workers, shuffle, bs, consume in settings:
            rate, first = loader_rate(data, workers, shuffle, args.epochs, collate, bs, consume)
            per = sizes["full"] if data is full else sizes["masks"] if data is masked else sizes["grids"]
            goal = ""
            if workers == 2 and shuffle and data is ds and not consume and bs == 1:
                goal = (f"; goal >= 100 samples/s and >= 1 GB/s: {'met' if rate >= 100 and rate * per / 1e3 >= 1 else 'missed'}")
            rows.append((f"DataLoader, {workers} workers: {what}", f"{rate:.1f} samples/s",
                         f"{rate * per / 1e3:.2f} GB/s of arrays ({per:.0f} MB/sample); first epoch {first:.1f}/s"
                         f"{goal}"))
        shm = shared_memory_rate()
        rows.append(("moving 48 MB into fresh shared memory (what the old worker did per sample)", f"{shm:.2f} GB/s",
                     "torch share_memory_ of a fresh uint8 tensor"))
    load = os.getloadavg()[0]
    report("Dataset (GazeboOccWorldDataset, aerial 10-frame samples)", rows,
           note=f"Medians of repeats; DataLoader batch_size=1, collate_fn, persistent workers, torch 1 thread; "
                f"load average {load:.1f} when it finished.", write=not args.no_write)


if __name__ == "__main__":
    main()
