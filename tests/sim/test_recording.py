"""Recording end to end: the layout, frame atomicity, kill-and-resume, determinism, lidar on surfaces."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vlwm.sim.dynamic_world import DynamicWorld
from vlwm.io.frames import Pose, transform_points
from vlwm.sim.missions import survey_mission
from vlwm.io.sequence_writer import SequenceWriter
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.sim.traffic import Traffic
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.procedural import CityConfig, generate_city

CAMS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
SMALL_TRAFFIC = TrafficConfig(seed=0, cars=6, buses=1, trucks=1, pedestrians=6, drones=1)


@pytest.fixture(scope="module")
def city():
    return generate_city(CityConfig(seed=2, size=220.0))


def tiny_config(**kw):
    base = dict(duration_s=2.0, image_size=(48, 27), traffic=SMALL_TRAFFIC)
    base.update(kw)
    return SimConfig(**base)


def mission(city):
    return survey_mission(city, (0.0, 0.0), size=40.0, spacing=20.0, altitude=30.0)


def frame_files(seq: Path, i: int) -> list[Path]:
    stem = f"{i:06d}"
    files = [seq / "poses" / f"{stem}.json", seq / "lidar" / f"{stem}_LIDAR.npy"]
    for c in CAMS:
        files += [seq / "images" / f"{stem}_{c}.jpg", seq / "images" / f"{stem}_{c}_depth.png",
                  seq / "images" / f"{stem}_{c}_sem.png"]
    return files


def test_layout_manifest_and_pose_files(tmp_path, city):
    seq = record_mission(city, mission(city), tmp_path, tiny_config(), progress=False)
    assert seq.name.startswith("drone_") and seq.parent == tmp_path
    manifest = json.loads((seq / "sequence.json").read_text())
    assert manifest["status"] == "complete" and manifest["agent_type"] == "drone"
    assert manifest["num_frames"] == 5  # t = 0, 0.5, ..., 2.0 at 2 Hz
    assert [f["timestamp"] for f in manifest["frames"]] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert manifest["lidar_columns"] == ["x", "y", "z", "intensity", "label", "instance", "ring", "t"]
    for name in ("LIDAR",) + CAMS:
        t = np.array(manifest["sensors"][name]["T_body_sensor"])
        assert t.shape == (4, 4) and np.allclose(t[3], [0, 0, 0, 1])
        np.testing.assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-6)
    assert np.array(manifest["sensors"]["CAM_FRONT"]["K"]).shape == (3, 3)
    assert manifest["scene"]["geo_origin"]["epsg"] == 6677
    for i in range(1, 6):
        for f in frame_files(seq, i):
            assert f.is_file(), f
        pose = json.loads((seq / "poses" / f"{i:06d}.json").read_text())
        assert set(pose) >= {"timestamp", "position", "orientation", "velocity", "pose_13d", "ground_z"}
        assert set(pose["orientation"]) == {"x", "y", "z", "w"} and set(pose["velocity"]) == {"linear", "angular"}
        p = pose["pose_13d"]
        assert len(p) == 13 and p[:3] == [pose["position"][k] for k in "xyz"]
        assert p[3:7] == [pose["orientation"][k] for k in "wxyz"]
        assert pose["ground_z"] == pytest.approx(float(city.ground_height(p[0], p[1])))
    assert not list(seq.rglob("*.tmp"))


def test_lidar_points_lie_on_the_world_at_their_frame_time(tmp_path, city):
    cfg = tiny_config(record_cameras=False)
    seq = record_mission(city, mission(city), tmp_path, cfg, progress=False)
    manifest = json.loads((seq / "sequence.json").read_text())
    t_bs = np.array(manifest["sensors"]["LIDAR"]["T_body_sensor"])
    world = DynamicWorld(city, Traffic(city, SMALL_TRAFFIC))
    for i in (1, 5):
        pose = Pose.from_json(json.loads((seq / "poses" / f"{i:06d}.json").read_text()))
        pts = np.load(seq / "lidar" / f"{i:06d}_LIDAR.npy")
        assert pts.dtype == np.float32 and pts.shape[1] == 8 and len(pts) > 1000
        t_ws = pose.matrix() @ t_bs
        xyz = transform_points(t_ws, pts[:, :3].astype(np.float64))
        origin = t_ws[:3, 3]
        d = xyz - origin
        rng = np.linalg.norm(d, axis=1)
        hits = world.cast(np.repeat(origin[None], len(d), 0), d / rng[:, None], 1e3, t=pose.timestamp)
        assert np.all(hits.hit)
        assert np.abs(hits.distance - rng).max() < 0.01  # on the surface, within 1 cm
        np.testing.assert_array_equal(hits.cls, pts[:, 4].astype(np.uint8))
        np.testing.assert_array_equal(hits.instance, pts[:, 5].astype(np.int32))


def test_same_seed_same_recording(tmp_path, city):
    cfg = tiny_config(record_cameras=False)
    a = record_mission(city, mission(city), tmp_path / "a", cfg, progress=False)
    b = record_mission(city, mission(city), tmp_path / "b", cfg, progress=False)
    for i in range(1, 6):
        assert (a / "poses" / f"{i:06d}.json").read_bytes() == (b / "poses" / f"{i:06d}.json").read_bytes()
        assert (a / "lidar" / f"{i:06d}_LIDAR.npy").read_bytes() == (b / "lidar" / f"{i:06d}_LIDAR.npy").read_bytes()


def test_killed_recording_is_consistent_and_resumes_identically(tmp_path, city):
    scene_path = city.save(tmp_path / "city.npz")
    out = tmp_path / "rec"
    args = [sys.executable, "-m", "vlwm.cli", "simulate", "--world", str(scene_path), "--size", "40",
            "--spacing", "20", "--duration", "30", "--image-size", "48x27", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seqs = list(out.glob("drone_*"))
            if seqs and len(list((seqs[0] / "poses").glob("*.json"))) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"simulate exited early with {proc.returncode}")
            time.sleep(0.05)
        else:
            pytest.fail("no frames recorded within 120 s")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    seq = list(out.glob("drone_*"))[0]
    done = len(list((seq / "poses").glob("[0-9]*.json")))
    manifest = json.loads((seq / "sequence.json").read_text())
    assert manifest["status"] == "recording"
    assert manifest["num_frames"] in (done - 1, done)  # the manifest trails the commit mark by at most one frame
    for i in range(1, done + 1):  # every committed frame is whole
        for f in frame_files(seq, i):
            assert f.is_file(), f
        np.load(seq / "lidar" / f"{i:06d}_LIDAR.npy")

    writer = SequenceWriter.open(seq)  # cleans what the kill left half-written
    assert writer.num_frames == done
    assert not [p for p in (seq / "images").iterdir() if int(p.name[:6]) > done]

    # Resume to the end, and compare with an uninterrupted run of the same mission.
    from vlwm.sim.jobs import build_mission
    from vlwm.sim.mission_spec import MissionSpec
    from vlwm.sim.traffic_config import TrafficConfig

    spec = MissionSpec(size=40, spacing=20)
    cfg = SimConfig(duration_s=30, image_size=(48, 27), traffic=TrafficConfig(seed=0))
    resumed = record_mission(city, build_mission(city, spec), out, cfg, resume=seq, progress=False,
                             scene_ref=json.loads((seq / "sequence.json").read_text())["scene"]["file"],
                             vehicle_id="drone_0")
    full = record_mission(city, build_mission(city, spec), tmp_path / "full", cfg, progress=False)
    n = json.loads((full / "sequence.json").read_text())["num_frames"]
    manifest = json.loads((resumed / "sequence.json").read_text())
    assert manifest["status"] == "complete" and manifest["num_frames"] == n == 61
    for i in (1, done, done + 1, n):
        assert (resumed / "poses" / f"{i:06d}.json").read_bytes() == (full / "poses" / f"{i:06d}.json").read_bytes()
        assert (resumed / "lidar" / f"{i:06d}_LIDAR.npy").read_bytes() == \
            (full / "lidar" / f"{i:06d}_LIDAR.npy").read_bytes()
    with pytest.raises(ValueError, match="already complete"):
        record_mission(city, build_mission(city, spec), out, cfg, resume=seq, progress=False)


def test_resume_refuses_a_different_mission(tmp_path, city):
    cfg = tiny_config(record_cameras=False, duration_s=1.0)
    seq = record_mission(city, mission(city), tmp_path, cfg, progress=False)
    manifest = json.loads((seq / "sequence.json").read_text())
    manifest["status"] = "interrupted"
    (seq / "sequence.json").write_text(json.dumps(manifest))
    other = survey_mission(city, (10.0, 0.0), size=40.0, spacing=20.0, altitude=30.0)
    with pytest.raises(ValueError, match="'mission' differs"):
        record_mission(city, other, tmp_path, cfg, resume=seq, progress=False)


def test_new_sequence_refuses_an_existing_folder(tmp_path, city):
    cfg = tiny_config(record_cameras=False, duration_s=0.5)
    record_mission(city, mission(city), tmp_path, cfg, progress=False, name="drone_fixed")
    with pytest.raises(FileExistsError, match="drone_fixed already exists"):
        record_mission(city, mission(city), tmp_path, cfg, progress=False, name="drone_fixed")
