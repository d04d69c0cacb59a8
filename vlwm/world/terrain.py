"""Terrain height: a regular height field over the scene, queried by bilinear interpolation.

Frame: local ENU, metres.  ``heights[j, i]`` is the ground height at
``(x0 + i * resolution, y0 + j * resolution)``; queries outside the grid clamp to its edge.

Built flat (:meth:`Terrain.flat`), from scattered ground samples (:meth:`Terrain.from_samples`:
building bases, road surfaces) or from a ground mesh (:meth:`Terrain.from_mesh`: a DEM's TIN,
rasterised by vertical rays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlwm.world.raycast import EmbreeTracer

#: Vertical rays that rasterise a ground mesh start this many metres above its highest vertex.
MESH_RAY_HEADROOM = 10.0
#: Ground samples are rounded to this many decimals of a metre (1 cm) and deduplicated.
SAMPLE_DECIMALS = 2


@dataclass(frozen=True)
class Terrain:
    """Ground height field.

    Attributes
    ----------
    x0, y0 : float
        Local ENU position (m) of sample ``heights[0, 0]``.
    resolution : float
        Sample spacing (m), the same along x and y.
    heights : (ny, nx) float32
        Ground height (m, local z) at each sample.
    """

    x0: float
    y0: float
    resolution: float
    heights: np.ndarray

    def __post_init__(self):
        h = np.asarray(self.heights, dtype=np.float32)
        if h.ndim != 2 or min(h.shape) < 1:
            raise ValueError(f"terrain heights must be a non-empty 2-D grid, got shape {h.shape}")
        if not np.all(np.isfinite(h)):
            raise ValueError("terrain heights contain NaN or inf")
        if not self.resolution > 0:
            raise ValueError(f"terrain resolution must be positive, got {self.resolution}")
        object.__setattr__(self, "heights", h)

    @classmethod
    def flat(cls, z: float = 0.0, bounds: tuple[float, float, float, float] = (-1.0, -1.0, 1.0, 1.0)) -> "Terrain":
        """A level ground at height ``z`` over ``bounds`` = (xmin, ymin, xmax, ymax)."""
        xmin, ymin, xmax, ymax = bounds
        res = max(xmax - xmin, ymax - ymin, 1e-3)
        return cls(float(xmin), float(ymin), float(res), np.full((2, 2), z, dtype=np.float32))

    @classmethod
    def from_samples(cls, points: np.ndarray, bounds: tuple[float, float, float, float],
                     resolution: float) -> "Terrain":
        """Height field through scattered ground samples: linear inside their hull, nearest outside.

        Parameters
        ----------
        points : (n, 3) float64
            Ground samples (x, y, z), local ENU metres; rounded to 1 cm and deduplicated.
        bounds : (xmin, ymin, xmax, ymax) float
            Area to cover, metres; the grid snaps its origin down to a multiple of ``resolution``.
        resolution : float
            Sample spacing (m).
        """
        from scipy.interpolate import griddata
        from scipy.spatial import QhullError

        pts = np.unique(np.round(points, SAMPLE_DECIMALS), axis=0)
        x0, y0, gx, gy = _sample_grid(bounds, resolution)
        heights = np.full(gx.shape, np.nan)
        if len(pts) >= 3:
            try:
                heights = griddata(pts[:, :2], pts[:, 2], (gx, gy), method="linear")
            except QhullError:  # collinear samples: nearest only
                pass
        hole = ~np.isfinite(heights)
        if hole.any():
            heights[hole] = griddata(pts[:, :2], pts[:, 2], (gx[hole], gy[hole]), method="nearest")
        return cls(x0, y0, resolution, heights)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, bounds: tuple[float, float, float, float],
                  resolution: float) -> "Terrain":
        """Height field of a ground mesh: a vertical ray down onto it at every sample.

        Samples the rays miss take the nearest hit; a mesh that no sample hits (smaller than one
        spacing) falls back to :meth:`from_samples` of its vertices.

        Parameters
        ----------
        vertices : (v, 3) float64
            Mesh vertices, local ENU metres.
        faces : (f, 3) int
            Triangles into ``vertices``.
        bounds : (xmin, ymin, xmax, ymax) float
            Area to cover, metres; the grid snaps its origin down to a multiple of ``resolution``.
        resolution : float
            Sample spacing (m).
        """
        from scipy.interpolate import griddata

        x0, y0, gx, gy = _sample_grid(bounds, resolution)
        top = vertices[:, 2].max() + MESH_RAY_HEADROOM
        origins = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, top)])
        down = np.tile([0.0, 0.0, -1.0], (gx.size, 1))
        distance, _ = EmbreeTracer(vertices, faces).intersect(origins, down)
        heights = (top - distance.astype(np.float64)).reshape(gx.shape)
        hit = np.isfinite(heights)
        if not hit.any():
            return cls.from_samples(vertices, bounds, resolution)
        if not hit.all():
            heights[~hit] = griddata(np.column_stack([gx[hit], gy[hit]]), heights[hit], (gx[~hit], gy[~hit]),
                                     method="nearest")
        return cls(x0, y0, resolution, heights)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) covered by samples, metres."""
        ny, nx = self.heights.shape
        return (self.x0, self.y0, self.x0 + (nx - 1) * self.resolution, self.y0 + (ny - 1) * self.resolution)

    def height(self, x, y) -> np.ndarray:
        """Ground height (m, float64, shape of ``x``/``y`` broadcast) at local ``x``, ``y``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        h = self.heights
        ny, nx = h.shape
        fx = np.clip((x - self.x0) / self.resolution, 0.0, nx - 1)
        fy = np.clip((y - self.y0) / self.resolution, 0.0, ny - 1)
        i0 = np.minimum(np.floor(fx).astype(np.intp), max(nx - 2, 0))
        j0 = np.minimum(np.floor(fy).astype(np.intp), max(ny - 2, 0))
        i1 = np.minimum(i0 + 1, nx - 1)
        j1 = np.minimum(j0 + 1, ny - 1)
        tx, ty = fx - i0, fy - j0
        top = h[j0, i0] * (1 - tx) + h[j0, i1] * tx
        bottom = h[j1, i0] * (1 - tx) + h[j1, i1] * tx
        return top * (1 - ty) + bottom * ty

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """The height field as triangles: vertices (ny*nx, 3) float32, faces (2*(ny-1)*(nx-1), 3) int32."""
        ny, nx = self.heights.shape
        xs = self.x0 + np.arange(nx) * self.resolution
        ys = self.y0 + np.arange(ny) * self.resolution
        gx, gy = np.meshgrid(xs, ys)
        vertices = np.stack([gx, gy, self.heights], axis=-1).reshape(-1, 3).astype(np.float32)
        idx = np.arange(ny * nx).reshape(ny, nx)
        a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
        c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int32)
        return vertices, faces


def _sample_grid(bounds: tuple[float, float, float, float],
                 resolution: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Sample grid over ``bounds``: origin (x0, y0) snapped down to a multiple of ``resolution``, and
    coordinates gx, gy of shape (ny, nx), at least 2 x 2, reaching ``bounds``' far corner."""
    x0 = np.floor(bounds[0] / resolution) * resolution
    y0 = np.floor(bounds[1] / resolution) * resolution
    nx = int(np.ceil((bounds[2] - x0) / resolution)) + 1
    ny = int(np.ceil((bounds[3] - y0) / resolution)) + 1
    gx, gy = np.meshgrid(x0 + resolution * np.arange(max(nx, 2)), y0 + resolution * np.arange(max(ny, 2)))
    return float(x0), float(y0), gx, gy
