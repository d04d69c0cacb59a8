"""``vlwm data convert``: npz frame files to .vlo in place, lossless, and resumable after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vlwm.io import occupancy_file as of
from vlwm.labels import FREE

REPO = Path(__file__).resolve().parents[2]
SHAPE = (64, 64, 40)


def old_frame(f: int) -> dict[str, np.ndarray]:
    """The arrays the ground-truth stage wrote to an npz frame file (seeded by the frame number)."""
    rng = np.random.default_rng(f)
    sem = np.full(SHAPE, FREE, np.uint8)
    sem[:, :, :3] = rng.integers(0, 17, (*SHAPE[:2], 3))
    sem[rng.integers(0, 64, 30), rng.integers(0, 64, 30), rng.integers(3, 40, 30)] = 4
    inst = np.where(sem == 4, f + 1, 0).astype(np.int32)
    return {"semantics": sem, "mask_lidar": (rng.random(SHAPE) < 0.2).astype(np.uint8),
            "mask_camera": (rng.random(SHAPE) < 0.1).astype(np.uint8),
            "occupancy": (sem != FREE).astype(np.uint8), "T_world_grid": np.eye(4) + f / 7.0, "instances": inst}


def make_tree(root: Path, n: int) -> None:
    for seq in ("drone_a", "rover_b"):
        occ = root / seq / "occupancy"
        occ.mkdir(parents=True)
        (occ / "grid.json").write_text(json.dumps({"free_label": FREE}))
        for f in range(1, n + 1):
            np.savez_compressed(occ / of.frame_name(f, legacy=True), **old_frame(f))


def check_frames(root: Path, n: int) -> int:
    """Every frame reads back equal to what was written, in whichever format; returns how many are .vlo."""
    converted = 0
    for seq in ("drone_a", "rover_b"):
        frames = of.list_frames(root / seq / "occupancy")
        assert sorted(frames) == list(range(1, n + 1))
        for f, path in frames.items():
            back = of.read_frame(path)
            for key, arr in old_frame(f).items():
                np.testing.assert_array_equal(back[key], arr, err_msg=f"{path} {key}")
                assert back[key].dtype == arr.dtype
            converted += path.suffix == ".vlo"
    return converted


def run_convert(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "vlwm.cli", "data", "convert", str(root), *extra], env=env,
                          capture_output=True, text=True, timeout=600)


def test_convert_survives_sigkill_and_resumes(tmp_path):
    n = 40
    make_tree(tmp_path, n)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vlwm.cli", "data", "convert", str(tmp_path), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(tmp_path.rglob("*.vlo"))) < 5 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "convert finished before it could be killed: make the tree larger"
    left = len(list(tmp_path.rglob("*.npz")))
    assert 0 < left < 2 * n                                              # killed part way
    assert check_frames(tmp_path, n) == 2 * n - left                     # nothing lost or damaged
    done = run_convert(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"converted {left} frame file(s)" in done.stdout
    assert check_frames(tmp_path, n) == 2 * n and not list(tmp_path.rglob("*.npz"))
    assert not list(tmp_path.rglob("*.tmp"))
    again = run_convert(tmp_path, "--quiet")                             # nothing left to do
    assert again.returncode == 0 and "converted 0 frame file(s)" in again.stdout


def test_convert_reports_and_skips_what_it_cannot_convert(tmp_path):
    make_tree(tmp_path, 3)
    occ = tmp_path / "drone_a" / "occupancy"
    (occ / of.frame_name(2, legacy=True)).write_bytes(b"PK\x03\x04 damaged")
    wrong = old_frame(3)
    wrong["occupancy"][0, 0, 20] = 1                                     # disagrees with semantics != free
    np.savez_compressed(occ / of.frame_name(3, legacy=True), **wrong)
    (occ / ".000001_occupancy.vlo.abc123.tmp").write_bytes(b"left by a killed run")
    result = run_convert(tmp_path, "--quiet")
    assert result.returncode == 1
    assert "converted 4 frame file(s)" in result.stdout and "removed 1 temporary file(s)" in result.stdout
    assert "2 not converted" in result.stdout
    assert "000002_occupancy.npz: damaged npz frame file" in result.stdout
    assert "000003_occupancy.npz: 'occupancy' differs from semantics != 17" in result.stdout
    assert sorted(p.name for p in occ.iterdir()) == ["000001_occupancy.vlo", "000002_occupancy.npz",
                                                     "000003_occupancy.npz", "grid.json"]
