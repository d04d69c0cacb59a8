"""Exact resume on CPU: a run stopped and resumed logs the same losses as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


from vlwm.train.config import load_config
from vlwm.train.engine import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(tiny_data, **extra):
    opts = {"data_root": str(tiny_data), "checkpoint_config.max_keep_ckpts": -1, "evaluation.interval": 0,
            "frame_skip": 6, **extra}
    return load_config(os.path.join(REPO, "config/tiny_occworld.py"), opts)[0]


def _losses(rows):
    return {s: (r["loss"], r["loss_ce"], r["loss_plan_reg"], r["lr"]) for s, r in rows.items()}


def test_resume_from_epoch_checkpoint_is_exact(tiny_data, tmp_path, read_scalars):
    full = tmp_path / "full"
    train(_cfg(tiny_data), full)
    per_epoch = max(read_scalars(full)) // 2
    resumed = tmp_path / "resumed"
    train(_cfg(tiny_data, resume_from=str(full / "epoch_1.pth")), resumed)
    a, b = _losses(read_scalars(full)), _losses(read_scalars(resumed))
    assert sorted(b) == list(range(per_epoch + 1, 2 * per_epoch + 1))
    for step in b:
        assert a[step] == b[step], step                     # bit-identical


def test_sigterm_saves_and_resume_is_exact(tiny_data, tmp_path, read_scalars, train_cli):
    """All three runs in subprocesses with the same thread count (float reductions depend on it)."""
    args = ["--py-config", "config/tiny_occworld.py", "--cfg-options", f"data_root={tiny_data}",
            "checkpoint_config.max_keep_ckpts=-1", "evaluation.interval=0", "frame_skip=6"]
    full = tmp_path / "full"
    assert train_cli("--work-dir", str(full), *args).returncode == 0
    run = tmp_path / "stopped"
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--work-dir", str(run), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout:
        if "(global 2)" in line:
            proc.send_signal(signal.SIGTERM)
            break
    proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert "stopped by signal 15" in (run / "train.log").read_text()
    stopped_at = max(read_scalars(run))
    assert stopped_at < max(read_scalars(full)), "stopped before the end"
    r = train_cli("--work-dir", str(run), *args)             # auto-resumes from work_dir/latest.pth
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in (run / "train.log").read_text()
    a, b = _losses(read_scalars(full)), _losses(read_scalars(run))
    assert sorted(a) == sorted(b)
    for step in a:
        assert a[step] == b[step], step
