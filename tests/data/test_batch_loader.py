"""The batch loader: DataLoader batches (workers, reused shared memory) equal the samples the old path gave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from tests.helpers.recordings import TINY, write_sequence
from vlwm.data import shared_batch
from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.io import occupancy_file as of

BASE = dict(history_frames=2, future_frames=3, point_cloud_range=TINY.point_cloud_range, voxel_size=TINY.voxel_size,
            train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """The same two recordings with npz frame files (``old``) and with .vlo ones (``new``)."""
    old, new = tmp_path_factory.mktemp("old"), tmp_path_factory.mktemp("new")
    for root in (old, new):
        for name, agent in (("drone_a", "drone"), ("rover_b", "rover")):
            write_sequence(root, name, n=12, agent=agent, car=True, instances=True)
    for npz in sorted(new.rglob("*_occupancy.npz")):
        with np.load(npz) as z:
            a = dict(z)
        of.write_frame(npz.with_name(npz.name.replace(".npz", ".vlo")), a["semantics"], free=17,
                       T_world_grid=np.eye(4), mask_lidar=a["mask_lidar"], mask_camera=a["mask_camera"],
                       instances=a["instances"])
        npz.unlink()
    return old, new


def reference_batch(ds, indices):
    """What the loader gave before: each sample read alone, stacked by default_collate."""
    samples = [ds[i] for i in indices]
    return {k: [s[k] for s in samples] if isinstance(samples[0][k], (str, list)) else
            default_collate([s[k] for s in samples]) for k in samples[0]}


def assert_same(batch, ref):
    assert list(batch) == list(ref)
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            assert batch[k].dtype == v.dtype and batch[k].shape == v.shape and torch.equal(batch[k], v), k
        else:
            assert batch[k] == v, k


@pytest.mark.parametrize("extra", [{}, {"load_masks": True, "load_instances": True},
                                   {"transform": {"RandomFlip": {"prob": 0.5}}}])
@pytest.mark.parametrize("workers,batch_size", [(0, 1), (0, 3), (2, 2)])
def test_loader_batches_equal_the_old_path(roots, extra, workers, batch_size):
    old_root, new_root = roots
    new = GazeboOccWorldDataset(new_root, DatasetConfig(**BASE, **extra))
    old = GazeboOccWorldDataset(old_root, DatasetConfig(**BASE, **extra))
    assert len(new) == len(old) == 16
    order = np.random.default_rng(1).permutation(len(new)).tolist()
    if "transform" in extra:          # the flips follow torch's seed: compare the new loader with itself in order
        order = list(range(len(new)))
    loader = DataLoader(new, batch_size=batch_size, sampler=order, num_workers=workers, collate_fn=collate_fn)
    torch.manual_seed(0)
    batches = list(loader)            # every batch kept: none may be overwritten by a later one
    for n, batch in enumerate(batches):
        idx = order[n * batch_size:(n + 1) * batch_size]
        if "transform" in extra:
            assert all(batch[k].shape[0] == len(idx) for k in batch if isinstance(batch[k], torch.Tensor))
            assert batch["frames"].tolist() == [old.window(i)[1].tolist() for i in idx]
            continue
        assert_same(batch, reference_batch(old, idx))
        assert_same(batch, reference_batch(new, idx))


def test_held_batches_survive_a_pool_smaller_than_the_prefetch(roots, monkeypatch):
    """With one reusable slot per worker, batches the consumer keeps are never written over."""
    monkeypatch.setattr(shared_batch, "SLOTS_PER_WORKER", 1)
    _, new_root = roots
    ds = GazeboOccWorldDataset(new_root, DatasetConfig(**BASE, load_masks=True))
    loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_fn, multiprocessing_context="fork",
                        prefetch_factor=4)
    kept = list(loader)
    for i, batch in enumerate(kept):
        assert_same(batch, reference_batch(ds, [i]))
    # dropped batches free their slot: a long run with one slot per worker stays correct
    for epoch in range(2):
        for i, batch in enumerate(loader):
            assert torch.equal(batch["future_occupancy"][0], torch.from_numpy(ds[i]["future_occupancy"]))


def test_a_damaged_vlo_frame_costs_its_windows(roots, tmp_path, caplog):
    import shutil

    _, new_root = roots
    root = tmp_path / "data"
    shutil.copytree(new_root, root)
    path = root / "drone_a" / "occupancy" / "000005_occupancy.vlo"
    data = bytearray(path.read_bytes())
    start = 16 + int.from_bytes(data[8:12], "little")                        # the semantics chunk follows the header
    data[start + 12] ^= 0xFF                                                  # passes the header check
    path.write_bytes(bytes(data))
    ds = GazeboOccWorldDataset(root, DatasetConfig(**BASE))
    assert len(ds) == 16                                                      # construction reads headers only
    batches = list(DataLoader(ds, batch_size=1, collate_fn=collate_fn))
    drone = [b["frames"][0].tolist() for b in batches if b["session"] == ["drone_a"]]
    assert len(batches) == 16 and drone and all(5 not in f for f in drone)
    assert any("000005_occupancy.vlo" in r.message for r in caplog.records)
