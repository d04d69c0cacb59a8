"""The lock file of downloads (``pretrained/downloads.lock.json``): url, sha256 and size per file.

Written after a download is verified (for checkpoints: structurally, see
:mod:`vlwm.io.pretrained`); on later runs the recorded sha256 and size become the expectation, so
a present file is checked and a re-downloaded one must be byte-identical.  Paths are stored relative
to the lock file's root folder (the ``--dest`` folder), so the tree can be moved.

Format::

    {"version": 1, "files": {"pretrained/vqvae/epoch_125.pth": {"url": ..., "sha256": ..., "size": ...}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vlwm.io.atomic import atomic_write_json
from vlwm.io.download import Download

LOCK_VERSION = 1
LOCK_RELPATH = Path("pretrained") / "downloads.lock.json"
"""Where the lock file lives under the ``--dest`` folder."""


@dataclass(frozen=True)
class LockEntry:
    """What a verified download was."""

    url: str
    sha256: str
    """Lower-case hex digest."""
    size: int
    """Bytes."""


class DownloadLock:
    """The lock file at ``path``; entries are keyed by file path relative to ``root``."""

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike):
        self.path = Path(path)
        self.root = Path(root)
        self.entries: dict[str, LockEntry] = {}
        if self.path.is_file():
            data = json.loads(self.path.read_text())
            if data.get("version") != LOCK_VERSION or not isinstance(data.get("files"), dict):
                raise ValueError(f"{self.path}: not a version-{LOCK_VERSION} download lock file; delete it to "
                                 "re-record the downloads")
            for key, entry in data["files"].items():
                try:
                    self.entries[key] = LockEntry(url=entry["url"], sha256=entry["sha256"].lower(),
                                                  size=int(entry["size"]))
                except (KeyError, TypeError, ValueError, AttributeError) as err:
                    raise ValueError(f"{self.path}: entry {key!r} needs url, sha256 and size ({err})") from None

    @classmethod
    def at(cls, root: str | os.PathLike) -> "DownloadLock":
        """The lock file of a ``--dest`` folder."""
        return cls(Path(root) / LOCK_RELPATH, root)

    def key(self, dest: str | os.PathLike) -> str:
        """The entry key of a destination path (relative to root, POSIX separators)."""
        dest = Path(dest)
        try:
            return dest.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return dest.resolve().as_posix()

    def get(self, dest: str | os.PathLike) -> LockEntry | None:
        return self.entries.get(self.key(dest))

    def expect(self, spec: Download) -> Download:
        """``spec`` with the recorded sha256 and size when the lock has an entry for the same URL."""
        entry = self.get(spec.dest)
        if entry is None or entry.url != spec.url:
            return spec
        if spec.sha256 is not None and spec.sha256.lower() != entry.sha256:
            raise ValueError(f"{self.path}: {self.key(spec.dest)} is locked to sha256 {entry.sha256} but the "
                             f"download table expects {spec.sha256}; delete the entry if the file changed upstream")
        return Download(url=spec.url, dest=spec.dest, sha256=entry.sha256, size=entry.size)

    def record(self, spec: Download, sha256: str) -> LockEntry:
        """Add or replace the entry of a verified file and write the lock file (atomically)."""
        entry = LockEntry(url=spec.url, sha256=sha256.lower(), size=spec.dest.stat().st_size)
        self.entries[self.key(spec.dest)] = entry
        self.save()
        return entry

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": LOCK_VERSION, "files": {k: asdict(v) for k, v in sorted(self.entries.items())}}
        atomic_write_json(self.path, data, trailing_newline=True, durable=True)
