"""Bird's-eye view of an occupancy grid: the top-most occupied class of each column, in colour.

Image orientation: x forward points up the image and y left points left, so the ego (grid-frame
origin) sees the map as a driver would; grid ``[i, j]`` is image row ``X - 1 - i``, column
``Y - 1 - j``.  Used by training's validation images (:mod:`vlwm.train.validation`) and the
figures and videos of :mod:`vlwm.viz` (which add scale, trajectories and lidar).
"""

from __future__ import annotations

import numpy as np

from vlwm.labels import FREE, OCC3D_PALETTE

HEIGHT_SHADE_MIN = 0.65     #: brightness of the lowest voxel layer when shading by height (top layer = 1)


def bev_classes(labels: np.ndarray, free: int = FREE) -> tuple[np.ndarray, np.ndarray]:
    """Top-most occupied class of each column.

    Parameters
    ----------
    labels : (X, Y, Z) integer class ids, grid frame.

    Returns
    -------
    classes : (X, Y) uint8 class of the highest non-free voxel, ``free`` for empty columns.
    height : (X, Y) int64 z index of that voxel, -1 for empty columns.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be an (X, Y, Z) grid, got shape {labels.shape}")
    occ = labels[..., ::-1] != free                                       # (X, Y, Z), top layer first
    first = np.argmax(occ, axis=2)                                        # (X, Y) index from the top
    any_occ = occ.any(axis=2)
    height = np.where(any_occ, labels.shape[2] - 1 - first, -1)
    classes = np.take_along_axis(labels, np.maximum(height, 0)[..., None], axis=2)[..., 0]
    return np.where(any_occ, classes, free).astype(np.uint8), height


def bev_image(labels: np.ndarray, scale: int = 2, height_shading: bool = True,
              palette: np.ndarray = OCC3D_PALETTE, free: int = FREE) -> np.ndarray:
    """(X * scale, Y * scale, 3) uint8 BEV map of ``labels`` (X, Y, Z) class ids; empty columns are
    the free colour; with ``height_shading`` lower tops are darker (down to :data:`HEIGHT_SHADE_MIN`)."""
    classes, height = bev_classes(labels, free)
    rgb = palette[classes].astype(np.float32)                             # (X, Y, 3)
    if height_shading:
        z = max(labels.shape[2] - 1, 1)
        shade = HEIGHT_SHADE_MIN + (1 - HEIGHT_SHADE_MIN) * np.clip(height, 0, None) / z
        rgb = np.where((height >= 0)[..., None], rgb * shade[..., None], rgb)
    img = rgb.astype(np.uint8)[::-1, ::-1]                                # x up, y left
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
