"""Bad recordings: every problem reported once with its frame and file, its windows skipped, no crash."""

import json
import logging

import numpy as np
import pytest

from vlwm.data.dataset import GazeboOccWorldDataset
from vlwm.data.validation import GridMismatchError, validate_sequence

ALL_TRAIN = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)


def reasons(rec):
    return {(i.frame, i.reason.split(" (")[0].split(":")[0]) for i in rec.issues}


def test_clean_sequence_has_no_issues(tmp_path, synth):
    seq = synth.write(tmp_path, "drone_ok", 12)
    rec = validate_sequence(seq, synth.config())
    assert rec.issues == [] and rec.usable.all() and rec.frame_rate_hz == 2.0 and rec.rate_source == "sequence.json"


def test_missing_corrupt_truncated_and_wrong_shape_occupancy(tmp_path, synth, caplog):
    seq = synth.write(tmp_path, "drone_bad", 30)
    occ = seq / "occupancy"
    (occ / "000003_occupancy.npz").unlink()
    (occ / "000010_occupancy.npz").write_bytes(b"not a zip file at all")
    data = (occ / "000015_occupancy.npz").read_bytes()
    (occ / "000015_occupancy.npz").write_bytes(data[: len(data) // 2])
    np.savez_compressed(occ / "000020_occupancy.npz", semantics=np.zeros((5, 5, 5), np.uint8))
    np.savez_compressed(occ / "000025_occupancy.npz", something_else=np.zeros(3))
    with caplog.at_level(logging.WARNING, logger="vlwm.data"):
        ds = GazeboOccWorldDataset(tmp_path, synth.config(**ALL_TRAIN))
    rec = ds.records[0]
    bad = sorted(i.frame for i in rec.issues)
    assert bad == [3, 10, 15, 20, 25]
    assert all(str(seq / "occupancy") in i.file for i in rec.issues)
    assert not rec.usable[[2, 9, 14, 19, 24]].any() and rec.usable.sum() == 25
    # windows of 10 frames, start 1..21: only starts 26.. would avoid frame 25 -> none; all contain a bad frame
    assert len(ds) == 0 and ds.skipped_windows["drone_bad"] == 21
    assert sum("drone_bad" in r.message for r in caplog.records if "problem" in r.message) == 1   # once per sequence
    text = rec.summary()
    assert "frame 3" in text and "missing occupancy file" in text and "corrupt or truncated" in text
    with pytest.raises(IndexError, match="no windows"):
        ds[0]


def test_bad_poses_timestamps_and_gaps(tmp_path, synth):
    seq = synth.write(tmp_path, "drone_t", 40)
    poses = seq / "poses"
    d = json.loads((poses / "000005.json").read_text())
    d["position"]["x"] = float("nan")
    (poses / "000005.json").write_text(json.dumps(d))
    (poses / "000012.json").write_text("{ truncated")
    d = json.loads((poses / "000020.json").read_text())
    d["timestamp"] = 1.0                              # earlier than frame 19 (9.0 s)
    (poses / "000020.json").write_text(json.dumps(d))
    for f in range(30, 41):                           # a 5 s pause before frame 30
        d = json.loads((poses / f"{f:06d}.json").read_text())
        d["timestamp"] += 5.0
        (poses / f"{f:06d}.json").write_text(json.dumps(d))
    (poses / "000035.json").unlink()
    rec = validate_sequence(seq, synth.config(history_frames=2, future_frames=2))
    by_frame = {i.frame: i.reason for i in rec.issues}
    assert "non-finite" in by_frame[5] and "'x'" in by_frame[5]
    assert "not valid JSON" in by_frame[12]
    assert "does not increase" in by_frame[20]
    assert by_frame[30].startswith("gap: 5.500 s")
    assert by_frame[35] == "missing pose file"
    assert not rec.usable[[4, 11, 19, 34]].any() and rec.usable[29]          # a gap frame stays usable
    ds = GazeboOccWorldDataset(tmp_path, synth.config(history_frames=2, future_frames=2, **ALL_TRAIN))
    for i in range(len(ds)):
        f = ds[i]["frames"]
        assert not set(f) & {5, 12, 20, 35}
        assert not (f.min() < 30 <= f.max())           # no window spans the gap


def test_missing_cameras_only_matter_when_images_are_requested(tmp_path, synth):
    seq = synth.write(tmp_path, "drone_cam", 12, images=True)
    (seq / "images" / "000004_CAM_BACK_LEFT.jpg").unlink()
    without = validate_sequence(seq, synth.config())
    assert without.issues == []
    rec = validate_sequence(seq, synth.config(load_images=True))
    assert [(i.frame, i.reason) for i in rec.issues] == [(4, "missing cameras ['CAM_BACK_LEFT']")]
    assert not rec.usable[3]


def test_grid_mismatch_is_an_error_naming_the_sequence(tmp_path, synth):
    synth.write(tmp_path, "drone_grid", 12)
    with pytest.raises(GridMismatchError, match="drone_grid.*differs from the configured grid"):
        GazeboOccWorldDataset(tmp_path, synth.config(point_cloud_range=(-4, -4, -1, 4, 4, 2.6)))
    other = tmp_path / "other"
    synth.write(other, "drone_nogrid", 12, grid_json=False)
    with pytest.raises(GridMismatchError, match=r"drone_nogrid: its occupancy arrays are \(20, 20, 8\)"):
        GazeboOccWorldDataset(other, synth.config(point_cloud_range=(-4, -4, -1, 4, 4, 2.6)))


def test_sequence_without_ground_truth_is_reported_not_fatal(tmp_path, synth, caplog):
    synth.write(tmp_path, "drone_raw", 12, occupancy=False)
    synth.write(tmp_path, "drone_done", 12)
    with caplog.at_level(logging.WARNING, logger="vlwm.data"):
        ds = GazeboOccWorldDataset(tmp_path, synth.config(split_fallback="time", **ALL_TRAIN))
    raw = next(r for r in ds.records if r.name == "drone_raw")
    assert [str(i) for i in raw.issues] == [
        f"sequence: {tmp_path / 'drone_raw' / 'occupancy'}: no occupancy/ frames — run "
        "scripts/generate_occupancy_gt.py on it (the ground-truth stage)"]
    assert len(ds) == 3 and {ds[i]["session"] for i in range(len(ds))} == {"drone_done"}
    assert any("drone_raw" in r.message and "generate_occupancy_gt" in r.message for r in caplog.records)


def test_a_file_damaged_after_construction_never_ends_the_epoch(tmp_path, synth, caplog):
    seq = synth.write(tmp_path, "drone_late", 16)
    ds = GazeboOccWorldDataset(tmp_path, synth.config(frame_cache=0, **ALL_TRAIN))
    assert len(ds) == 7
    data = (seq / "occupancy" / "000015_occupancy.npz").read_bytes()
    (seq / "occupancy" / "000015_occupancy.npz").write_bytes(data[: len(data) // 2])   # cut short after the check
    with caplog.at_level(logging.WARNING, logger="vlwm.data"):
        starts = [int(ds[i]["frames"][0]) for i in range(len(ds))]
    assert starts == [1, 2, 3, 4, 5, 1, 1]              # windows 6 and 7 hold frame 15: the next good one instead
    warned = [r for r in caplog.records if "frame 15 unreadable" in r.message]
    assert len(warned) == 1 and "000015_occupancy.npz" in warned[0].message


def test_manifest_free_folder_without_agent_prefix(tmp_path, synth):
    seq = synth.write(tmp_path, "flight_x", 12, manifest=False)
    rec = validate_sequence(seq, synth.config())
    assert rec.agent_type is None and any("agent type unknown" in i.reason for i in rec.issues)
    assert rec.usable.all()   # the frames themselves are fine; 'both' still uses them


def test_time_block_split_warned_once_per_process(tmp_path, synth, caplog):
    synth.write(tmp_path, "drone_a", 20)
    synth.write(tmp_path, "rover_a", 20, agent="rover")
    with caplog.at_level(logging.WARNING, logger="vlwm.data"):
        for split in ("train", "val", "test", "train"):
            GazeboOccWorldDataset(tmp_path, synth.config(split=split))
    warned = [r.message for r in caplog.records if "split into contiguous time blocks" in r.message]
    assert len(warned) == 1 and "drone_a" in warned[0] and "rover_a" in warned[0]
