"""Safe zip extraction: no member may leave the destination folder.

A member is refused (:class:`UnsafeArchiveError`, nothing extracted) when its name is absolute
(``/x``, ``C:\\x``, ``\\\\server``), contains a ``..`` component, or is a symbolic link (Unix mode in
``external_attr``).  Every member is checked before the first byte is written.  ``select`` maps a
member name to the relative path to write it at, or None to skip it; the result is checked again
against the destination.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

SelectFn = Callable[[str], "str | None"]


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination folder."""


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why ``info`` may not be extracted, or None when it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' component (path traversal)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def safe_extract_zip(archive: str | os.PathLike, dest: str | os.PathLike,
                     select: SelectFn | None = None) -> list[Path]:
    """Extract the selected files of ``archive`` under ``dest``; return the paths written or kept.

    A file already present with the member's size is kept (an interrupted extraction resumes).
    Files are written to ``<path>.part`` and renamed when complete.
    """
    archive, dest = Path(archive), Path(dest)
    root = dest.resolve()
    plan: list[tuple[zipfile.ZipInfo, Path]] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            problem = member_problem(info)
            if problem:
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} refused ({problem}); nothing "
                                         "was extracted.  The archive is damaged or not the official one.")
            if info.is_dir():
                continue
            rel = select(info.filename.replace("\\", "/")) if select else info.filename
            if rel is None:
                continue
            target = (root / rel).resolve()
            if target != root and root not in target.parents:
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} would be written at {target}, "
                                         f"outside {root}; nothing was extracted")
            plan.append((info, target))
        written = []
        for info, target in plan:
            if not (target.is_file() and target.stat().st_size == info.file_size):
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_name(target.name + ".part")
                with zf.open(info) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(part, target)
            written.append(target)
    return written
