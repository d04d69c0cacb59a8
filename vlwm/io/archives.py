"""Safe zip extraction: no member may leave the destination folder, not even one inside an inner zip.

A member is refused (:class:`UnsafeArchiveError`, nothing extracted) when its name is absolute
(``/x``, ``C:\\x``, ``\\\\server``), contains a ``..`` component, or is a symbolic link (Unix mode in
``external_attr``).  Every member is checked before the first byte is written.  ``select`` maps a
member name to the relative path to write it at, or None to skip it; the result is checked again
against the destination.

Nested archives (``nested=True``): a member whose name ends in ``.zip`` is not written but opened
as an archive of its own (one level deep).  Its members are named as if the inner zip were a folder
(``a/b.zip`` holding ``udx/bldg/x.gml`` is seen as ``a/b/udx/bldg/x.gml``), pass the same checks and
the same ``select``.  Inner zips are copied to a scratch folder under the destination
(:data:`SCRATCH_DIRNAME`, removed afterwards) and all of their members are checked too before
anything is written to the destination.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from vlwm.io.atomic import atomic_write

SelectFn = Callable[[str], "str | None"]
SCRATCH_DIRNAME = ".nested-zips"
"""Folder under the destination where inner zips are copied while they are read."""
COPY_BLOCK = 1 << 20
"""Bytes per read/write while copying a member (1 MiB)."""


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


def is_inner_zip(name: str) -> bool:
    """True when member ``name`` is read as a nested archive (``nested=True``)."""
    return name.lower().endswith(".zip")


def inner_folder(name: str) -> str:
    """The folder name an inner zip's members are seen under (``a/b.zip`` -> ``a/b``)."""
    return name[:-len(".zip")]


def safe_extract_zip(archive: str | os.PathLike, dest: str | os.PathLike,
                     select: SelectFn | None = None, nested: bool = False) -> list[Path]:
    """Extract the selected files of ``archive`` (and of its inner zips when ``nested``) under ``dest``.

    Returns the paths written or kept.  A file already present with the member's size is kept (an
    interrupted extraction resumes).  Files are written atomically (:mod:`vlwm.io.atomic`: a temporary
    file beside the target, renamed when complete).
    Raises :class:`UnsafeArchiveError` (nothing written) or ValueError for an unreadable archive.
    """
    archive, dest = Path(archive), Path(dest)
    root = dest.resolve()
    scratch = root / SCRATCH_DIRNAME
    opened: list[zipfile.ZipFile] = []
    try:
        zf = _open_zip(archive, str(archive))
        opened.append(zf)
        plan, inner = _plan(zf, str(archive), root, select, nested)
        plans = [(zf, plan)]
        for k, info in enumerate(inner):
            label = f"{archive}!{info.filename}"
            copy = _copy_member(zf, info, scratch / f"{k}.zip")
            izf = _open_zip(copy, label)
            opened.append(izf)
            folder = inner_folder(info.filename.replace("\\", "/"))
            iplan, _ = _plan(izf, label, root, _prefixed(folder, select), nested=False)
            plans.append((izf, iplan))
        written = []
        for source, items in plans:                 # every member of every archive was checked above
            for info, target in items:
                _write(source, info, target)
                written.append(target)
        return written
    finally:
        for z in opened:
            z.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _open_zip(path: Path, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise ValueError(f"{label} is not a readable zip archive ({err}): the file is truncated or damaged; "
                         "delete it and download it again") from None


def _prefixed(folder: str, select: SelectFn | None) -> SelectFn:
    """``select`` for the members of an inner zip seen under ``folder``."""
    def pick(name: str) -> str | None:
        full = f"{folder}/{name}"
        return select(full) if select else full
    return pick


def _plan(zf: zipfile.ZipFile, label: str, root: Path, select: SelectFn | None,
          nested: bool) -> tuple[list[tuple[zipfile.ZipInfo, Path]], list[zipfile.ZipInfo]]:
    """(member, target) pairs to write, and the inner zips to open; raises on any unsafe member."""
    plan: list[tuple[zipfile.ZipInfo, Path]] = []
    inner: list[zipfile.ZipInfo] = []
    for info in zf.infolist():
        problem = member_problem(info)
        if problem:
            raise UnsafeArchiveError(f"{label}: member {info.filename!r} refused ({problem}); nothing "
                                     "was extracted.  The archive is damaged or not the official one.")
        if info.is_dir():
            continue
        name = info.filename.replace("\\", "/")
        if nested and is_inner_zip(name):
            inner.append(info)
            continue
        rel = select(name) if select else name
        if rel is None:
            continue
        target = (root / rel).resolve()
        if target != root and root not in target.parents:
            raise UnsafeArchiveError(f"{label}: member {info.filename!r} would be written at {target}, "
                                     f"outside {root}; nothing was extracted")
        plan.append((info, target))
    return plan, inner


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Path:
    """Copy one member to ``path`` (scratch) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(path, "wb") as out:
        shutil.copyfileobj(src, out, COPY_BLOCK)
    return path


def _write(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Write one member at ``target`` unless a file of the member's size is already there."""
    if target.is_file() and target.stat().st_size == info.file_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src:
        atomic_write(target, lambda out: shutil.copyfileobj(src, out, COPY_BLOCK))
