"""Dataset benchmark: GazeboOccWorldDataset samples per second and bytes per sample on ``aerial`` grids.

Data: two drone survey sequences of 30 frames each, recorded by the built-in simulator over a
procedural city (no cameras) and given ``aerial`` ground truth (200 x 200 x 121 at 0.4 x 0.4 x
1.25 m, scene source) by the real ground-truth stage, in a temporary folder — so the npz files
compress like real ones.  Samples: 4 history + 6 future frames (the guide's defaults), 42 windows.

Measured through ``torch.utils.data.DataLoader(batch_size=1, collate_fn=collate_fn)`` with 0 and 2
workers (persistent; one warm-up epoch, then the median of ``--epochs`` epochs), in order (the
evaluation traversal, where consecutive windows share frames and the per-process frame cache
helps) and shuffled (training, where it mostly cannot).  Goals: >= 100 samples/s with 2 workers,
<= 60 MB per sample.  Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from common import report, timed
from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.data.layout import read_occupancy
from vlwm.gt.frame_gt import GTConfig
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


def sample_bytes(sample: dict) -> int:
    return sum(v.nbytes for v in sample.values() if isinstance(v, np.ndarray))


def loader_rate(ds, workers: int, shuffle: bool, epochs: int) -> tuple[float, float]:
    """(median samples/s over ``epochs`` timed epochs, first-epoch samples/s incl. worker start)."""
    loader = DataLoader(ds, batch_size=1, shuffle=shuffle, num_workers=workers, collate_fn=collate_fn,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    rates = []
    for _ in range(epochs + 1):
        t0, n = time.perf_counter(), 0
        for batch in loader:
            n += batch["history_occupancy"].shape[0]
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
        root = Path(tmp)
        t0 = time.perf_counter()
        seqs = make_data(root)
        t_make = time.perf_counter() - t0
        files = sorted(seqs[0].glob("occupancy/*_occupancy.npz"))
        file_kb = np.mean([f.stat().st_size for f in files]) / 1e3
        sem, _, _ = read_occupancy(files[len(files) // 2], 17, masks=False)
        t_decode, _ = timed(lambda: [read_occupancy(f, 17, masks=False) for f in files[:10]], 3)
        t_decode_masks, _ = timed(lambda: [read_occupancy(f, 17, masks=True) for f in files[:10]], 3)

        base = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)   # every window in one split
        t_build, ds = timed(lambda: GazeboOccWorldDataset(root, DatasetConfig(**base)), 3)
        s = ds[0]
        masked = GazeboOccWorldDataset(root, DatasetConfig(load_masks=True, **base))[0]
        nocache = GazeboOccWorldDataset(root, DatasetConfig(frame_cache=0, **base))
        rows = [
            ("test data: 2 sequences x 30 frames, simulated + aerial GT", f"{t_make:.0f} s",
             f"{file_kb:.0f} kB per frame file; {100 * np.mean(sem != 17):.1f} % of voxels occupied"),
            ("decode one frame (np.load semantics)", f"{t_decode / 10 * 1e3:.2f} ms",
             f"with both masks {t_decode_masks / 10 * 1e3:.2f} ms"),
            ("dataset construction (validation of 60 frames)", f"{t_build * 1e3:.0f} ms",
             f"{len(ds)} windows of 10 frames"),
            ("bytes per sample (default: uint8 grids, no masks)", f"{sample_bytes(s) / MB:.1f} MB",
             f"shape {tuple(s['history_occupancy'].shape)} + {tuple(s['future_occupancy'].shape)}; goal <= 60 MB "
             f"(float32 grids: {10 * AERIAL.num_voxels * 4 / MB:.0f} MB)"),
            ("bytes per sample with load_masks=True", f"{sample_bytes(masked) / MB:.1f} MB", "two bool masks per frame"),
        ]
        settings = ((0, False, ds, "in order, frame cache on"), (0, False, nocache, "in order, cache off"),
                    (0, True, nocache, "shuffled, cache off"), (2, False, ds, "in order, frame cache on"),
                    (2, True, nocache, "shuffled, cache off"))
        for workers, shuffle, data, what in settings:
            rate, first = loader_rate(data, workers, shuffle, args.epochs)
            goal = "; goal >= 100 samples/s" if workers == 2 else ""
            rows.append((f"DataLoader, {workers} workers, {what}", f"{rate:.1f} samples/s",
                         f"{rate * 10 * AERIAL.num_voxels / 1e9:.2f} GB/s of grids; first epoch {first:.1f}/s{goal}"))
        shm = shared_memory_rate()
        rows.append(("moving 48 MB into shared memory (what a worker does per sample)", f"{shm:.2f} GB/s",
                     "torch share_memory_ of a fresh uint8 tensor"))
    load = os.getloadavg()[0]
    report("Dataset (GazeboOccWorldDataset, aerial 10-frame samples)", rows,
           note=f"Medians of repeats; DataLoader batch_size=1, collate_fn, persistent workers, torch 1 thread; "
                f"load average {load:.1f} when it finished.", write=not args.no_write)


if __name__ == "__main__":
    main()
