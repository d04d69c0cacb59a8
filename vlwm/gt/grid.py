"""The occupancy grid: its metric extent, voxel size and shape, and voxel index <-> position maps.

A :class:`GridSpec` is given the way Occ3D and OccWorld configs give it: ``point_cloud_range``
``[x0, y0, z0, x1, y1, z1]`` and ``voxel_size`` ``[dx, dy, dz]`` (metres).  The shape follows:
``X = (x1 - x0) / dx`` and so on, which must come out whole — a range that does not divide is an
error that names the axis and suggests the nearest ranges that do.  (The training guide's own
example, z in [-2, 150] at 1.25 m, is 121.6 voxels: the ``aerial`` preset stops at 149.25 m.)

Frame: the **grid frame** of :mod:`vlwm.gt.ego_frame` (x forward along the vehicle's heading,
y left, z up from the ground under the vehicle; metres).  Arrays are indexed ``[x, y, z]``: voxel
``(i, j, k)`` spans ``[x0 + i dx, x0 + (i + 1) dx]`` and so on, and its centre is
``point_cloud_range[:3] + (index + 0.5) * voxel_size``.

*Index space* — ``(p - point_cloud_range[:3]) / voxel_size`` — is where the kernels work: voxels
are unit cubes ``[i, i + 1] x [j, j + 1] x [k, k + 1]``.  It is an affine image of the grid frame,
so whatever meets what (triangles and boxes, rays and boxes) is the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Ratios (extent / voxel size) within this relative distance of a whole number count as whole.
DIVISIBILITY_RTOL = 1e-6
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class GridSpec:
    """A voxel grid in the grid frame.

    Attributes
    ----------
    point_cloud_range : (6,) float
        ``[x0, y0, z0, x1, y1, z1]``, metres, grid frame: the grid's lower and upper corner.
    voxel_size : (3,) float
        ``[dx, dy, dz]``, metres.
    """

    point_cloud_range: tuple[float, float, float, float, float, float]
    """Lower then upper corner of the grid, metres, grid frame (x forward, y left, z up from the ground)."""
    voxel_size: tuple[float, float, float]
    """Voxel edge lengths along x, y, z, metres."""

    def __post_init__(self):
        r = tuple(float(v) for v in self.point_cloud_range)
        s = tuple(float(v) for v in self.voxel_size)
        if len(r) != 6 or len(s) != 3:
            raise ValueError(f"GridSpec: point_cloud_range needs 6 numbers [x0, y0, z0, x1, y1, z1] and voxel_size 3 "
                             f"[dx, dy, dz]; got {len(r)} and {len(s)}")
        if not all(math.isfinite(v) for v in r + s):
            raise ValueError(f"GridSpec: non-finite numbers in point_cloud_range {r} or voxel_size {s}")
        for a, name in enumerate(AXES):
            lo, hi, d = r[a], r[a + 3], s[a]
            if not d > 0:
                raise ValueError(f"GridSpec: voxel_size {name} = {d:g} must be positive")
            if not hi > lo:
                raise ValueError(f"GridSpec: {name} range [{lo:g}, {hi:g}] is empty: the upper bound must exceed "
                                 f"the lower")
        hints = []
        for a, name in enumerate(AXES):
            lo, hi, d = r[a], r[a + 3], s[a]
            ratio = (hi - lo) / d
            if abs(ratio - round(ratio)) > DIVISIBILITY_RTOL * max(1.0, ratio):
                hints.append(_divisibility_hint(name, lo, hi, d, ratio))
        if hints:
            raise ValueError("GridSpec: point_cloud_range does not divide into whole voxels:\n  " + "\n  ".join(hints))
        object.__setattr__(self, "point_cloud_range", r)
        object.__setattr__(self, "voxel_size", s)

    # ------------------------------------------------------------------ derived

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(X, Y, Z)`` voxel counts."""
        r, s = self.point_cloud_range, self.voxel_size
        return tuple(int(round((r[a + 3] - r[a]) / s[a])) for a in range(3))

    @property
    def lower(self) -> np.ndarray:
        """(3,) float64 lower corner, metres, grid frame."""
        return np.array(self.point_cloud_range[:3])

    @property
    def upper(self) -> np.ndarray:
        """(3,) float64 upper corner, metres, grid frame."""
        return np.array(self.point_cloud_range[3:])

    @property
    def size(self) -> np.ndarray:
        """(3,) float64 voxel size, metres."""
        return np.array(self.voxel_size)

    @property
    def num_voxels(self) -> int:
        x, y, z = self.shape
        return x * y * z

    # ------------------------------------------------------------------ index <-> position

    def to_index_space(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) float64 continuous voxel coordinates of grid-frame points (n, 3) metres."""
        return (np.asarray(points, np.float64) - self.lower) / self.size

    def from_index_space(self, coords: np.ndarray) -> np.ndarray:
        """(n, 3) float64 grid-frame metres of continuous voxel coordinates (n, 3)."""
        return np.asarray(coords, np.float64) * self.size + self.lower

    def index_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voxel of each grid-frame point.

        Parameters
        ----------
        points : (n, 3) float, metres, grid frame.

        Returns
        -------
        index : (n, 3) int64 ``floor`` of the index-space coordinates (may lie outside the grid).
        inside : (n,) bool, True where ``index`` is a voxel of the grid.
        """
        idx = np.floor(self.to_index_space(points)).astype(np.int64)
        return idx, np.all((idx >= 0) & (idx < np.array(self.shape)), axis=1)

    def centres(self, index: np.ndarray) -> np.ndarray:
        """(n, 3) float64 grid-frame centres (metres) of voxel indices (n, 3) int."""
        return self.from_index_space(np.asarray(index, np.float64) + 0.5)

    def all_centres(self) -> np.ndarray:
        """(X, Y, Z, 3) float64 centre of every voxel, metres, grid frame."""
        axes = [self.point_cloud_range[a] + (np.arange(n) + 0.5) * self.voxel_size[a] for a, n in enumerate(self.shape)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict:
        """``{"point_cloud_range", "voxel_size", "shape"}`` (the shape is informative; it is re-derived on load)."""
        return {"point_cloud_range": list(self.point_cloud_range), "voxel_size": list(self.voxel_size),
                "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: dict) -> "GridSpec":
        """Inverse of :meth:`to_json`; a stored ``shape`` that disagrees with the range is an error."""
        unknown = sorted(set(d) - {"point_cloud_range", "voxel_size", "shape"})
        if unknown:
            raise ValueError(f"GridSpec: unknown keys {unknown}; known: point_cloud_range, voxel_size, shape")
        try:
            spec = cls(tuple(d["point_cloud_range"]), tuple(d["voxel_size"]))
        except KeyError as exc:
            raise ValueError(f"GridSpec: missing key {exc.args[0]!r}") from None
        if "shape" in d and tuple(d["shape"]) != spec.shape:
            raise ValueError(f"GridSpec: stored shape {tuple(d['shape'])} disagrees with the range, which gives "
                             f"{spec.shape}")
        return spec


def _divisibility_hint(name: str, lo: float, hi: float, d: float, ratio: float) -> str:
    """The error line for one axis: what does not divide and the nearest ranges that do."""
    n0, n1 = math.floor(ratio), math.ceil(ratio)
    keep_lo = [f"[{lo:g}, {lo + n * d:g}] ({n} voxels)" for n in (n0, n1) if n >= 1]
    keep_hi = [f"[{hi - n * d:g}, {hi:g}] ({n} voxels)" for n in (n0, n1) if n >= 1]
    return (f"{name}: ({hi:g} - ({lo:g})) / {d:g} = {ratio:.4g} voxels, not a whole number; "
            f"nearest valid {name} ranges: {' or '.join(keep_lo)}, or keeping the upper bound "
            f"{' or '.join(keep_hi)}")


#: Occ3D-nuScenes / pretrained OccWorld: 200 x 200 x 16 at 0.4 m, x, y in [-40, 40], z in [-1, 5.4].
OCC3D = GridSpec((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (0.4, 0.4, 0.4))
#: Drones: 200 x 200 x 121 at 0.4 x 0.4 x 1.25 m, z in [-2, 149.25] (the existing Tokyo datasets' 121 levels).
AERIAL = GridSpec((-40.0, -40.0, -2.0, 40.0, 40.0, 149.25), (0.4, 0.4, 1.25))
#: Named grids (``--grid occ3d``); custom specs are built with :class:`GridSpec` directly.
GRID_PRESETS: dict[str, GridSpec] = {"occ3d": OCC3D, "aerial": AERIAL}


def grid_preset(name: str) -> GridSpec:
    """The preset called ``name``; an unknown name is an error that lists the presets."""
    try:
        return GRID_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown grid preset {name!r}; presets: {sorted(GRID_PRESETS)} "
                         f"(or give point_cloud_range and voxel_size)") from None
