"""Bird's-eye maps: occupancy grids with trajectories and the ego, lidar points.

The grid's BEV itself (top-most occupied class of each column) is :func:`vlwm.gt.bev.bev_image`.
Image orientation (every BEV here): x forward points up the image, y left points left, so the ego
(grid-frame origin) sees the map as a driver would.  Grid ``[i, j]`` maps to image row
``X - 1 - i`` and column ``Y - 1 - j``; metres map to pixels through :func:`metres_to_pixels`.
"""

from __future__ import annotations

import numpy as np

from vlwm.gt.bev import bev_image
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, OCC3D_PALETTE

LIDAR_UNLABELLED = np.array([90, 90, 90], np.uint8)   #: colour of lidar points without a class
LIDAR_LABEL_COLUMN = 4      #: column of the class id in recorder lidar arrays (x, y, z, intensity, label, ...)
TRUE_COLOUR = (0, 170, 0)   #: ground-truth trajectory
PRED_COLOUR = (220, 0, 0)   #: predicted trajectory
EGO_COLOUR = (0, 0, 0)


def metres_to_pixels(xy: np.ndarray, grid: GridSpec, scale: int) -> np.ndarray:
    """(n, 2) float (column, row) pixel positions of grid-frame points ``xy`` (n, 2) metres in a BEV of ``scale``."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    i = (xy[:, 0] - grid.lower[0]) / grid.size[0]                         # continuous index along x
    j = (xy[:, 1] - grid.lower[1]) / grid.size[1]
    x_n, y_n = grid.shape[0], grid.shape[1]
    return np.stack([(y_n - j) * scale, (x_n - i) * scale], axis=1)


def draw_trajectory(image: np.ndarray, xy: np.ndarray, grid: GridSpec, scale: int,
                    colour: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """A copy of ``image`` with the polyline and points of ``xy`` (n, 2) grid-frame metres drawn on it."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(im)
    px = [tuple(p) for p in metres_to_pixels(xy, grid, scale).tolist()]
    if len(px) > 1:
        draw.line(px, fill=tuple(colour), width=width)
    r = width + 1
    for c, rw in px:
        draw.ellipse([c - r, rw - r, c + r, rw + r], fill=tuple(colour))
    return np.asarray(im)


def draw_ego(image: np.ndarray, grid: GridSpec, scale: int, size_m: float = 4.0) -> np.ndarray:
    """A copy of ``image`` with a triangle at the grid-frame origin pointing forward (+x, up the image)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(image))
    pts = np.array([[size_m / 2, 0.0], [-size_m / 2, size_m / 3], [-size_m / 2, -size_m / 3]])
    ImageDraw.Draw(im).polygon([tuple(p) for p in metres_to_pixels(pts, grid, scale).tolist()],
                               fill=EGO_COLOUR)
    return np.asarray(im)


def bev_map(labels: np.ndarray, grid: GridSpec, scale: int = 2, trajectories=(), ego: bool = True) -> np.ndarray:
    """BEV of ``labels`` with ``trajectories`` — ``[(xy (n, 2) metres, colour), ...]`` — and the ego marker."""
    img = bev_image(labels, scale)
    for xy, colour in trajectories:
        if xy is not None and len(xy):
            img = draw_trajectory(img, xy, grid, scale, colour)
    return draw_ego(img, grid, scale) if ego else img


def lidar_bev(points: np.ndarray, grid: GridSpec, scale: int = 2, palette: np.ndarray = OCC3D_PALETTE,
              free: int = FREE) -> np.ndarray:
    """(X * scale, Y * scale, 3) uint8 BEV of lidar points within the grid's x, y extent.

    Parameters
    ----------
    points : (N, >= 3) float, metres (lidar frame, drawn as if it were the grid frame); column
        :data:`LIDAR_LABEL_COLUMN`, when present, holds the class id used for the colour.
    """
    pts = np.asarray(points)
    h, w = grid.shape[0] * scale, grid.shape[1] * scale
    img = np.full((h, w, 3), 255, np.uint8)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"lidar points must be (N, >= 3), got shape {pts.shape}")
    px = np.floor(metres_to_pixels(pts[:, :2], grid, scale)).astype(np.int64)   # (N, 2) column, row
    ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h) & np.isfinite(pts[:, :2]).all(1)
    if pts.shape[1] > LIDAR_LABEL_COLUMN:
        lab = pts[:, LIDAR_LABEL_COLUMN].astype(np.int64)
        known = (lab >= 0) & (lab < len(palette)) & (lab != free)
        colour = np.where(known[:, None], palette[np.clip(lab, 0, len(palette) - 1)], LIDAR_UNLABELLED)
    else:
        colour = np.broadcast_to(LIDAR_UNLABELLED, (len(pts), 3))
    order = np.argsort(pts[:, 2], kind="stable")                          # higher points drawn last
    order = order[ok[order]]
    img[px[order, 1], px[order, 0]] = colour[order]
    return img
