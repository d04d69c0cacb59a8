"""Instance ids in samples (``load_instances``): read from the occupancy files, zeros with a one-time
warning for files written before they existed, moved with the grids by the augmentations, batched."""

import copy
import logging

import numpy as np
import pytest
import torch

from vlwm.data.augment import RandomFlip, RandomRotate
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.labels import FREE

ALL_TRAIN = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
CAR = 4


@pytest.fixture
def dataset(tmp_path, synth):
    synth.write(tmp_path, "drone_car", 12, car=True, instances=True)
    return GazeboOccWorldDataset(tmp_path, synth.config(load_instances=True, **ALL_TRAIN))


def test_samples_carry_the_files_instances(dataset, synth):
    s = dataset[1]
    assert {"history_instances", "future_instances", "instances_valid"} <= set(s) == dataset.sample_keys
    frames = s["frames"]
    inst = np.concatenate([s["history_instances"], s["future_instances"]])
    assert inst.dtype == np.int32 and inst.shape == (len(frames), *synth.grid.shape)
    for t, f in enumerate(frames):
        np.testing.assert_array_equal(inst[t], synth.frame_instances(int(f)))
    assert s["instances_valid"].all()
    occ = np.concatenate([s["history_occupancy"], s["future_occupancy"]])
    np.testing.assert_array_equal(inst > 0, occ == CAR)
    batch = collate_fn([dataset[0], dataset[1]])
    assert batch["future_instances"].dtype == torch.int32
    assert tuple(batch["future_instances"].shape) == (2, 6, *synth.grid.shape)
    assert batch["instances_valid"].dtype == torch.bool and batch["instances_valid"].shape == (2, 10)
    off = GazeboOccWorldDataset(dataset.data_root, synth.config(**ALL_TRAIN))[1]          # opt-in
    assert "history_instances" not in off and "instances_valid" not in off


def test_files_without_instances_give_zeros_and_one_warning(tmp_path, synth, caplog):
    synth.write(tmp_path, "drone_old", 12, car=True)                    # written before instance ids existed
    ds = GazeboOccWorldDataset(tmp_path, synth.config(load_instances=True, **ALL_TRAIN))
    with caplog.at_level(logging.WARNING, logger="vlwm.data"):
        samples = [ds[0], ds[1]]
    for s in samples:
        assert s["history_instances"].dtype == np.int32 and not s["history_instances"].any()
        assert not s["future_instances"].any() and not s["instances_valid"].any()
    warned = [r.message for r in caplog.records if "instances" in r.message]
    assert len(warned) == 1 and "drone_old" in warned[0]


def test_flip_and_rotate_move_instances_with_the_occupancy(dataset, synth):
    sample = dataset[1]
    flipped = RandomFlip(1.0, synth.grid)(copy.deepcopy(sample), np.random.default_rng(0))
    for part in ("history", "future"):
        np.testing.assert_array_equal(flipped[f"{part}_instances"], sample[f"{part}_instances"][:, :, ::-1, :])
        np.testing.assert_array_equal(flipped[f"{part}_instances"] > 0, flipped[f"{part}_occupancy"] == CAR)
    rot = RandomRotate([30, 30], synth.grid)
    turned = rot(copy.deepcopy(sample), np.random.default_rng(0))
    i, j, inside = rot.index_map(np.deg2rad(30))
    for part in ("history", "future"):
        inst, occ = turned[f"{part}_instances"], turned[f"{part}_occupancy"]
        np.testing.assert_array_equal(inst, sample[f"{part}_instances"][:, i, j, :] * inside[None, :, :, None])
        np.testing.assert_array_equal(inst > 0, occ == CAR)            # nearest neighbour, like the occupancy
        assert np.all(inst[:, ~inside] == 0) and np.all(occ[:, ~inside] == FREE)
        assert set(np.unique(inst)) <= {0, synth.car_instance, synth.marker_instance}
    assert (turned["future_instances"] == synth.car_instance).sum() > 0
    # through the dataset's own transform: the same consistency
    ds = GazeboOccWorldDataset(dataset.data_root, synth.config(load_instances=True, transform={
        "RandomFlip": {"prob": 0.5}, "RandomRotate": {"angle": [-40, 40]}}, **ALL_TRAIN))
    torch.manual_seed(0)
    for k in range(3):
        s = ds[k]
        for part in ("history", "future"):
            np.testing.assert_array_equal(s[f"{part}_instances"] > 0, s[f"{part}_occupancy"] == CAR)
