"""The recording format's one owner: layout rules, the typed manifest, atomic writes."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from vlwm.gt.frame_gt import GTConfig
from vlwm.gt.grid import GridSpec
from vlwm.gt.recording import expand_inputs, generate
from vlwm.io.atomic import atomic_path, atomic_write, atomic_write_json
from vlwm.io.frames import Pose
from vlwm.io.manifest import KEYS, Manifest, ManifestError, load_manifest, read_manifest
from vlwm.io.recording import (LIDAR_COLUMNS, MANIFEST, OPTICAL_FRAME, find_sequences, frame_stem, image_path,
                               lidar_path, occupancy_path, pose_frames, pose_path)
from vlwm.io.sequence_writer import SequenceWriter


def _camera_T() -> list:
    t = np.eye(4)
    t[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]       # body x forward -> optical z
    t[:3, 3] = (0.1, 0.0, 0.2)
    return t.tolist()


def sim_like_manifest() -> dict:
    """The keys a simulated recording's producer passes to the writer, in the simulator's order."""
    return {
        "vehicle_id": "drone_0",
        "scene": {"source": "procedural", "file": "../scenes/city.npz",
                  "geo_origin": {"epsg": 6677, "origin": [1.5, -2.25, 0.0]}, "label_names": ["others", "building"],
                  "generator": {"generator_version": 3}},
        "seed": 7,
        "rates": {"frame_rate_hz": 2.0, "lidar_rate_hz": 10.0, "physics_dt": 0.05},
        "pose_convention": "body frame x forward",
        "lidar_columns": list(LIDAR_COLUMNS),
        "sensors": {"LIDAR": {"type": "lidar", "T_body_sensor": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0],
                                                                 [0.0, 0.0, 1.0, 0.1], [0.0, 0.0, 0.0, 1.0]],
                              "beams": 4, "columns_layout": list(LIDAR_COLUMNS)},
                    "CAM_FRONT": {"type": "camera", "T_body_sensor": _camera_T(),
                                  "K": [[10.0, 0.0, 7.5], [0.0, 10.0, 5.5], [0.0, 0.0, 1.0]], "width": 16,
                                  "height": 12, "max_range": 80.0, "optical_frame": OPTICAL_FRAME}},
        "cameras": ["CAM_FRONT"],
        "mission": {"name": "m", "vehicle": "drone", "home": [0.0, 0.0, 0.0], "waypoints": []},
        "traffic": None,
        "traffic_first_instance": None,
        "sim": {"frame_rate_hz": 2.0, "image_size": [16, 12]},
    }


def write_recording(root, manifest: dict | None = None, frames: int = 2, name: str = "drone_a"):
    writer = SequenceWriter.create(root, "drone", sim_like_manifest() if manifest is None else manifest, name=name)
    for k in range(frames):
        pts = np.zeros((3, len(LIDAR_COLUMNS)), np.float32)
        pts[:, 0] = (1.0, 2.0, 3.0)
        writer.write_frame(Pose.from_xyz_rpy(0.5 * k, (k, 0.0, 10.0)), lidar=pts, ground_z=0.0)
    writer.close()
    return writer.path


# ------------------------------------------------------------------------------ layout


def test_frame_stem_names_six_digits_from_one_and_refuses_the_rest():
    assert frame_stem(1) == "000001" and frame_stem(999_999) == "999999" and frame_stem(np.int64(42)) == "000042"
    for bad in (0, -1, 1_000_000, 1.5, True, "3"):
        with pytest.raises(ValueError, match="outside 1..999999"):
            frame_stem(bad)
    # every path of the layout goes through it
    for path_of in (pose_path, lidar_path, occupancy_path):
        with pytest.raises(ValueError):
            path_of("seq", 0)
    with pytest.raises(ValueError):
        image_path("seq", 0, "CAM_FRONT")
    assert pose_path("seq", 3).as_posix() == "seq/poses/000003.json"
    assert lidar_path("seq", 3).as_posix() == "seq/lidar/000003_LIDAR.npy"


def test_find_sequences_one_rule_a_recording_is_a_folder_with_poses(tmp_path):
    (tmp_path / "drone_a" / "poses").mkdir(parents=True)
    (tmp_path / "rover_b" / "poses").mkdir(parents=True)
    (tmp_path / "manifest_only").mkdir()
    (tmp_path / "manifest_only" / MANIFEST).write_text("{}")
    (tmp_path / "occupancy_only" / "occupancy").mkdir(parents=True)
    (tmp_path / ".hidden" / "poses").mkdir(parents=True)
    expected = [tmp_path / "drone_a", tmp_path / "rover_b"]
    assert find_sequences(tmp_path) == expected
    assert find_sequences(tmp_path / "drone_a") == [tmp_path / "drone_a"]      # a recording itself
    assert expand_inputs([str(tmp_path)]) == expected                      # the ground-truth stage agrees
    assert expand_inputs([str(tmp_path / "*")]) == expected                # globs over non-recordings too
    with pytest.raises(FileNotFoundError, match=r"manifest_only: no recordings in it .*poses/"):
        find_sequences(tmp_path / "manifest_only")
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        find_sequences(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no recorded sequences"):
        expand_inputs([str(tmp_path / "occupancy_only")])


def test_frame_zero_files_are_an_error_naming_the_folder(tmp_path):
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "000000.json").write_text("{}")
    with pytest.raises(ValueError, match="poses: a file of frame 000000"):
        pose_frames(tmp_path)


# ------------------------------------------------------------------------------ manifest


def test_typed_manifest_round_trip_keeps_keys_order_and_values(tmp_path):
    seq = write_recording(tmp_path)
    text = (seq / MANIFEST).read_text()
    m = load_manifest(seq)
    assert m.agent_type == "drone" and m.status == "complete" and m.num_frames == 2
    assert [(f.index, f.timestamp) for f in m.frames] == [(1, 0.0), (2, 0.5)]
    assert m.rates.frame_rate_hz == 2.0 and m.scene.file == "../scenes/city.npz" and m.seed == 7
    np.testing.assert_array_equal(m.lidar_mount()[:3, 3], (0.0, 0.0, 0.1))
    cam = m.sensor("CAM_FRONT")
    assert cam.K.shape == (3, 3) and (cam.width, cam.height) == (16, 12) and cam.details["max_range"] == 80.0
    assert list(json.loads(text)) == [k for k in KEYS if k in json.loads(text)]
    assert json.dumps(m.to_json(), indent=2) == text                          # same keys, order and values
    m.write(seq)
    assert (seq / MANIFEST).read_text() == text


def _write_doc(seq, doc) -> None:
    seq.mkdir(exist_ok=True)
    (seq / MANIFEST).write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.pop("status"), "status is missing"),
    (lambda d: d.pop("frames"), "frames is missing"),
    (lambda d: d["rates"].update(frame_rate_hz="fast"), "rates.frame_rate_hz must be a finite number"),
    (lambda d: d["rates"].update(frame_rate_hz=-2.0), "rates.frame_rate_hz must be positive"),
    (lambda d: d.update(agent_type="boat"), "agent_type must be one of"),
    (lambda d: d.update(seed=1.5), "seed must be an integer"),
    (lambda d: d.update(colour="red"), "colour is not a manifest key"),
    (lambda d: d["frames"][1].pop("timestamp"), r"frames\[1\].timestamp is missing"),
    (lambda d: d["sensors"]["LIDAR"].update(T_body_sensor=np.eye(3).tolist()),
     "sensors.LIDAR.T_body_sensor must be a 4x4 list"),
    (lambda d: d["sensors"]["LIDAR"].pop("T_body_sensor"), "sensors.LIDAR.T_body_sensor is missing"),
    (lambda d: d["sensors"]["CAM_FRONT"].pop("K"), "sensors.CAM_FRONT.K is missing"),
    (lambda d: d["scene"].pop("source"), "scene.source is missing"),
])
def test_a_missing_or_malformed_key_is_an_error_naming_file_and_key(tmp_path, edit, key):
    doc = json.loads((write_recording(tmp_path) / MANIFEST).read_text())
    edit(doc)
    seq = tmp_path / "edited"
    _write_doc(seq, doc)
    with pytest.raises(ManifestError, match=key) as info:
        read_manifest(seq)
    assert str(info.value).startswith(str(seq / MANIFEST))


def test_absent_and_damaged_manifests(tmp_path):
    assert read_manifest(tmp_path) is None                                     # data from other tools
    with pytest.raises(ManifestError, match=f"{MANIFEST}: no such file"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text('{"layout_version": 1,')
    with pytest.raises(ManifestError, match="damaged manifest"):
        read_manifest(tmp_path)


def test_a_malformed_manifest_is_refused_before_anything_is_written(tmp_path):
    bad = {**sim_like_manifest(), "rates": {"frame_rate_hz": None, "lidar_rate_hz": "10 Hz"}}
    with pytest.raises(ManifestError, match="rates.lidar_rate_hz"):
        SequenceWriter.create(tmp_path, "drone", bad, name="drone_bad")
    assert not (tmp_path / "drone_bad").exists()


def test_a_missing_lidar_extrinsic_is_an_error_never_the_identity(tmp_path):
    doc = sim_like_manifest()
    del doc["sensors"]["LIDAR"]
    seq = write_recording(tmp_path, doc)
    m = load_manifest(seq)
    with pytest.raises(ManifestError, match=r"sensors\.LIDAR is missing") as info:
        m.lidar_mount()
    assert str(seq / MANIFEST) in str(info.value)
    spec = GridSpec((-4.0, -4.0, -2.0, 4.0, 4.0, 2.0), (1.0, 1.0, 1.0))
    [report] = generate([str(seq)], grid="config", config=GTConfig(grid=spec, source="lidar"))
    assert report.error is not None and "sensors.LIDAR is missing" in report.error
    assert not list((seq / "occupancy").glob("*.npz"))


def test_resume_keeps_the_typed_manifest(tmp_path):
    seq = write_recording(tmp_path, frames=3)
    writer = SequenceWriter.open(seq)
    assert writer.num_frames == 3 and writer.manifest.status == "recording"
    assert writer.manifest == Manifest.from_json(json.loads((seq / MANIFEST).read_text()), seq / MANIFEST)


# ------------------------------------------------------------------------------ atomic writes


class Boom(RuntimeError):
    pass


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "frame.bin"

    def half_then_fail(fh):
        fh.write(b"half a frame")
        raise Boom("disk full")

    with pytest.raises(Boom):
        atomic_write(target, half_then_fail)
    assert _leftovers(tmp_path) == []                                          # no target, no temporary
    atomic_write(target, lambda fh: fh.write(b"old"))
    with pytest.raises(Boom):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == ["frame.bin"]
    with pytest.raises(TypeError):                                             # not JSON: nothing written
        atomic_write_json(target, {"x": object()})
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == ["frame.bin"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_atomic_path_for_writers_that_open_the_file_themselves(tmp_path):
    target = tmp_path / "video.mp4"
    with atomic_path(target, suffix=".tmp.mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".video.mp4.") and tmp.suffix == ".mp4"
        tmp.write_bytes(b"frames")
        assert not target.exists()
    assert target.read_bytes() == b"frames" and _leftovers(tmp_path) == ["video.mp4"]
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise Boom()
    assert target.read_bytes() == b"frames" and _leftovers(tmp_path) == ["video.mp4"]
