"""`vlwm data check` / `vlwm data export-occworld` through add_data_parser, and the statistics they print."""

import argparse
import json

import numpy as np

from vlwm.data.check import GROUND_LABEL_NAMES, check_dataset, format_check
from vlwm.data.cli import add_data_parser
from vlwm.labels import FREE, OCC3D_CLASS_NAMES


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser(prog="vlwm")
    sub = parser.add_subparsers(dest="verb")
    add_data_parser(sub)
    args = parser.parse_args(argv)
    rc = args.func(args)
    return rc, capsys.readouterr().out


def make_dataset(root, synth):
    for i in range(3):
        synth.write(root, f"drone_{i}", 12)
    bad = synth.write(root, "drone_bad", 12)
    (bad / "occupancy" / "000006_occupancy.npz").unlink()
    synth.write(root, "drone_raw", 12, occupancy=False)
    other = synth.write(root, "rover_coarse", 12, agent="rover")
    doc = json.loads((other / "occupancy" / "grid.json").read_text())
    doc.update(point_cloud_range=[-4, -4, -1, 4, 4, 2.2], voxel_size=[0.8, 0.8, 0.4], shape=[10, 10, 8])
    (other / "occupancy" / "grid.json").write_text(json.dumps(doc))


def test_check_table_problems_and_statistics(tmp_path, synth):
    make_dataset(tmp_path, synth)
    result = check_dataset(tmp_path, synth.config(history_frames=2, future_frames=2))
    rows = {c.name: c for c in result.sequences}
    assert rows["rover_coarse"].error and "differs from the configured grid" in rows["rover_coarse"].error
    assert [i.frame for i in rows["drone_bad"].record.issues] == [6]
    assert int(rows["drone_raw"].record.usable.sum()) == 0
    per_split = result.windows_per_split
    assert sum(per_split.values()) == 3 * 9 + 9 - 4 + 0     # 12 frames -> 9 windows of 4; frame 6 costs 4
    # statistics over the usable frames equal the synthetic grids' own counts
    expected = np.zeros(len(OCC3D_CLASS_NAMES), np.int64)
    for row in result.sequences:
        if row.record is not None:
            for pos in np.flatnonzero(row.record.usable):
                expected += np.bincount(synth.frame_grid(row.record.first_frame + pos).ravel(), minlength=18)
    np.testing.assert_array_equal(result.class_histogram, expected)
    total = expected.sum()
    ground = sum(expected[OCC3D_CLASS_NAMES.index(n)] for n in GROUND_LABEL_NAMES)
    assert result.occupied_fraction() == (total - expected[FREE]) / total
    assert result.occupied_fraction(without_ground=True) == (total - expected[FREE] - ground) / total
    text = format_check(result)
    for needle in ("drone_bad", "missing occupancy file", "no occupancy/ frames", "rover_coarse",
                   "class histogram", "occupied w/o ground", "driveable_surface"):
        assert needle in text


def test_cli_check_json_and_exit_status(tmp_path, synth, capsys):
    for i in range(3):
        synth.write(tmp_path / "clean", f"drone_{i}", 12)
    rc, out = run_cli(["data", "check", str(tmp_path / "clean"), "--history-frames", "2", "--future-frames", "2",
                       "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["windows_per_split"] == {"train": 9, "val": 9, "test": 9}
    assert doc["config"]["point_cloud_range"] == list(synth.grid.point_cloud_range)   # --grid auto: the data's
    make_dataset(tmp_path / "messy", synth)
    rc, out = run_cli(["data", "check", str(tmp_path / "messy"), "--stats-frames", "5"], capsys)
    assert rc == 1 and "drone_bad" in out and "5 read for the statistics" in out


def test_cli_export(tmp_path, synth, capsys):
    synth.write(tmp_path / "tokyo", "drone_a", 20)
    rc, out = run_cli(["data", "export-occworld", str(tmp_path / "tokyo"), "--out", str(tmp_path / "ow"),
                       "--train-ratio", "1", "--val-ratio", "0", "--test-ratio", "0"], capsys)
    assert rc == 0 and "train: 1 scene(s), 20 keyframes" in out
    assert (tmp_path / "ow" / "nuscenes_infos_train_temporal_v3_scene.pkl").is_file()
