"""Reading the contents of a recording's frame files for the dataset: ground-truth grids, lidar, images.

The folder layout (names, frame numbering, which folders are recordings), the pose files and the
manifest belong to :mod:`vlwm.io.recording` and :mod:`vlwm.io.manifest`; this module reads what the
dataset needs from the files they name, including those other tools write in the same layout::

    occupancy/NNNNNN_occupancy.vlo    frame file (vlwm.io.occupancy_file): semantics (uint8 ids), masks,
                                      instances (int32 ids + 1 of dynamic objects, 0 = none), T_world_grid;
                                      or the older NNNNNN_occupancy.npz: semantics (uint8 ids) or occupancy
                                      (binary or ids), optional masks and instances
    lidar/NNNNNN_LIDAR.npy            float [N, >= 4]: x, y, z, intensity, ... (lidar frame)
    images/NNNNNN_<CAM>.jpg           six cameras

Files are read one at a time (nothing kept open); frame files through
:mod:`vlwm.io.occupancy_file`, the format's one owner, which reads both names.
:func:`peek_frame` reads only the arrays' headers (shape, dtype) without inflating the data: the
dataset's construction-time checks cost a few hundred microseconds per frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from vlwm.gt.instances import INSTANCES_KEY   # per-voxel instance ids; files written before them lack the key
from vlwm.io import occupancy_file
from vlwm.io.occupancy_file import ArrayInfo as ArrayHeader   # shape and dtype of one stored array

OCC_KEYS = ("semantics", "occupancy")        #: accepted class-id keys, in order of preference
MASK_KEYS = ("mask_lidar", "mask_camera")
LIDAR_COLUMNS_USED = 4                       #: x, y, z, intensity
#: Binary ``occupancy`` files (1 = occupied, no class) map occupied voxels to this label ("others").
UNKNOWN_OCCUPIED_LABEL = 0


def peek_frame(path: Path) -> dict[str, ArrayHeader]:
    """Headers of every array of a frame file, either format (reads headers only).

    Raises ValueError for a file that is not a readable frame file (truncated, corrupt).
    """
    return occupancy_file.peek_frame(path)


def occupancy_key(headers: dict[str, ArrayHeader]) -> str | None:
    """The class-id key a frame file offers (``semantics`` preferred), None if neither."""
    return next((k for k in OCC_KEYS if k in headers), None)


def as_class_ids(arr: np.ndarray, key: str, free: int) -> np.ndarray:
    """(X, Y, Z) uint8 class ids from a stored grid.

    ``semantics`` is used as stored.  ``occupancy`` is binary when it holds no value above 1
    (1 -> :data:`UNKNOWN_OCCUPIED_LABEL`, 0 -> ``free``), else class ids.  Float or bool arrays of
    whole values (older tools wrote float32 grids) are accepted; fractions are an error.
    """
    if arr.dtype == np.uint8 and key == "semantics":
        return arr
    if arr.dtype.kind == "f":
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{key}: float grid holds non-integer values")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{key}: values outside 0..255 ({arr.min()}..{arr.max()})")
    ids = arr.astype(np.uint8)
    if key == "occupancy" and (not ids.size or ids.max() <= 1):
        return np.where(ids > 0, np.uint8(UNKNOWN_OCCUPIED_LABEL), np.uint8(free))
    return ids


class FrameArrays(NamedTuple):
    """One frame file's grids, as :func:`read_frame` returns them (all indexed [x, y, z], grid frame).

    semantics : (X, Y, Z) uint8 class ids.
    mask_lidar, mask_camera : (X, Y, Z) bool, or None when not asked for.
    instances : (X, Y, Z) int32 instance ids (0 = none), or None when not asked for or not in the file.
    """

    semantics: np.ndarray
    mask_lidar: np.ndarray | None
    mask_camera: np.ndarray | None
    instances: np.ndarray | None


def read_frame(path: Path, free: int, masks: bool, instances: bool = False,
               out: FrameArrays | None = None) -> FrameArrays:
    """One frame file: class ids, and what is asked for of the masks and the instance grid.

    A file without masks gives all-True masks (nothing known to be unobserved); a file without
    ``instances`` (written before instance ids existed) gives None for them.  With ``out`` (arrays
    of the grid's shape: uint8 semantics, bool masks, int32 instances; None for what is not asked),
    the frame is decoded straight into those arrays (``.vlo`` files) or copied there, and they are
    returned; ``out.instances`` is left untouched for a file without instances.
    """
    names = [occupancy_file.SEMANTICS]
    if masks:
        names += MASK_KEYS
    if instances:
        names.append(INSTANCES_KEY)
    dst = {} if out is None else {k: v for k, v in zip((occupancy_file.SEMANTICS, *MASK_KEYS, INSTANCES_KEY), out)
                                  if v is not None}
    got = occupancy_file.read_frame(path, names, out=dst)
    key = occupancy_file.SEMANTICS
    if key not in got:
        key = occupancy_file.OCCUPANCY
        got.update(occupancy_file.read_frame(path, [key]))
        if key not in got:
            raise ValueError(f"{path}: none of the keys {OCC_KEYS} (has {sorted(occupancy_file.peek_frame(path))})")
    sem = as_class_ids(got[key], key, free)
    ml = mc = inst = None
    if masks:
        ml, mc = (got[k] if k in got else np.ones(sem.shape, np.uint8) for k in MASK_KEYS)
        ml, mc = (m if m.dtype == np.bool_ else m.astype(bool) for m in (ml, mc))
    if instances and INSTANCES_KEY in got:
        inst = got[INSTANCES_KEY]
        if inst.shape != sem.shape or inst.dtype.kind not in "iu":
            raise ValueError(f"{path}: {INSTANCES_KEY} is {inst.dtype} {inst.shape}, expected integers of the "
                             f"class grid's shape {sem.shape}")
        inst = inst.astype(np.int32, copy=False)
    arrays = FrameArrays(sem, ml, mc, inst)
    if out is None:
        return arrays
    for dest, src in zip(out, arrays):
        if dest is not None and src is not None and src is not dest:
            if src.shape != dest.shape:
                raise ValueError(f"{path}: grid shape {src.shape}, expected {dest.shape}")
            np.copyto(dest, src)
    return FrameArrays(out.semantics, out.mask_lidar if masks else None, out.mask_camera if masks else None,
                       out.instances if inst is not None else None)


def read_occupancy(path: Path, free: int, masks: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One frame: (X, Y, Z) uint8 class ids, and (with ``masks``) the two (X, Y, Z) bool masks.

    A file without masks gives all-True masks (nothing known to be unobserved).
    """
    return read_frame(path, free, masks)[:3]


def read_lidar(path: Path) -> np.ndarray:
    """(N, 4) float32 x, y, z, intensity (lidar frame) from a ``[N, >= 4]`` float array."""
    pts = np.load(path, allow_pickle=False)
    if pts.ndim != 2 or pts.shape[1] < LIDAR_COLUMNS_USED:
        raise ValueError(f"{path}: expected a [N, >= {LIDAR_COLUMNS_USED}] array, got shape {pts.shape}")
    return np.ascontiguousarray(pts[:, :LIDAR_COLUMNS_USED], dtype=np.float32)


def peek_npy(path: Path) -> ArrayHeader:
    """Shape and dtype of an ``.npy`` file from its header."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable npy ({type(exc).__name__}: {exc})") from None
    return ArrayHeader(tuple(shape), np.dtype(dtype))


def read_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W, 3) uint8 RGB, resized (bilinear) to ``size = (width, height)`` when given."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != tuple(size):
            im = im.resize(tuple(size), Image.BILINEAR)
        return np.asarray(im, np.uint8)


def image_size_of(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file (header only)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size
