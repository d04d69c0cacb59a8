"""The benchmark folder: where everything lies, the split datasets and the test-window index.

::

    DIR/
      MANIFEST.json            every file's sha256, the preset, generator parameters, versions
      benchmark.json           districts, sequences (district, split, agent, pattern, altitude band)
      ATTRIBUTION.md           data licences (PLATEAU: CC BY 4.0)
      scenes/<district>.npz    one scene per district
      missions/<seq>.waypoints QGC WPL files of the drones' waypoint missions
      splits/<split>/<seq>/    recordings: sequence.json, poses/, occupancy/ (grid.json + frames)
      windows/test.json        the scored test windows: id, sequence, frames, agent, altitude band
      results/<method>/        what `vlwm benchmark eval` writes (not in the manifest)

This module owns ``benchmark.json`` and ``windows/test.json``; :mod:`vlwm.benchmark.manifest`
owns ``MANIFEST.json``.  A split's data is a :class:`~vlwm.data.GazeboOccWorldDataset` over
``splits/<split>`` that takes every sequence there (the split is the folder: held out by
district, never by a random draw).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlwm.benchmark.presets import CRUISE_FRACTION, SPLIT_NAMES

MANIFEST_FILE = "MANIFEST.json"
INFO_FILE = "benchmark.json"
ATTRIBUTION_FILE = "ATTRIBUTION.md"
WINDOWS_FILE = "windows/test.json"
SCENES_DIR = "scenes"
MISSIONS_DIR = "missions"
SPLITS_DIR = "splits"
RESULTS_DIR = "results"


def split_root(bench: Path, split: str) -> Path:
    """``DIR/splits/<split>``: the dataset root of one split."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}")
    return Path(bench) / SPLITS_DIR / split


def split_dataset_dict(bench: Path, split: str, info: dict[str, Any], window_stride: int = 1,
                       load_instances: bool = False) -> dict[str, Any]:
    """The :func:`vlwm.data.mixing.build_dataset` dict of a split: every sequence under its folder.

    ``window_stride`` is the ``frame_skip`` between window starts.
    """
    ratios = {f"{s}_ratio": float(s == split) for s in SPLIT_NAMES}
    grid = info["grid"]
    config = dict(history_frames=info["history_frames"], future_frames=info["future_frames"], frame_skip=window_stride,
                  agent_type="both", split=split, split_fallback="error", load_instances=load_instances,
                  point_cloud_range=list(grid["point_cloud_range"]), voxel_size=list(grid["voxel_size"]), **ratios)
    return {"type": "GazeboOccWorldDataset", "data_root": str(split_root(bench, split)), "config": config}


def split_dataset(bench: Path, split: str, info: dict[str, Any], window_stride: int = 1, load_instances: bool = False):
    """A :class:`~vlwm.data.GazeboOccWorldDataset` of one split (see :func:`split_dataset_dict`)."""
    from vlwm.data.mixing import build_dataset

    return build_dataset(split_dataset_dict(bench, split, info, window_stride, load_instances))


def read_info(bench: Path) -> dict[str, Any]:
    """``benchmark.json`` of a built benchmark; a folder without one is an error saying what to do."""
    path = Path(bench) / INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{bench} is not a built benchmark (no {INFO_FILE}): run "
                                f"`vlwm benchmark build --preset small --out {bench}` first")
    return json.loads(path.read_text())


def window_id(sequence: str, first_frame: int) -> str:
    """Id of a window: its sequence folder and first frame number (``<seq>_f000012``)."""
    return f"{sequence}_f{int(first_frame):06d}"


def build_window_index(bench: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The scored test windows, in dataset order (``info['eval_window_stride']`` apart).

    A drone window is scored once the drone flies at its mission altitude: its first frame's
    height above the ground is at least :data:`~vlwm.benchmark.presets.CRUISE_FRACTION` of it.

    Each entry: ``id``, ``index`` (position in the test dataset), ``sequence``, ``frames`` (the
    T_h + T_f recorded frame numbers), ``district``, ``agent``, ``pattern``, ``altitude_m``,
    ``band`` (drones' altitude band, None for rovers).
    """
    ds = split_dataset(bench, "test", info, info["eval_window_stride"])
    seqs = {s["name"]: s for s in info["sequences"]}
    records = {rec.name: rec for rec in ds.records}
    out = []
    for i in range(len(ds)):
        name, frames = ds.window(i)
        s = seqs[name]
        if s["agent"] == "drone":
            rec = records[name]
            pos = int(frames[0]) - rec.first_frame
            if rec.poses[pos, 2] - rec.ground_z[pos] < CRUISE_FRACTION * s["altitude_m"]:
                continue
        out.append({"id": window_id(name, int(frames[0])), "index": i, "sequence": name,
                    "frames": [int(f) for f in frames], "district": s["district"], "agent": s["agent"],
                    "pattern": s["pattern"], "altitude_m": s["altitude_m"], "band": s["band"]})
    return out


def write_json(path: Path, obj: Any) -> Path:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    return path


def read_windows(bench: Path) -> list[dict[str, Any]]:
    """``windows/test.json`` of a built benchmark."""
    path = Path(bench) / WINDOWS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the benchmark build did not finish; rebuild it")
    return json.loads(path.read_text())["windows"]
