"""Model benchmark: the OccWorld VQ-VAE and world model at the official size, eager vs optimised.

Run with ``.venv/bin/python benchmarks/bench_models.py`` (CPU; ``--device cuda`` on a GPU machine);
appends a dated section naming the machine to ``benchmarks/RESULTS.md``.  A benchmark, not a test.

Cases (batch 1, random seed-0 weights, random occupancy ~70 % free, like SPEC §12):

* ``vae_eval``   — ``VAERes2D`` reconstruction under ``no_grad``, (1, F, 200, 200, 16);
* ``vae_train``  — VAE forward + 10·CE + Lovász + VQ loss + backward;
* ``wm_eval``    — world model teacher-forced + decode, (1, 16, 200, 200, 16), ``no_grad``;
* ``wm_train``   — world model forward + CE + 0.1·plan loss + backward, VAE frozen;
* ``wm_rollout`` — autoregressive rollout 0 / 5 / 11 on (1, 12, 200, 200, 16), ``no_grad``.

Variants (the same modules and weights):

* ``eager``      — the official computation: explicit softmax attention ("reference"), NCHW,
  the rollout re-running the whole window each step, float32;
* ``optimised``  — SDPA attention, channels-last VAE, the rollout's key/value cache, float32;
* ``+ckpt``      — optimised with gradient checkpointing (training cases);
* ``+bf16``      — optimised under ``torch.autocast`` bfloat16 (quantisation stays float32);
* ``+compile``   — optimised with the VAE and transformer under ``torch.compile`` (inductor;
  compiling takes ~40 s for the VAE on CPU; in the default set for ``vae_eval`` only).

Each (case, variant) runs in its own process: peak memory is that process's ``ru_maxrss`` (model
construction included, as in SPEC §12) on CPU, ``torch.cuda.max_memory_allocated`` on GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, RESULTS, machine  # noqa: E402  (benchmarks/common.py)

CASES = ("vae_eval", "vae_train", "wm_eval", "wm_train", "wm_rollout")
DEFAULT_VARIANTS = {
    "vae_eval": ("eager", "optimised", "+bf16", "+compile"),
    "vae_train": ("eager", "optimised", "+ckpt"),
    "wm_eval": ("eager", "optimised"),
    "wm_train": ("eager", "+ckpt"),
    "wm_rollout": ("eager", "optimised"),
}
#: Warm-up runs by default: the world-model cases take 15-60 s per run on a 2-core CPU, where the
#: first run is within host noise of later ones; skipping it keeps the default run to minutes.
DEFAULT_WARMUP = {"vae_eval": 1, "vae_train": 1, "wm_eval": 0, "wm_train": 0, "wm_rollout": 0}
#: SPEC §12: the official code on a 2-core AMD EPYC, torch 2.13 CPU, median s and peak RSS GB.
SPEC_CPU = {
    "vae_eval": ("(1, 10, 200, 200, 16)", 15.6, 1.47),
    "vae_train": ("(1, 10, 200, 200, 16)", 59.5, 16.9),
    "wm_eval": ("(1, 16, 200, 200, 16)", 35.3, 2.2),
    "wm_train": ("(1, 16, 200, 200, 16)", 39.5, 11.4),
    "wm_rollout": ("(1, 12, 200, 200, 16)", 42.6, 2.3),
}


def make_occ(shape, seed: int) -> torch.Tensor:
    """SPEC NOTES ``make_occ``: ~70 % free (17), the rest uniform over 0..16; int64."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(shape, generator=g)
    c = torch.randint(0, 17, shape, generator=g)
    return torch.where(u < 0.7, 17, c)


def make_poses(frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rel = torch.stack([torch.randn(frames, generator=g) * 0.2, 1 + 3 * torch.rand(frames, generator=g)], -1)
    mode = torch.eye(3)[torch.randint(0, 3, (frames,), generator=g)]
    return rel[None], mode[None]


def build_case(case: str, variant: str, vae_frames: int, device: torch.device):
    """The callable to time, with everything built and moved to ``device``."""
    from vlwm.models import (build_vqvae, build_world_model, official_vae_config, official_world_model_config,
                             vae_loss, world_model_loss)

    optimised = variant != "eager"
    execution = dict(attention="sdpa" if optimised else "reference", use_checkpoint=variant == "+ckpt")
    torch.manual_seed(0)
    if case.startswith("vae"):
        model = build_vqvae(official_vae_config(channels_last=optimised, **execution)).to(device)
        occ = make_occ((1, vae_frames, 200, 200, 16), 1).to(device)
        model.train(case == "vae_train")
        runner = torch.compile(model) if variant == "+compile" else model

        def step():
            if case == "vae_eval":
                with torch.no_grad():
                    return runner(occ).logits
            model.zero_grad(set_to_none=True)
            losses = vae_loss(runner(occ), occ)
            losses.total.backward()
            return losses.total
    else:
        cfg = official_world_model_config()
        cfg = replace(cfg, vae=replace(cfg.vae, channels_last=optimised, **execution),
                      transformer=replace(cfg.transformer, **execution))
        model = build_world_model(cfg).to(device)
        model.freeze_tokenizer()
        frames = 12 if case == "wm_rollout" else 16
        occ = make_occ((1, frames, 200, 200, 16), 4).to(device)
        rel, mode = (t.to(device) for t in make_poses(frames, 5))
        model.train(case == "wm_train")
        if variant == "+compile":   # the pieces every path goes through (methods, not just forward)
            model.vae.encoder = torch.compile(model.vae.encoder)
            model.vae.decoder = torch.compile(model.vae.decoder)
            model.transformer.context = torch.compile(model.transformer.context)
            model.transformer.predict = torch.compile(model.transformer.predict)

        def step():
            if case == "wm_eval":
                with torch.no_grad():
                    return model(occ, rel, mode, decode=True).logits
            if case == "wm_rollout":
                with torch.no_grad():
                    return model.rollout(occ, rel, mode, 0, 5, 11, use_cache=optimised).logits
            model.zero_grad(set_to_none=True)
            losses = world_model_loss(model(occ, rel, mode))
            losses.total.backward()
            return losses.total

    if variant != "+bf16":
        return step

    def autocast_step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return step()
    return autocast_step


def worker(case: str, variant: str, vae_frames: int, warmup: int, repeats: int, device_name: str) -> dict:
    """Time one (case, variant) in this process; returns the result record."""
    device = torch.device(device_name)
    step = build_case(case, variant, vae_frames, device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times, cpu_times = [], []
    load = os.getloadavg()[0]
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 1e9
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6   # kB -> GB
    return dict(case=case, variant=variant, warmup=times[:warmup], times=times[warmup:],
                median=statistics.median(times[warmup:]), cpu=statistics.median(cpu_times[warmup:]),
                peak_gb=peak, load=load)


def run_isolated(case, variant, args) -> dict:
    warmup = DEFAULT_WARMUP[case] if args.warmup is None else args.warmup
    cmd = [sys.executable, __file__, "--worker", case, variant, "--vae-frames", str(args.vae_frames),
           "--warmup", str(warmup), "--repeats", str(args.repeats), "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{case}/{variant} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def describe(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}, torch {torch.__version__}"
    return f"{machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def table(results: list[dict], args) -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    eager = {r["case"]: r["median"] for r in results if r["variant"] == "eager"}
    lines = [f"## Models (OccWorld VQ-VAE and world model, official size) — {stamp}", "",
             f"Machine: {describe(args.device)}.  `benchmarks/bench_models.py` on {args.device}, batch 1, "
             f"median of the timed runs listed (warm-up runs: "
             f"{'as given' if args.warmup is not None else '1 for VAE cases, none for world-model cases'}); "
             f"each row in its own process, peak = "
             f"{'max CUDA memory allocated' if args.device.startswith('cuda') else 'max RSS incl. model build'}.",
             "Variants: eager = official computation (explicit attention, NCHW, rollout re-runs the window); "
             "optimised = SDPA + channels-last VAE + rollout key/value cache; +ckpt = optimised + gradient "
             "checkpointing; +bf16 = optimised under bf16 autocast; +compile = optimised + torch.compile.",
             *([args.note] if args.note else []), "",
             "Columns: wall seconds (median, all timed runs in brackets), speed-up over eager, process CPU "
             "seconds (all threads; less sensitive to other processes than wall time), peak memory, the "
             "1-minute load average when the row started (2.0 = both cores busy with this benchmark alone).", "",
             "| case | input | variant | wall s (runs) | vs eager | CPU s | peak GB | load "
             "| SPEC §12 official (CPU) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        case = r["case"]
        shape = f"(1, {args.vae_frames}, 200, 200, 16)" if case.startswith("vae") else SPEC_CPU[case][0]
        spec_shape, spec_s, spec_gb = SPEC_CPU[case]
        speedup = f"{eager[case] / r['median']:.2f}x" if case in eager else ""
        runs = ", ".join(f"{t:.1f}" for t in r["times"])
        lines.append(f"| {case} | {shape} | {r['variant']} | **{r['median']:.2f}** ({runs}) | {speedup} | "
                     f"{r['cpu']:.1f} | {r['peak_gb']:.2f} | {r['load']:.1f} | "
                     f"{spec_s} s, {spec_gb} GB at {spec_shape} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    p.add_argument("--variants", default="", help="comma-separated variants for every case "
                   "(eager, optimised, +ckpt, +bf16, +compile); default: a per-case set")
    p.add_argument("--vae-frames", type=int, default=2, help="frames of the VAE cases (SPEC §12 used 10)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs (default: 1 for the VAE cases, "
                   "0 for the world-model cases)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--note", default="", help="a sentence added to the section (e.g. host load)")
    p.add_argument("--no-write", action="store_true", help="print only, do not append to RESULTS.md")
    p.add_argument("--worker", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        result = worker(*args.worker, args.vae_frames, args.warmup or 0, args.repeats, args.device)
        print("RESULT " + json.dumps(result), flush=True)
        return

    results = []
    for case in args.cases.split(","):
        if case not in CASES:
            p.error(f"unknown case {case!r}; choose from {CASES}")
        variants = args.variants.split(",") if args.variants else DEFAULT_VARIANTS[case]
        for variant in variants:
            t0 = time.perf_counter()
            results.append(run_isolated(case, variant, args))
            r = results[-1]
            print(f"{case:11s} {variant:10s} {r['median']:7.2f} s  cpu {r['cpu']:.1f} s  peak {r['peak_gb']:.2f} GB  "
                  f"load {r['load']:.1f}  "
                  f"(runs {r['times']}, warm-up {r['warmup']}; {time.perf_counter() - t0:.0f} s wall)", flush=True)
    text = table(results, args)
    print("\n" + text)
    if not args.no_write:
        with RESULTS.open("a") as fh:
            if fh.tell() == 0:
                fh.write(HEADER)
            fh.write(text + "\n")
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
