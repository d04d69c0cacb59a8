"""scripts/launch_occworld_simulation.sh: the guide's entry point records every vehicle, and says what Gazebo needs."""

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "launch_occworld_simulation.sh"
CAMS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")


def free_port_base(vehicles: int) -> int:
    """A UDP port base whose GCS and vehicle ports (base + 10 i, + 5) are all free now."""
    rng = np.random.default_rng(os.getpid() + 1)
    for base in rng.integers(200, 600, size=50) * 100:
        socks = []
        try:
            for port in [base + 10 * i + k for i in range(vehicles) for k in (0, 5)]:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", int(port)))
            return int(base)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free UDP ports")


def launch(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_records_every_vehicle_for_the_duration(tmp_path):
    out = tmp_path / "data"
    run = launch("--drones", "1", "--rovers", "1", "--record", "--headless", "--fast", "--duration", "2",
                 "--world", "procedural", "--city-size", "220", "--city-seed", "2", "--image-size", "32x18",
                 "--out", str(out), "--seed", "3", "--port-base", str(free_port_base(2)), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ready" in run.stdout and "complete" in run.stdout
    assert (out / "scenes" / "procedural_seed2_220m.npz").is_file()   # the scene is built once and cached
    seqs = sorted(p for p in out.iterdir() if (p / "sequence.json").is_file())
    assert [p.name.split("_")[0] for p in seqs] == ["drone", "rover"]
    for seq in seqs:
        manifest = json.loads((seq / "sequence.json").read_text())
        assert manifest["status"] == "complete" and manifest["num_frames"] == 5   # t = 0 .. 2 s at 2 Hz
        assert [f["timestamp"] for f in manifest["frames"]] == [0.0, 0.5, 1.0, 1.5, 2.0]
        assert (seq / manifest["scene"]["file"]).resolve() == (out / "scenes" / "procedural_seed2_220m.npz").resolve()
        assert manifest["seed"] == 3
        assert manifest["mavlink"]["missions"] == []
        assert (seq / "lidar" / "000005_LIDAR.npy").is_file()
        assert all((seq / "images" / f"000005_{c}.jpg").is_file() for c in CAMS)
        poses = [json.loads((seq / "poses" / f"{i:06d}.json").read_text())["pose_13d"][:3] for i in range(1, 6)]
        assert np.allclose(poses, poses[0])   # nobody commanded them: they stand still


def test_gazebo_backend_says_what_it_needs(tmp_path):
    run = launch("--backend", "gazebo", "--drones", "1", cwd=tmp_path)
    assert run.returncode != 0
    assert "scripts/install_ardupilot_gazebo_stack.sh" in run.stderr
    assert not any(tmp_path.iterdir())
