"""Shared benchmark helpers: timing, the machine description, appending to RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nWritten by the scripts in this folder; newest last.\n\n"


def timed(fn, repeats: int = 5):
    """(median seconds over ``repeats`` calls, last result)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine() -> str:
    """CPU model, logical cores, Python, OS and the load average (other jobs distort timings)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()}; "
            f"load average {load:.1f} at the start")


def report(title: str, rows, note: str = "Medians of repeats.", write: bool = True) -> str:
    """Format ``rows`` (what, time, notes) as a dated Markdown section; append it to RESULTS.md."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"## {title} — {stamp}", "", f"Machine: {machine()}. {note}", "",
             "| what | time | notes |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        with RESULTS.open("a") as fh:
            if fh.tell() == 0:
                fh.write(HEADER)
            fh.write(text + "\n")
        print(f"appended to {RESULTS}")
    return text
