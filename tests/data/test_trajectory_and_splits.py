"""Ego motion and commands on analytic paths; splits by sequence, deterministic, exact, disjoint."""

import numpy as np
import pytest

from vlwm.data.dataset import GazeboOccWorldDataset
from vlwm.data.splits import TIME_SPLIT, SplitError, assign_splits, split_counts, time_block
from vlwm.data.trajectory import command_from_offset, future_offsets, horizon_frames, rel_motion
from vlwm.io.frames import Pose

RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


def poses_of(synth, n, **kw):
    t, pos, yaw = synth.trajectory(n, kw.pop("rate", 2.0), kw.pop("speed", 2.0), kw.pop("yaw0", 0.0),
                                   kw.pop("turn_rate", 0.0), kw.pop("climb", 0.0), 0.0)
    return np.array([Pose.from_xyz_rpy(t[i], pos[i], (0, 0, yaw[i])).pose_13d() for i in range(n)])


@pytest.mark.parametrize("yaw0", [0.0, 2.0, -2.5])
def test_straight_motion_is_forward_whatever_the_heading(synth, yaw0):
    p = poses_of(synth, 8, yaw0=yaw0, speed=3.0, climb=0.4)
    motion, has_next = rel_motion(p, np.ones(8, bool))
    np.testing.assert_allclose(motion[:-1], [[0.0, 1.5, 0.2, 0.0]] * 7, atol=1e-9)
    assert has_next.tolist() == [True] * 7 + [False] and np.all(motion[-1] == 0)
    cmd = command_from_offset(future_offsets(p, np.ones(8, bool), 6))
    assert np.all(cmd[:-1] == [0, 0, 1])


@pytest.mark.parametrize("turn_rate, expected", [(0.3, [0, 1, 0]), (-0.3, [1, 0, 0]), (0.05, [0, 0, 1])])
def test_command_follows_the_lateral_offset_three_seconds_ahead(synth, turn_rate, expected):
    p = poses_of(synth, 12, speed=4.0, turn_rate=turn_rate)
    valid = np.ones(12, bool)
    offset = future_offsets(p, valid, horizon_frames(3.0, 2.0))
    # analytic: after 3 s on an arc of radius v / w the lateral (right) offset is -(v / w)(1 - cos(w t))
    r, w = 4.0 / turn_rate, turn_rate
    np.testing.assert_allclose(offset[0], [-r * (1 - np.cos(3 * w)), r * np.sin(3 * w)], atol=1e-9)
    assert command_from_offset(offset[0]).tolist() == expected
    motion, _ = rel_motion(p, valid)
    np.testing.assert_allclose(motion[:-1, 3], turn_rate * 0.5, atol=1e-12)


def test_future_offset_stops_at_the_last_valid_frame(synth):
    p = poses_of(synth, 10, speed=2.0)
    valid = np.ones(10, bool)
    valid[5] = False
    off = future_offsets(p, valid, 6)
    np.testing.assert_allclose(off[:, 1], [4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 3.0, 2.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(off[:, 0], 0.0, atol=1e-9)


def test_split_counts_exact_and_nonempty():
    assert split_counts(10, RATIOS) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(3, RATIOS) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(7, RATIOS) == {"train": 5, "val": 1, "test": 1}
    assert split_counts(4, {"train": 0.5, "val": 0.5, "test": 0.0}) == {"train": 2, "val": 2, "test": 0}


def test_assign_splits_deterministic_disjoint_and_stratified():
    seqs = {f"drone_{i:02d}": "drone" for i in range(10)} | {f"rover_{i:02d}": "rover" for i in range(5)}
    a = assign_splits(seqs, RATIOS, seed=3)
    assert a == assign_splits(dict(reversed(list(seqs.items()))), RATIOS, seed=3)   # order-independent
    assert a != assign_splits(seqs, RATIOS, seed=4)
    for agent, n, counts in (("drone", 10, (8, 1, 1)), ("rover", 5, (3, 1, 1))):
        got = [sum(1 for k, v in a.items() if seqs[k] == agent and v == s) for s in ("train", "val", "test")]
        assert tuple(got) == counts


def test_tiny_dataset_time_blocks_or_error():
    seqs = {"drone_a": "drone", "rover_a": "rover"}
    assert assign_splits(seqs, RATIOS, 0) == {"drone_a": TIME_SPLIT, "rover_a": TIME_SPLIT}
    with pytest.raises(SplitError, match="1 drone sequence.*cannot fill 3 splits"):
        assign_splits(seqs, RATIOS, 0, fallback="error")
    assert assign_splits(seqs, {"train": 1.0, "val": 0.0, "test": 0.0}, 0, fallback="error") == \
        {"drone_a": "train", "rover_a": "train"}
    assert [time_block(40, RATIOS, s) for s in ("train", "val", "test")] == [(0, 32), (32, 36), (36, 40)]


def test_no_frame_of_val_or_test_sequences_in_train(tmp_path, synth):
    for i in range(6):
        synth.write(tmp_path, f"drone_{i}", 12)
    sets = {}
    for split in ("train", "val", "test"):
        ds = GazeboOccWorldDataset(tmp_path, synth.config(split=split, history_frames=2, future_frames=2))
        sets[split] = {(ds[i]["session"], int(f)) for i in range(len(ds)) for f in ds[i]["frames"]}
        assert len(ds) > 0
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]


def test_time_blocks_share_no_frame(tmp_path, synth):
    synth.write(tmp_path, "drone_only", 60)
    frames = {}
    for split in ("train", "val", "test"):
        ds = GazeboOccWorldDataset(tmp_path, synth.config(split=split, history_frames=2, future_frames=2))
        frames[split] = {int(f) for i in range(len(ds)) for f in ds[i]["frames"]}
    assert max(frames["train"]) <= 48 < min(frames["val"]) and max(frames["val"]) <= 54 < min(frames["test"])
