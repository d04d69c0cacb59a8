"""One training per work dir: a second writer is refused before it writes anything (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vlwm.io.dir_lock import LOCK_FILE, DirLock, FolderBusyError
from vlwm.train.config import load_config
from vlwm.train.engine import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(tiny_data):
    opts = {"data_root": str(tiny_data), "evaluation.interval": 0, "frame_skip": 9, "max_epochs": 1}
    return load_config(os.path.join(REPO, "config/tiny_vqvae.py"), opts)[0]


def test_lock_is_exclusive_between_processes_and_released_on_exit(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from vlwm.io.dir_lock import DirLock; "
        f"lock = DirLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=rf"{tmp_path}: this folder is in use by another process "
                                                  rf"\(PID {holder.pid}: -c\)"):
            DirLock(tmp_path).acquire()
    finally:
        holder.kill()                                   # SIGKILL: the kernel drops the lock, nothing stale
        holder.wait()
    with DirLock(tmp_path):
        assert (tmp_path / LOCK_FILE).is_file()


def test_second_training_into_a_busy_work_dir_is_refused_and_writes_nothing(tiny_data, tmp_path, train_cli):
    work = tmp_path / "run"
    with DirLock(work, "work dir"):
        with pytest.raises(FolderBusyError, match="work dir is in use"):
            train(_cfg(tiny_data), work)
        r = train_cli("--py-config", "config/tiny_vqvae.py", "--work-dir", str(work), "--cfg-options",
                      f"data_root={tiny_data}", "max_epochs=1", "frame_skip=9", "evaluation.interval=0")
        assert r.returncode == 1, r.stderr
        assert f"error: {work}: this work dir is in use by another process" in r.stderr
        assert "Traceback" not in r.stderr
        assert sorted(p.name for p in work.iterdir()) == [LOCK_FILE]       # no config.json, no checkpoint
    # released: the same folder trains, and releases it again when done
    train(_cfg(tiny_data), work)
    assert (work / "latest.pth").exists()
    with DirLock(work, "work dir"):
        pass
