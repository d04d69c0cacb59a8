"""The one atomic file write of the package: a temporary file beside the target, then a rename.

Every writer of a file another process (or a resumed run) may read goes through here: the
recording (images, lidar, poses, ``sequence.json``), the ground-truth frame files, scenes and
their exports, videos, checkpoints and the download lock file.  The steps are always the same:

1. create ``.<name>.<random><suffix>`` in the target's folder (same file system, so the rename is
   atomic);
2. let the caller fill it (through a binary file object, or by path for tools that open files
   themselves, such as ffmpeg);
3. make it world-readable (``0644``; ``mkstemp`` creates ``0600``) and ``os.replace`` it over the
   target; with ``durable=True`` first flush it to disk (``fsync``).

The rename alone makes a write atomic for every reader and against a killed process (the kernel
has the data before the name).  ``fsync`` adds durability across a power loss or a kernel crash, at
~5 ms a file on this project's VMs: a recording writes ~20 files a frame and a frame file must cost
≤ 20 ms, so the data path does not pay it; checkpoints and the download lock (one file per epoch or
per download, expensive to redo) do (``durable=True``).

When the caller raises (or the process is interrupted), the temporary file is removed and the
target keeps its previous content: a reader sees the old file or the new one, never a part.
Temporary names start with a dot and end with :data:`TEMP_SUFFIX` by default, so a resumed
writer can recognise and delete the leftovers of a killed process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, BinaryIO, Callable, Iterator

TEMP_SUFFIX = ".tmp"
"""Default ending of the temporary files (``.<name>.<random>.tmp``)."""
FILE_MODE = 0o644
"""Permissions of every written file: readable by other users (e.g. Gazebo in a container)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = TEMP_SUFFIX, durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``; it replaces ``path`` when the block ends without an error.

    For writers that open the file themselves (ffmpeg, Pillow's multi-frame GIF): give ``suffix``
    the extension they need (e.g. ``".tmp.mp4"``).  The file exists (empty) when the block starts.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                newline: str | None = None, durable: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing (``mode`` ``'wb'`` or ``'w'``); it
    replaces ``path`` when the block ends without an error."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes a new file: mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as fh:
            yield fh


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], durable: bool = False) -> Path:
    """Write ``path`` through ``write(fh)`` (``fh`` a binary file) atomically; returns ``path``."""
    with atomic_open(path, "wb", durable=durable) as fh:
        write(fh)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda fh: fh.write(data), durable=durable)


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 2, trailing_newline: bool = False,
                      durable: bool = False) -> Path:
    """Write ``json.dumps(obj, indent=indent)`` (UTF-8; plus ``\\n`` with ``trailing_newline``) atomically."""
    text = json.dumps(obj, indent=indent) + ("\n" if trailing_newline else "")
    return atomic_write_bytes(path, text.encode(), durable=durable)


__all__ = ["FILE_MODE", "TEMP_SUFFIX", "atomic_open", "atomic_path", "atomic_write", "atomic_write_bytes",
           "atomic_write_json"]
