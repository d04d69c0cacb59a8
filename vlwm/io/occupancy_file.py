"""The per-frame ground-truth occupancy file: the one owner of its format (write, read, detect).

A frame file (``occupancy/NNNNNN_occupancy.vlo``) holds one frame's grids, indexed ``[x, y, z]``
in the frame's grid frame:

==================  ===========================  ===============================================
array               shape, dtype                 stored as
==================  ===========================  ===============================================
``semantics``       (X, Y, Z) uint8 label ids    one zstd frame
``mask_lidar``      (X, Y, Z) uint8, 1 = seen    bits (``np.packbits``, C order) in one zstd frame
``mask_camera``     (X, Y, Z) uint8, 1 = seen    as ``mask_lidar``
``instances``       (X, Y, Z) int32, 0 = none    sparse: flat C-order indices (uint32, or uint64 for
                                                 grids of 2**32 voxels and more) and their ids (int32),
                                                 two zstd frames; optional
``T_world_grid``    (4, 4) float64               in the JSON header (``repr`` floats round-trip exactly)
``occupancy``       (X, Y, Z) uint8, 1 = not     not stored: derived on read as ``semantics != free``
                    free
==================  ===========================  ===============================================

Layout: 8 magic bytes :data:`MAGIC`, the header length and the header's CRC-32 (two little-endian
uint32), the header (UTF-8 JSON: format, version, shape, free label, ``T_world_grid`` and, per
array, its encoding and the offset and size of its chunks after the header), then the chunks.  Each
chunk is a standard zstd frame (RFC 8878) with its content size and xxHash64 checksum, so damage
anywhere is detected on read; a truncated file is detected from the header's sizes.  A reader
decodes only the arrays it asks for (semantics alone is the fast path) and can decode straight into
caller-owned buffers (:func:`read_frame` ``out=``).  No pickle anywhere.  The same input always gives
the same bytes (the zstd level and the JSON layout are fixed).

Older frame files, ``NNNNNN_occupancy.npz`` (``np.savez_compressed``: the arrays above with
``occupancy`` stored and ``instances`` dense), read through the same functions
(:func:`read_frame`, :func:`peek_frame`; the format is detected from the first bytes), and
:func:`find_frame` / :func:`list_frames` find either name, preferring the new one.  ``vlwm data
convert`` rewrites a tree of them (:mod:`vlwm.data.convert`).

This module stands beside the pipeline's layers (``vlwm/io``): it imports none of them.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

import numpy as np
import zstandard

from vlwm.io.atomic import atomic_write

FORMAT, VERSION = "vlwm-occupancy-frame", 1
MAGIC = b"\x89VLWMOC\n"                 #: first 8 bytes (a high byte and a newline catch text-mode mangling)
NPZ_MAGIC = b"PK\x03\x04"               #: the older ``.npz`` files are zip archives
SUFFIX, LEGACY_SUFFIX = "_occupancy.vlo", "_occupancy.npz"
ZSTD_LEVEL = 1                          #: fastest standard level; higher levels gain < 10 % size here
_PREAMBLE = struct.Struct("<8sII")      # magic, header length, header CRC-32
_FRAME_FILE = re.compile(r"^(\d{6})_occupancy\.(vlo|npz)$")

SEMANTICS, MASK_LIDAR, MASK_CAMERA, INSTANCES, TRANSFORM, OCCUPANCY = (
    "semantics", "mask_lidar", "mask_camera", "instances", "T_world_grid", "occupancy")
GRID_ARRAYS = (SEMANTICS, MASK_LIDAR, MASK_CAMERA, INSTANCES)      #: (X, Y, Z) arrays a file may store
ALL_ARRAYS = (SEMANTICS, MASK_LIDAR, MASK_CAMERA, OCCUPANCY, TRANSFORM, INSTANCES)
#: Errors a damaged or foreign file raises while it is read (besides FrameFileError).
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, zstandard.ZstdError)


class FrameFileError(ValueError):
    """A frame file that is not readable: wrong format, damaged, truncated or inconsistent."""


class ArrayInfo(NamedTuple):
    """Shape and dtype of one array of a frame file (read from headers only)."""

    shape: tuple[int, ...]
    dtype: np.dtype


# ------------------------------------------------------------------------------ names


def frame_name(index: int, legacy: bool = False) -> str:
    """``NNNNNN_occupancy.vlo`` (or the older ``.npz`` name) of 1-based frame ``index``."""
    return f"{int(index):06d}{LEGACY_SUFFIX if legacy else SUFFIX}"


def frame_path(folder: str | os.PathLike, index: int) -> Path:
    """Where frame ``index`` is written in ``folder`` (the current format)."""
    return Path(folder) / frame_name(index)


def find_frame(folder: str | os.PathLike, index: int) -> Path | None:
    """The file of frame ``index`` in ``folder``: the ``.vlo`` one, else an older ``.npz``, else None."""
    for legacy in (False, True):
        path = Path(folder) / frame_name(index, legacy)
        if path.is_file():
            return path
    return None


def list_frames(folder: str | os.PathLike) -> dict[int, Path]:
    """Frame number -> file of every frame file in ``folder`` (``.vlo`` preferred where both exist)."""
    out: dict[int, Path] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        m = _FRAME_FILE.match(p.name)
        if m and (m.group(2) == "vlo" or int(m.group(1)) not in out):
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def is_legacy(path: str | os.PathLike) -> bool:
    """True for an older ``np.savez_compressed`` frame file (by its first bytes, not its name)."""
    with open(path, "rb") as fh:
        return fh.read(len(NPZ_MAGIC)) == NPZ_MAGIC


# ------------------------------------------------------------------------------ writing


def _write_parts(path: Path, parts: Iterable[bytes]) -> Path:
    """Write ``parts`` to ``path`` through the package's one atomic writer (:mod:`vlwm.io.atomic`)."""
    return atomic_write(path, lambda fh: [fh.write(part) for part in parts])


def _grid(name: str, arr, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(arr)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"write_frame: {name} has shape {arr.shape}, semantics {shape}")
    return np.ascontiguousarray(arr)


def encode_frame(semantics: np.ndarray, *, free: int, T_world_grid: np.ndarray, mask_lidar: np.ndarray | None = None,
                 mask_camera: np.ndarray | None = None, instances: np.ndarray | None = None) -> list[bytes]:
    """The bytes of a frame file (see the module docstring), as a list of parts to concatenate.

    Parameters
    ----------
    semantics : (X, Y, Z) uint8 label ids.
    free : int, the free label (``occupancy`` = ``semantics != free`` on read).
    T_world_grid : (4, 4) float, grid frame -> world.
    mask_lidar, mask_camera : (X, Y, Z) uint8 (0/1 stored as bits; other values stored whole), or None.
    instances : (X, Y, Z) integer ids with values in int32 (0 = none), or None (no instances array).
    """
    sem = np.asarray(semantics)
    if sem.dtype != np.uint8 or sem.ndim != 3:
        raise ValueError(f"write_frame: semantics must be (X, Y, Z) uint8, got {sem.dtype} {sem.shape}")
    sem = np.ascontiguousarray(sem)
    t = np.asarray(T_world_grid, np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ValueError(f"write_frame: T_world_grid must be a finite 4x4 matrix, got shape {t.shape}")
    if not 0 <= int(free) <= 255:
        raise ValueError(f"write_frame: free label {free} is not a uint8 value")
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True)
    chunks: list[bytes] = []
    arrays: dict[str, dict] = {}

    def chunk(data) -> dict:
        blob = cctx.compress(memoryview(data).cast("B"))
        entry = {"offset": sum(len(c) for c in chunks), "size": len(blob)}
        chunks.append(blob)
        return entry

    arrays[SEMANTICS] = {"encoding": "zstd", "dtype": "uint8", **chunk(sem)}
    for name, mask in ((MASK_LIDAR, mask_lidar), (MASK_CAMERA, mask_camera)):
        if mask is None:
            continue
        m = _grid(name, mask, sem.shape)
        if m.dtype not in (np.uint8, np.bool_):
            raise ValueError(f"write_frame: {name} must be uint8 (0/1) or bool, got {m.dtype}")
        m = m.view(np.uint8)
        if int(m.max(initial=0)) <= 1:
            arrays[name] = {"encoding": "zstd-bits", "dtype": "uint8", **chunk(np.packbits(m.reshape(-1)))}
        else:
            arrays[name] = {"encoding": "zstd", "dtype": "uint8", **chunk(m)}
    if instances is not None:
        inst = _grid(INSTANCES, instances, sem.shape)
        if inst.dtype.kind not in "iu":
            raise ValueError(f"write_frame: instances must be integers, got {inst.dtype}")
        flat = inst.reshape(-1)
        where = np.flatnonzero(flat != 0)                  # bool first: 5x faster than on int32
        ids = flat[where]
        if ids.size and (ids.min() < np.iinfo(np.int32).min or ids.max() > np.iinfo(np.int32).max):
            raise ValueError(f"write_frame: instance ids {ids.min()}..{ids.max()} do not fit int32")
        index_dtype = np.uint32 if flat.size <= 2 ** 32 else np.uint64
        arrays[INSTANCES] = {"encoding": "zstd-sparse", "dtype": "int32", "count": int(where.size),
                             "index_dtype": np.dtype(index_dtype).name,
                             "index": chunk(where.astype(index_dtype)), "values": chunk(ids.astype(np.int32))}
    header = {"format": FORMAT, "version": VERSION, "shape": list(sem.shape), "free": int(free),
              TRANSFORM: [[float(v) for v in row] for row in t], "arrays": arrays}
    head = json.dumps(header, separators=(",", ":")).encode()
    return [_PREAMBLE.pack(MAGIC, len(head), zlib.crc32(head)), head, *chunks]


def write_frame(path: str | os.PathLike, semantics: np.ndarray, *, free: int, T_world_grid: np.ndarray,
                mask_lidar: np.ndarray | None = None, mask_camera: np.ndarray | None = None,
                instances: np.ndarray | None = None) -> Path:
    """Write one frame file atomically (temporary file, then rename); arguments as :func:`encode_frame`."""
    parts = encode_frame(semantics, free=free, T_world_grid=T_world_grid, mask_lidar=mask_lidar,
                         mask_camera=mask_camera, instances=instances)
    return _write_parts(Path(path), parts)


# ------------------------------------------------------------------------------ reading


class _Parsed(NamedTuple):
    header: dict
    data: memoryview      # everything after the header


def _parse(path: Path, blob: bytes) -> _Parsed:
    if len(blob) < _PREAMBLE.size or blob[:8] != MAGIC:
        raise FrameFileError(f"{path}: not a frame file (no {FORMAT} signature)")
    _, n, crc = _PREAMBLE.unpack_from(blob)
    head = blob[_PREAMBLE.size:_PREAMBLE.size + n]
    if len(head) != n or zlib.crc32(head) != crc:
        raise FrameFileError(f"{path}: damaged or truncated header")
    header = json.loads(head)
    if header.get("format") != FORMAT or not isinstance(header.get("version"), int):
        raise FrameFileError(f"{path}: not a {FORMAT} header")
    if header["version"] > VERSION:
        raise FrameFileError(f"{path}: frame file version {header['version']} is newer than this vlwm reads "
                             f"({VERSION}); update vlwm")
    data = memoryview(blob)[_PREAMBLE.size + n:]
    need = max([e["offset"] + e["size"] for a in header["arrays"].values()
                for e in ([a["index"], a["values"]] if "index" in a else [a])], default=0)
    if len(data) < need:
        raise FrameFileError(f"{path}: truncated ({len(blob)} bytes, the header describes {need + len(blob) - len(data)})")
    return _Parsed(header, data)


def _decompress_into(path: Path, name: str, chunk: memoryview, out: np.ndarray) -> None:
    """Decode one zstd frame into ``out`` (contiguous, exactly the decoded size); checks size and checksum."""
    target = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    with zstandard.ZstdDecompressor().stream_reader(chunk, read_across_frames=False) as reader:
        while got < len(target):
            n = reader.readinto(target[got:])
            if not n:
                break
            got += n
        extra = reader.read(1)
    if got != len(target) or extra:
        raise FrameFileError(f"{path}: {name} decodes to {got}{'+' if extra else ''} bytes, expected {len(target)}")


def _chunk(parsed: _Parsed, entry: dict) -> memoryview:
    return parsed.data[entry["offset"]:entry["offset"] + entry["size"]]


def _decode(path: Path, parsed: _Parsed, name: str, out: np.ndarray | None) -> np.ndarray:
    """One stored array of a ``.vlo`` file, into ``out`` when given (shape (X, Y, Z), any 1-byte dtype for
    masks and semantics, int32 for instances)."""
    shape = tuple(parsed.header["shape"])
    entry = parsed.header["arrays"][name]
    enc = entry["encoding"]
    if out is not None and out.shape != shape:
        raise FrameFileError(f"{path}: grid shape {shape}, expected {out.shape}")
    if out is not None and not out.flags.c_contiguous:
        raise ValueError(f"read_frame: out[{name!r}] must be C-contiguous")
    if enc == "zstd":
        if out is None:
            out = np.empty(shape, np.uint8)
        elif out.dtype.itemsize != 1:
            raise ValueError(f"read_frame: out[{name!r}] must have a 1-byte dtype, got {out.dtype}")
        _decompress_into(path, name, _chunk(parsed, entry), out)
        return out
    if enc == "zstd-bits":
        n = int(np.prod(shape))
        bits = np.empty((n + 7) // 8, np.uint8)
        _decompress_into(path, name, _chunk(parsed, entry), bits)
        flat = np.unpackbits(bits, count=n)
        if out is None:
            return flat.reshape(shape)
        if out.dtype.itemsize != 1:
            raise ValueError(f"read_frame: out[{name!r}] must have a 1-byte dtype, got {out.dtype}")
        np.copyto(out.reshape(-1).view(np.uint8), flat)
        return out
    if enc == "zstd-sparse":
        count = int(entry["count"])
        where = np.empty(count, np.dtype(entry["index_dtype"]))
        ids = np.empty(count, np.int32)
        _decompress_into(path, name + " index", _chunk(parsed, entry["index"]), where)
        _decompress_into(path, name + " values", _chunk(parsed, entry["values"]), ids)
        if count and int(where.max()) >= int(np.prod(shape)):
            raise FrameFileError(f"{path}: {name} index out of the grid")
        if out is None:
            out = np.zeros(shape, np.int32)
        else:
            if out.dtype != np.int32:
                raise ValueError(f"read_frame: out[{name!r}] must be int32, got {out.dtype}")
            out.fill(0)
        out.reshape(-1)[where] = ids
        return out
    raise FrameFileError(f"{path}: {name} has an unknown encoding {enc!r} (written by a newer vlwm?)")


def _read_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in names if name in z.files}


def read_frame(path: str | os.PathLike, arrays: Iterable[str] = ALL_ARRAYS, *,
               out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The asked-for arrays of a frame file (either format), those the file has; others are left out.

    Parameters
    ----------
    path : a ``.vlo`` frame file or an older ``.npz`` one (detected from the first bytes).
    arrays : names among :data:`ALL_ARRAYS`; ``occupancy`` of a ``.vlo`` file is derived from
        ``semantics`` and its ``free`` label.  Only these are decoded.
    out : optional name -> preallocated C-contiguous (X, Y, Z) array to decode a ``.vlo`` file's array
        into (uint8 or bool for semantics, masks and occupancy; int32 for instances); the returned dict
        then holds those same arrays.  An ``.npz`` file's arrays are returned as stored (new arrays,
        their stored dtypes): callers that pass ``out`` copy what is not already there.

    Raises FileNotFoundError for a missing file and :class:`FrameFileError` (a ValueError) naming the
    file for one that is not a frame file, is damaged or truncated.
    """
    path = Path(path)
    names = tuple(arrays)
    unknown = [n for n in names if n not in ALL_ARRAYS]
    if unknown:
        raise ValueError(f"read_frame: unknown arrays {unknown}; known: {list(ALL_ARRAYS)}")
    out = out or {}
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such frame file") from None
    if blob[:4] == NPZ_MAGIC:
        try:
            return _read_npz(path, names)
        except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise FrameFileError(f"{path}: damaged npz frame file ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise FrameFileError(f"{path}: damaged npz frame file ({exc})") from None
    try:
        parsed = _parse(path, blob)
        stored = parsed.header["arrays"]
        result: dict[str, np.ndarray] = {}
        for name in names:
            if name == TRANSFORM:
                result[name] = np.asarray(parsed.header[TRANSFORM], np.float64).reshape(4, 4)
            elif name == OCCUPANCY:
                sem = result[SEMANTICS] if SEMANTICS in result else _decode(path, parsed, SEMANTICS, None)
                dst = out.get(OCCUPANCY)
                if dst is None:
                    result[name] = (sem != parsed.header["free"]).view(np.uint8)
                else:
                    np.not_equal(sem, parsed.header["free"], out=dst.view(np.bool_))
                    result[name] = dst
            elif name in stored:
                result[name] = _decode(path, parsed, name, out.get(name))
        return result
    except FrameFileError:
        raise
    except (KeyError, TypeError, zstandard.ZstdError, json.JSONDecodeError, struct.error) as exc:
        raise FrameFileError(f"{path}: damaged frame file ({type(exc).__name__}: {exc})") from None


def peek_frame(path: str | os.PathLike) -> dict[str, ArrayInfo]:
    """Shapes and dtypes of the arrays a frame file offers, from its header only (either format).

    A ``.vlo`` file lists ``occupancy`` (derived) and ``T_world_grid`` as well; an older ``.npz`` lists
    what it stores.  Raises :class:`FrameFileError` for a file that is not a readable frame file.
    """
    path = Path(path)
    if is_legacy(path):
        return _peek_npz(path)
    with open(path, "rb") as fh:
        pre = fh.read(_PREAMBLE.size)
        if len(pre) < _PREAMBLE.size or pre[:8] != MAGIC:
            raise FrameFileError(f"{path}: not a frame file (no {FORMAT} signature and not an npz)")
        n = _PREAMBLE.unpack(pre)[1]
        head = fh.read(n)
        size = os.fstat(fh.fileno()).st_size
    try:
        if len(head) != n or zlib.crc32(head) != _PREAMBLE.unpack(pre)[2]:
            raise FrameFileError(f"{path}: damaged or truncated header")
        header = json.loads(head)
        shape = tuple(int(v) for v in header["shape"])
        entries = header["arrays"]
        need = max([e["offset"] + e["size"] for a in entries.values()
                    for e in ([a["index"], a["values"]] if "index" in a else [a])], default=0)
        if size < _PREAMBLE.size + n + need:
            raise FrameFileError(f"{path}: truncated ({size} bytes, the header describes {_PREAMBLE.size + n + need})")
        out = {name: ArrayInfo(shape, np.dtype(e["dtype"])) for name, e in entries.items()}
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FrameFileError):
            raise
        raise FrameFileError(f"{path}: damaged frame file header ({type(exc).__name__}: {exc})") from None
    out[OCCUPANCY] = ArrayInfo(shape, np.dtype(np.uint8))
    out[TRANSFORM] = ArrayInfo((4, 4), np.dtype(np.float64))
    return out


def _peek_npz(path: Path) -> dict[str, ArrayInfo]:
    """Headers of every array of an ``.npz`` (the zip directory and each ``.npy`` header only)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)
                out[info.filename[:-4]] = ArrayInfo(tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FrameFileError(f"{path}: corrupt or truncated npz ({type(exc).__name__}: {exc})") from None
    return out
