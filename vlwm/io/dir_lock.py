"""One writer per folder: an advisory lock file that a second process cannot take.

A training run owns its work dir: two runs writing ``latest.pth``, ``best.pth`` and
``config.json`` into one folder silently replace each other's files.  :class:`DirLock` holds an
exclusive, non-blocking ``flock`` on ``<folder>/.vlwm.lock`` for as long as the run lives; the
kernel drops it when the process ends, however it ends (``kill -9`` included), so a lock is never
stale.  The file records the holder's PID and command line to name it in the refusal.

POSIX only (``fcntl``), like the rest of the package's process handling.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

LOCK_FILE = ".vlwm.lock"
"""Name of the lock file inside the locked folder."""


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock; the message names the folder, that process and the fix."""


class DirLock:
    """An exclusive lock on ``folder`` (created if missing), held until :meth:`release`.

    Use as a context manager, or call :meth:`acquire` / :meth:`release`.  Raises
    :class:`FolderBusyError` at once when another process holds it (no waiting).
    """

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "DirLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise FolderBusyError(
                f"{self.folder}: this {self.what} is in use by another process ({holder}); wait for it to "
                f"finish or stop it, or choose another {self.what}") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "argv": sys.argv}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 65536, 0) or b"{}")
            return f"PID {info['pid']}: {' '.join(map(str, info.get('argv', [])))}".strip()
        except (ValueError, KeyError, OSError):
            return "PID unknown"

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["DirLock", "FolderBusyError", "LOCK_FILE"]
