"""``vlwm benchmark``: the versioned, reproducible VLWM Tokyo benchmark (``vlwm-tokyo-v1``).

* :mod:`~vlwm.benchmark.presets` — what a build contains (districts, agents, grid, windows).
* :mod:`~vlwm.benchmark.build` — ``build``: scenes -> recordings -> ground truth -> manifest.
* :mod:`~vlwm.benchmark.manifest` — ``MANIFEST.json`` (sha256 of every file) and ``verify``.
* :mod:`~vlwm.benchmark.layout` — the folder layout, split datasets and the test-window index.
* :mod:`~vlwm.benchmark.predictions` — the external predictions format (npz per window).
* :mod:`~vlwm.benchmark.scoring` — metrics with overall / agent / altitude-band breakdowns.
* :mod:`~vlwm.benchmark.evaluate` — ``eval``: a baseline, a checkpoint or predictions -> results.json.
* :mod:`~vlwm.benchmark.figures` — per-horizon curves and example windows.
* :mod:`~vlwm.benchmark.cli` — the ``vlwm benchmark`` verbs.

It orchestrates world / sim / gt / data / eval (like :mod:`vlwm.demo`), so it stands beside them.
See docs/benchmark.md.
"""

from vlwm.benchmark.presets import BENCHMARK_ID, PRESETS, get_preset

__all__ = ["BENCHMARK_ID", "PRESETS", "get_preset"]
