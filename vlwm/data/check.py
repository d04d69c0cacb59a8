"""``vlwm data check DIR``: every sequence validated, windows per split, and what the grids hold.

:func:`check_dataset` runs the dataset's checks on all sequences (every split, the selected agent
types), counts the windows each split gets, then reads the usable frames' class grids (all, or an
even sample of ``stats_frames``) for the statistics: class histogram and occupied fraction with and
without the ground classes.  A sequence whose grid disagrees with the configured one is listed as
such instead of stopping the check; a frame that fails a full read (bad CRC, truncated data) is
added to its sequence's problems.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vlwm.data import layout
from vlwm.data.config import SPLITS, DatasetConfig
from vlwm.data.splits import TIME_SPLIT, assign_splits, time_block
from vlwm.data.validation import GridMismatchError, Issue, SequenceRecord, read_agent_type, validate_sequence, \
    window_starts
from vlwm.io import recording
from vlwm.labels import GROUND_LABEL_NAMES, OCC3D_CLASS_NAMES


@dataclass
class SequenceCheck:
    """One row of the table."""

    name: str
    agent_type: str | None
    split: str                                   #: 'train' / 'val' / 'test' / 'time' (blocks) / '-' (error)
    record: SequenceRecord | None = None         #: None when the sequence could not be validated
    error: str | None = None
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)   #: split -> (valid, candidates)


@dataclass
class DatasetCheck:
    root: Path
    config: DatasetConfig
    sequences: list[SequenceCheck]
    label_names: tuple[str, ...]
    class_histogram: np.ndarray                  #: (C,) int64 voxels per label over the frames read
    frames_read: int

    @property
    def windows_per_split(self) -> dict[str, int]:
        return {s: sum(c.windows.get(s, (0, 0))[0] for c in self.sequences) for s in SPLITS}

    @property
    def skipped_per_split(self) -> dict[str, int]:
        return {s: sum(c.windows[s][1] - c.windows[s][0] for c in self.sequences if s in c.windows) for s in SPLITS}

    def occupied_fraction(self, without_ground: bool = False) -> float:
        """Share of non-free voxels (optionally also excluding the ground labels) over the frames read."""
        total = int(self.class_histogram.sum())
        if not total:
            return float("nan")
        free = len(self.label_names) - 1
        drop = [free] + ([self.label_names.index(n) for n in GROUND_LABEL_NAMES if n in self.label_names]
                         if without_ground else [])
        return float(total - self.class_histogram[drop].sum()) / total

    def to_json(self) -> dict:
        return {
            "root": str(self.root), "config": self.config.to_dict(),
            "sequences": [{"name": c.name, "agent_type": c.agent_type, "split": c.split, "error": c.error,
                           "frames": c.record.num_frames if c.record else 0,
                           "usable": int(c.record.usable.sum()) if c.record else 0,
                           "windows": {s: list(v) for s, v in c.windows.items()},
                           "issues": [str(i) for i in c.record.issues] if c.record else [],
                           "notes": list(c.record.notes) if c.record else []} for c in self.sequences],
            "windows_per_split": self.windows_per_split, "skipped_windows_per_split": self.skipped_per_split,
            "frames_read": self.frames_read,
            "class_histogram": {n: int(v) for n, v in zip(self.label_names, self.class_histogram)},
            "occupied_fraction": self.occupied_fraction(), "occupied_fraction_without_ground":
                self.occupied_fraction(without_ground=True),
        }


def check_dataset(root: str | Path, config: DatasetConfig | None = None, stats_frames: int | None = None,
                  progress: Callable[[str], None] | None = None) -> DatasetCheck:
    """Validate every sequence under ``root`` and gather statistics (see the module docstring).

    ``stats_frames``: read at most this many frames for the statistics (evenly spread); None = all, 0 = none.
    """
    config = config or DatasetConfig()
    root = Path(root)
    paths = recording.find_sequences(root)
    agents = {p.name: read_agent_type(p)[0] for p in paths}
    split_of = assign_splits(agents, config.ratios, config.seed, config.split_fallback)
    rows: list[SequenceCheck] = []
    for p in paths:
        if config.agent_type not in ("both", agents[p.name]):
            continue
        row = SequenceCheck(p.name, agents[p.name], split_of[p.name])
        try:
            row.record = validate_sequence(p, config)
        except GridMismatchError as exc:
            row.error, row.split = str(exc), "-"
            rows.append(row)
            continue
        rec = row.record
        for s in (SPLITS if row.split == TIME_SPLIT else (row.split,)):
            block = time_block(rec.num_frames, config.ratios, s) if row.split == TIME_SPLIT else None
            starts, cand = window_starts(rec, config.window_length, config.frame_stride, config.frame_skip,
                                         config.max_gap_factor, block)
            row.windows[s] = (len(starts), cand)
        rows.append(row)
        if progress:
            progress(f"checked {p.name}")
    names = next((r.record.label_names for r in rows if r.record), OCC3D_CLASS_NAMES)
    hist, read = _statistics(rows, names, stats_frames)
    return DatasetCheck(root, config, rows, tuple(names), hist, read)


def _statistics(rows: list[SequenceCheck], names, stats_frames: int | None) -> tuple[np.ndarray, int]:
    frames = [(row, int(pos)) for row in rows if row.record for pos in np.flatnonzero(row.record.usable)]
    if stats_frames is not None and len(frames) > stats_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, stats_frames).astype(int)] if stats_frames else []
    hist = np.zeros(len(names), np.int64)
    free = len(names) - 1
    read = 0
    for row, pos in frames:
        rec = row.record
        path = recording.occupancy_path(rec.path, rec.first_frame + pos)
        try:
            sem, _, _ = layout.read_occupancy(path, free, masks=False)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            rec.issues.append(Issue(rec.first_frame + pos, str(path), f"unreadable on a full read ({exc})"))
            rec.usable[pos] = False
            continue
        hist += np.bincount(sem.ravel(), minlength=len(names))[:len(names)]
        read += 1
    return hist, read


def format_check(check: DatasetCheck, max_issues: int = 5) -> str:
    """The per-sequence table, problems, and dataset statistics as text."""
    head = f"{'sequence':<32} {'agent':<6} {'split':<6} {'frames':>6} {'usable':>6} " + \
        " ".join(f"{'win ' + s:>10}" for s in SPLITS) + f" {'problems':>8}"
    lines = [f"{check.root}: {len(check.sequences)} sequence(s), grid {check.config.grid.shape} "
             f"(point_cloud_range {list(check.config.point_cloud_range)}, voxel_size {list(check.config.voxel_size)}), "
             f"windows of {check.config.history_frames}+{check.config.future_frames} frames", "", head,
             "-" * len(head)]
    for c in check.sequences:
        rec = c.record
        wins = " ".join(f"{'%d/%d' % c.windows[s] if s in c.windows else '-':>10}" for s in SPLITS)
        lines.append(f"{c.name[:32]:<32} {str(c.agent_type or '?'):<6} {c.split:<6} "
                     f"{rec.num_frames if rec else 0:>6} {int(rec.usable.sum()) if rec else 0:>6} {wins} "
                     f"{len(rec.issues) if rec else 1:>8}")
    lines.append("(windows: valid/possible; 'time' = split into time blocks, too few sequences)")
    problems = [c for c in check.sequences if c.error or (c.record and (c.record.issues or c.record.notes))]
    if problems:
        lines += ["", "Problems (affected windows are skipped):"]
        for c in problems:
            lines.append(c.error if c.error else c.record.summary(max_issues))
    wps, skipped = check.windows_per_split, check.skipped_per_split
    lines += ["", "Dataset statistics",
              f"  frames              {sum(c.record.num_frames for c in check.sequences if c.record)} "
              f"({sum(int(c.record.usable.sum()) for c in check.sequences if c.record)} usable, "
              f"{check.frames_read} read for the statistics)",
              "  windows             " + ", ".join(f"{s} {wps[s]} ({skipped[s]} skipped)" for s in SPLITS),
              f"  occupied            {100 * check.occupied_fraction():.2f} % of voxels",
              f"  occupied w/o ground {100 * check.occupied_fraction(without_ground=True):.2f} % "
              f"(ground = {', '.join(GROUND_LABEL_NAMES)})",
              "  class histogram (voxels, share of all / of occupied):"]
    total = max(int(check.class_histogram.sum()), 1)
    occupied = max(int(check.class_histogram[:-1].sum()), 1)
    for i, (name, count) in enumerate(zip(check.label_names, check.class_histogram)):
        share_occ = "" if i == len(check.label_names) - 1 else f" {100 * count / occupied:6.2f} %"
        lines.append(f"    {i:>2} {name:<22} {int(count):>14,} {100 * count / total:7.3f} %{share_occ}")
    return "\n".join(lines)
