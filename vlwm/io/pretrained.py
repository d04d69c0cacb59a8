"""The official OccWorld downloads (training guide §2.1 and §3.1) and their structural check.

Checkpoints are verified before they are trusted: the file must load with
``torch.load(weights_only=True)`` (:func:`vlwm.models.checkpoint.read_checkpoint`) and its state
dict must have exactly the official keys and shapes, which are read off our builders on the
``meta`` device (no memory, no computation; the model tests check those builders against the
official shape lists).  Only then is the sha256 recorded in the lock file.  The info pickles are
not unpickled here (pickles run code); they are only checksummed.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from vlwm.io.download import (REJECTED_SUFFIX, Download, RetryPolicy, UnreachableError, fetch, is_verified,
                              manual_hint, sha256_file)
from vlwm.io.lock import DownloadLock

PRETRAINED_MODELS_PAGE = "https://cloud.tsinghua.edu.cn/d/ff4612b2453841fba7a5/"
"""Tsinghua Cloud folder of the released OccWorld weights."""
INFO_PICKLES_PAGE = "https://cloud.tsinghua.edu.cn/d/9e231ed16e4a4caca3bd/"
"""Tsinghua Cloud folder of the nuScenes info pickles."""


def _tsinghua(page: str, name: str) -> str:
    return f"{page}files/?p=%2F{name}&dl=1"


@dataclass(frozen=True)
class OfficialFile:
    """One file of the official release."""

    url: str
    relpath: str
    """Destination under the ``--dest`` folder (the guide's layout)."""
    kind: str | None
    """``"vqvae"`` / ``"world_model"``: a checkpoint checked against that model; None: checksum only."""


OFFICIAL_CHECKPOINTS = (
    OfficialFile(_tsinghua(PRETRAINED_MODELS_PAGE, "vqvae_epoch_125.pth"), "pretrained/vqvae/epoch_125.pth", "vqvae"),
    OfficialFile(_tsinghua(PRETRAINED_MODELS_PAGE, "occworld_latest.pth"), "pretrained/occworld/latest.pth",
                 "world_model"),
)
INFO_PICKLES = tuple(
    OfficialFile(_tsinghua(INFO_PICKLES_PAGE, name), f"data/{name}", None)
    for name in ("nuscenes_infos_train_temporal_v3_scene.pkl", "nuscenes_infos_val_temporal_v3_scene.pkl"))


class CheckpointStructureError(ValueError):
    """A checkpoint file does not have the expected keys and shapes."""


def official_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official state dict of ``kind`` (``"vqvae"`` or ``"world_model"``)."""
    from vlwm.models.builders import build_vqvae, build_world_model

    builders: dict[str, Callable] = {"vqvae": build_vqvae, "world_model": build_world_model}
    if kind not in builders:
        raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {sorted(builders)}")
    with torch.device("meta"):
        model = builders[kind]()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def verify_checkpoint(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]]) -> int:
    """Check that ``path`` loads safely and has exactly the keys and shapes of ``expected``.

    Returns the number of tensors; raises :class:`CheckpointStructureError` listing missing,
    unexpected and mis-shaped keys (at most 10 of each).
    """
    from vlwm.models.checkpoint import official_state_dict, read_checkpoint

    try:
        sd = official_state_dict(read_checkpoint(path))
    except (ValueError, RuntimeError, EOFError, KeyError) as err:
        raise CheckpointStructureError(f"{path} is not a loadable checkpoint (weights_only=True): {err}") from None
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k}: {tuple(sd[k].shape)} instead of {tuple(s)}" for k, s in expected.items()
                  if k in sd and tuple(sd[k].shape) != tuple(s)]
    if missing or unexpected or mismatched:
        lines = [f"{path} does not have the official structure ({len(sd)} tensors, {len(expected)} expected):"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("other shape", mismatched)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:10]) + (" ..." if len(items) > 10 else ""))
        raise CheckpointStructureError("\n".join(lines))
    return len(sd)


def fetch_verified(spec: Download, lock: DownloadLock, expected: Mapping[str, tuple[int, ...]] | None = None,
                   policy: RetryPolicy = RetryPolicy(), progress: bool = True) -> Path:
    """Fetch ``spec`` against the lock file, check its structure (when ``expected``), record it.

    A file whose structure is wrong is moved to ``<dest>.rejected`` (never left under its final
    name) and :class:`CheckpointStructureError` is raised.
    """
    spec = lock.expect(spec)
    locked = spec.sha256 is not None
    path = fetch(spec, policy=policy, progress=progress)
    if locked and lock.get(spec.dest) is not None:
        return path                                 # byte-identical to a file verified before
    if expected is not None:
        try:
            verify_checkpoint(path, expected)
        except CheckpointStructureError as err:
            os.replace(path, spec.dest.with_name(spec.dest.name + REJECTED_SUFFIX))
            raise CheckpointStructureError(f"{err}\n  moved to {spec.dest.name}{REJECTED_SUFFIX}; the download "
                                           f"from {spec.url} is not the official checkpoint") from None
    lock.record(spec, sha256_file(path))
    return path


def download_models(root: str | os.PathLike, policy: RetryPolicy = RetryPolicy(), progress: bool = True,
                    pickles: bool = True, files: tuple[OfficialFile, ...] | None = None) -> list[Path]:
    """Fetch the official checkpoints (and the info pickles) under ``root``; return their paths.

    ``files`` replaces the official table (tests, mirrors).
    """
    root = Path(root)
    lock = DownloadLock.at(root)
    table = files if files is not None else OFFICIAL_CHECKPOINTS + (INFO_PICKLES if pickles else ())
    paths, unreachable, hints = [], {}, []
    for item in table:
        spec = lock.expect(Download(url=item.url, dest=root / item.relpath))
        host = urllib.parse.urlsplit(item.url).hostname
        if host in unreachable and not is_verified(spec):
            hints.append(manual_hint(spec))     # same host failed already: do not wait for it again
            continue
        expected = official_shapes(item.kind) if item.kind else None
        try:
            paths.append(fetch_verified(spec, lock, expected, policy=policy, progress=progress))
        except UnreachableError as err:
            unreachable[host] = str(err).split(".  ")[0]
            hints.append(manual_hint(spec))
    if unreachable:
        raise UnreachableError("; ".join(unreachable.values()) + ".  To place the files by hand:\n"
                               + "\n".join(f"  - {h}" for h in hints))
    return paths
