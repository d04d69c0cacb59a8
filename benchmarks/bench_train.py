"""Training benchmark: optimizer steps per second and peak memory, tiny and official configs.

Run with ``.venv/bin/python benchmarks/bench_train.py`` (CPU); appends a dated section to
``benchmarks/RESULTS.md``.  A benchmark, not a test.

Each case runs in its own process (peak memory = that process's ``ru_maxrss``, model construction
included).  A step is what :func:`vlwm.train.engine.train` does per iteration — forward, the
stage's losses, backward, gradient clipping, AdamW, scheduler — on a synthetic batch of the
config's grid (random occupancy, ~70 % free) with the config's trainable parts; data loading is
not included (see ``bench_data.py``).

Cases: ``tiny_vqvae``, ``tiny_occworld`` (config/tiny_*.py, several steps after a warm-up) and
``train_vqvae``, ``train_occworld`` (the guide's configs at the official widths on the
200 x 200 x 121 aerial grid; one step — minutes and tens of GB on CPU).  ``--frames`` shortens
the official windows when memory is short (noted in the table).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, timed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CASES = ("tiny_vqvae", "tiny_occworld", "train_vqvae", "train_occworld")


def worker(case: str, steps: int, frames: int | None, threads: int | None) -> dict:
    import torch

    from vlwm.labels import FREE
    from vlwm.models import build_vqvae, build_world_model
    from vlwm.train.config import load_config
    from vlwm.train.engine import TrainStep, apply_trainable, build_optimizer, trainable_parts

    if threads:
        torch.set_num_threads(threads)
    cfg, _ = load_config(REPO / "config" / f"{case}.py", {"device": "cpu"})
    torch.manual_seed(0)
    model = (build_vqvae if cfg.stage == "vqvae" else build_world_model)(cfg.model_config())
    apply_trainable(model, trainable_parts(cfg, 0), cfg.stage)
    optimizer, scheduler = build_optimizer(model, cfg, 100)
    step_module = TrainStep(model, cfg)
    f = frames or (cfg.history_frames or 4) + (cfg.future_frames or 6)
    if cfg.stage == "world_model":
        f = min(f, cfg.model.transformer.num_frames + cfg.model.offset)
    x, y, z = cfg.grid.shape
    g = torch.Generator().manual_seed(0)
    occ = torch.randint(0, FREE, (cfg.batch_size, f, x, y, z), generator=g)
    occ[torch.rand(occ.shape, generator=g) < 0.7] = FREE
    motion = cfg.model.motion_dims if cfg.stage == "world_model" else 2
    rel = torch.randn(cfg.batch_size, f, motion, generator=g)
    mode = torch.nn.functional.one_hot(torch.randint(0, 3, (cfg.batch_size, f), generator=g), 3).float()

    def one_step() -> float:
        total, _ = step_module(occ, rel, mode)
        total.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip.max_norm if cfg.grad_clip else 1e9)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        return float(total.detach())

    official = not case.startswith("tiny")
    if not official:
        one_step()                                    # warm-up
    seconds, loss = timed(one_step, repeats=1 if official else steps)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"case": case, "seconds_per_step": seconds, "steps_per_s": 1 / seconds, "peak_rss_gb": rss_gb,
            "shape": [cfg.batch_size, f, x, y, z], "params": n_params, "trainable": n_train, "loss": loss,
            "threads": torch.get_num_threads(), "repeats": 1 if official else steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {CASES}")
    ap.add_argument("--steps", type=int, default=10, help="timed steps of the tiny cases (median)")
    ap.add_argument("--frames", type=int, help="frames per window of the official cases (default: the config's)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--note", default="", help="appended to the section's note")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        frames = None if args.worker.startswith("tiny") else args.frames
        print("RESULT " + json.dumps(worker(args.worker, args.steps, frames, args.threads)))
        return
    rows = []
    for case in args.cases.split(","):
        cmd = [sys.executable, __file__, "--worker", case, "--steps", str(args.steps)]
        cmd += ["--frames", str(args.frames)] if args.frames else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        if r.returncode != 0 or not line:
            why = "killed (out of memory?)" if r.returncode < 0 else (r.stderr.strip().splitlines() or ["?"])[-1]
            rows.append((case, "failed", f"{why}; exit {r.returncode} after {time.perf_counter() - t0:.0f} s"))
            continue
        res = json.loads(line[0][len("RESULT "):])
        rows.append((f"{case} train step", f"{res['seconds_per_step']:.3f} s ({res['steps_per_s']:.2f} it/s)",
                     f"batch {res['shape']} (B, F, X, Y, Z); {res['trainable']:,} of {res['params']:,} parameters "
                     f"trainable; peak RSS {res['peak_rss_gb']:.2f} GB; {res['threads']} threads; "
                     f"median of {res['repeats']}"))
    report("Training steps (bench_train.py)", rows,
           note="CPU, synthetic batches, no data loading; forward + losses + backward + clip + AdamW. " + args.note,
           write=not args.no_write)


if __name__ == "__main__":
    main()
