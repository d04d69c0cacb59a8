"""The official OccWorld downloads (training guide §2.1 and §3.1), checked before they are trusted.

Each checkpoint is fetched against the lock file and then handed to a structural check that the
caller supplies (``vlwm download`` passes :func:`vlwm.models.official_weights.verify_official_checkpoint`:
the file must load with ``weights_only=True`` and hold exactly the official keys and shapes).  Only
then is its sha256 recorded in the lock file; a file that fails is moved aside, never left under its
final name.  This module knows files, addresses and checksums, not models.  The info pickles are
not unpickled here (pickles run code); they are only checksummed.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    """``"vqvae"`` / ``"world_model"``: a checkpoint, handed with its path to the structural check;
    None: checksum only."""


OFFICIAL_CHECKPOINTS = (
    OfficialFile(_tsinghua(PRETRAINED_MODELS_PAGE, "vqvae_epoch_125.pth"), "pretrained/vqvae/epoch_125.pth", "vqvae"),
    OfficialFile(_tsinghua(PRETRAINED_MODELS_PAGE, "occworld_latest.pth"), "pretrained/occworld/latest.pth",
                 "world_model"),
)
INFO_PICKLES = tuple(
    OfficialFile(_tsinghua(INFO_PICKLES_PAGE, name), f"data/{name}", None)
    for name in ("nuscenes_infos_train_temporal_v3_scene.pkl", "nuscenes_infos_val_temporal_v3_scene.pkl"))


class CheckpointStructureError(ValueError):
    """A checkpoint file failed its structural check (not loadable, or other keys and shapes)."""


FileCheck = Callable[[Path], object]
"""A structural check of one downloaded file: raises :class:`CheckpointStructureError` when it fails."""
CheckpointCheck = Callable[[str, Path], object]
"""``check(kind, path)``: the structural check of a checkpoint of :attr:`OfficialFile.kind`."""


def fetch_verified(spec: Download, lock: DownloadLock, check: FileCheck | None = None,
                   policy: RetryPolicy = RetryPolicy(), progress: bool = True) -> Path:
    """Fetch ``spec`` against the lock file, run ``check`` on it (when given), record its sha256.

    A file whose structure is wrong is moved to ``<dest>.rejected`` (never left under its final
    name) and :class:`CheckpointStructureError` is raised.
    """
    spec = lock.expect(spec)
    locked = spec.sha256 is not None
    path = fetch(spec, policy=policy, progress=progress)
    if locked and lock.get(spec.dest) is not None:
        return path                                 # byte-identical to a file verified before
    if check is not None:
        try:
            check(path)
        except CheckpointStructureError as err:
            os.replace(path, spec.dest.with_name(spec.dest.name + REJECTED_SUFFIX))
            raise CheckpointStructureError(f"{err}\n  moved to {spec.dest.name}{REJECTED_SUFFIX}; the download "
                                           f"from {spec.url} is not the official checkpoint") from None
    lock.record(spec, sha256_file(path))
    return path


def download_models(root: str | os.PathLike, check_checkpoint: CheckpointCheck, policy: RetryPolicy = RetryPolicy(),
                    progress: bool = True, pickles: bool = True,
                    files: tuple[OfficialFile, ...] | None = None) -> list[Path]:
    """Fetch the official checkpoints (and the info pickles) under ``root``; return their paths.

    ``check_checkpoint(kind, path)`` verifies each checkpoint before it is recorded
    (:func:`vlwm.models.official_weights.verify_official_checkpoint`).  ``files`` replaces the
    official table (tests, mirrors).
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
        kind = item.kind
        check = None if kind is None else (lambda path, kind=kind: check_checkpoint(kind, path))
        try:
            paths.append(fetch_verified(spec, lock, check, policy=policy, progress=progress))
        except UnreachableError as err:
            unreachable[host] = str(err).split(".  ")[0]
            hints.append(manual_hint(spec))
    if unreachable:
        raise UnreachableError("; ".join(unreachable.values()) + ".  To place the files by hand:\n"
                               + "\n".join(f"  - {h}" for h in hints))
    return paths
