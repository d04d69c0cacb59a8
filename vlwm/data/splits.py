"""Train / val / test splits by sequence, never by window.

Sequences are split **per agent type** (drones and rovers separately, so each split holds both
kinds in the configured proportions and ``agent_type='drone'`` selects the same drone sequences as
``'both'`` does).  Within a group the names are sorted, permuted by a generator seeded with
``(seed, group)``, and cut into exact counts: ``n * ratio`` rounded by largest remainder, at least
one sequence for every split whose ratio is not zero.  The same names and seed always give the
same split; no frame of a val or test sequence is ever in train.

**Tiny datasets.** A group with fewer sequences than non-empty splits (e.g. the demo's one drone
and one rover) cannot be split by sequence.  With ``split_fallback='time'`` (default) each of its
sequences is cut into contiguous time blocks instead — the first ``train_ratio`` of its frames for
train, then val, then test — and no window crosses a block border, so splits still share no frame
(neighbouring blocks are, of course, correlated: a warning says so).  ``'error'`` refuses.
"""

from __future__ import annotations

import zlib

import numpy as np

from vlwm.data.config import SPLITS

TIME_SPLIT = "time"   #: assignment of sequences that are split into time blocks


class SplitError(ValueError):
    """The sequences cannot be split as configured."""


def split_counts(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Sequences per split for ``n`` sequences: largest remainder, >= 1 for every non-zero ratio."""
    wanted = {s: n * ratios[s] for s in SPLITS}
    counts = {s: int(np.floor(wanted[s])) for s in SPLITS}
    for s in sorted(SPLITS, key=lambda s: (-(wanted[s] - counts[s]), SPLITS.index(s)))[:n - sum(counts.values())]:
        counts[s] += 1
    for s in SPLITS:
        if ratios[s] > 0 and counts[s] == 0:
            donor = max(SPLITS, key=lambda d: (counts[d], -SPLITS.index(d)))
            counts[donor] -= 1
            counts[s] += 1
    return counts


def assign_splits(sequences: dict[str, str | None], ratios: dict[str, float], seed: int,
                  fallback: str = "time") -> dict[str, str]:
    """Split of every sequence.

    Parameters
    ----------
    sequences : name -> agent type (None = unknown, its own group).
    ratios : ``{'train': r, 'val': r, 'test': r}``, summing to 1.
    seed : split seed.
    fallback : ``'time'`` or ``'error'`` (module docstring).

    Returns
    -------
    name -> ``'train'`` / ``'val'`` / ``'test'``, or :data:`TIME_SPLIT` for sequences cut in time blocks.
    """
    needed = sum(1 for s in SPLITS if ratios[s] > 0)
    groups: dict[str, list[str]] = {}
    for name, agent in sequences.items():
        groups.setdefault(agent or "unknown", []).append(name)
    out: dict[str, str] = {}
    for group, names in sorted(groups.items()):
        names = sorted(names)
        if len(names) < needed:
            if fallback != TIME_SPLIT:
                raise SplitError(
                    f"{len(names)} {group} sequence(s) ({', '.join(names)}) cannot fill {needed} splits by sequence: "
                    f"record more sequences, set the empty splits' ratios to 0, or use split_fallback='time'")
            out.update({name: TIME_SPLIT for name in names})
            continue
        rng = np.random.default_rng([int(seed), zlib.crc32(group.encode())])
        order = [names[i] for i in rng.permutation(len(names))]
        counts = split_counts(len(names), ratios)
        start = 0
        for s in SPLITS:
            out.update({name: s for name in order[start:start + counts[s]]})
            start += counts[s]
    return out


def time_block(num_frames: int, ratios: dict[str, float], split: str) -> tuple[int, int]:
    """``(lo, hi)`` frame positions of ``split``'s contiguous block of a sequence of ``num_frames`` frames."""
    edges = np.round(np.cumsum([0.0] + [ratios[s] for s in SPLITS]) * num_frames).astype(int)
    i = SPLITS.index(split)
    return int(edges[i]), int(edges[i + 1])
