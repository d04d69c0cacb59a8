"""Offscreen 3D render of an occupancy label grid: exposed voxel faces, ray cast with Embree.

The grid ``labels : (X, Y, Z) uint8`` (Occ3D ids, :data:`vlwm.labels.FREE` = empty, grid frame:
x forward, y left, z up) becomes a triangle mesh of the faces between an occupied voxel and a
free neighbour (or the grid's border).  Faces between two occupied voxels are never visible and
are left out.  A perspective :class:`Camera` casts one ray per pixel through
:class:`vlwm.world.raycast.EmbreeTracer`; the hit face's palette colour is Lambert-shaded by a
directional light, voxel edges are darkened, and pixels that hit nothing are white.

No display, OpenGL or GPU is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, OCC3D_PALETTE
from vlwm.world.raycast import EmbreeTracer, Tracer

BACKGROUND = np.array([255, 255, 255], np.uint8)  #: colour of pixels whose ray hits nothing
#: Unit vector towards the light, grid frame (from above, slightly behind and to the left).
DEFAULT_LIGHT = (-0.35, 0.45, 1.0)
AMBIENT = 0.45             #: fraction of the palette colour a face gets with no direct light
EDGE_WIDTH = 0.06          #: voxel-edge band (fraction of a voxel face) drawn darker
EDGE_DARKEN = 0.7          #: brightness factor inside the edge band

#: The six face directions: (axis, sign).  Index ``d`` is used throughout (normals, quads).
FACE_DIRECTIONS: tuple[tuple[int, int], ...] = ((0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1))
FACE_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], np.float32)


class VoxelFaces(NamedTuple):
    """The exposed faces of a label grid (one row per face).

    voxel : (F, 3) int64 index ``(i, j, k)`` of the occupied voxel the face belongs to.
    direction : (F,) int64 index into :data:`FACE_DIRECTIONS` (the outward normal).
    label : (F,) uint8 class id of the voxel.
    """

    voxel: np.ndarray
    direction: np.ndarray
    label: np.ndarray


class VoxelMesh(NamedTuple):
    """Exposed faces merged into strips, two triangles per strip, vertices in grid-frame metres.

    Neighbouring exposed faces with the same direction and label along one in-plane axis are
    merged into one quad (a strip), which keeps the mesh — and the BVH build — small for flat
    ground.  Voxel edges are still drawn by the renderer from the hit position.

    vertices : (4Q, 3) float32, metres, grid frame.
    triangles : (2Q, 3) int32 vertex indices; triangle ``t`` belongs to quad ``t // 2``.
    direction : (Q,) int64 index into :data:`FACE_DIRECTIONS` of each quad.
    label : (Q,) uint8 class id of each quad.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    direction: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the grid frame (metres)."""

    eye: tuple[float, float, float]
    """Camera position, metres, grid frame."""
    target: tuple[float, float, float]
    """Point the optical axis passes through, metres, grid frame."""
    fov_deg: float = 55.0
    """Vertical field of view, degrees."""
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """World direction that appears up in the image."""


def default_camera(grid: GridSpec) -> Camera:
    """Oblique view from behind and above the ego (at the grid-frame origin), looking forward-down."""
    lo, hi = grid.lower, grid.upper
    half_x = 0.5 * (hi[0] - lo[0])
    centre_y = 0.5 * (lo[1] + hi[1])
    return Camera(eye=(lo[0] - 0.3 * half_x, centre_y, hi[2] + 1.1 * half_x),
                  target=(0.5 * (lo[0] + hi[0]) + 0.1 * half_x, centre_y, lo[2]), fov_deg=60.0)


def unit_grid(shape: tuple[int, int, int]) -> GridSpec:
    """A 1 m grid of ``shape`` centred on the origin in x, y, with z from 0 (for grids without a spec)."""
    x, y, z = shape
    return GridSpec((-x / 2, -y / 2, 0.0, x / 2, y / 2, float(z)), (1.0, 1.0, 1.0))


def exposed_faces(labels: np.ndarray, free: int = FREE) -> VoxelFaces:
    """Faces between an occupied voxel and a free neighbour or the grid border.

    Parameters
    ----------
    labels : (X, Y, Z) uint8 class ids; ``free`` marks empty voxels.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be an (X, Y, Z) grid, got shape {labels.shape}")
    occ = labels != free
    padded = np.pad(occ, 1, constant_values=False)                      # (X+2, Y+2, Z+2)
    core = (slice(1, -1),) * 3
    voxels, dirs = [], []
    for d, (axis, sign) in enumerate(FACE_DIRECTIONS):
        nb = [slice(1, -1)] * 3
        nb[axis] = slice(1 + sign, padded.shape[axis] - 1 + sign)      # neighbour along (axis, sign)
        exposed = padded[core] & ~padded[tuple(nb)]
        idx = np.argwhere(exposed)
        voxels.append(idx)
        dirs.append(np.full(len(idx), d, np.int64))
    voxel = np.concatenate(voxels).astype(np.int64)
    direction = np.concatenate(dirs)
    return VoxelFaces(voxel, direction, labels[tuple(voxel.T)].astype(np.uint8))


# Quad corners per direction, in voxel-local unit coordinates: (6 directions, 4 corners, 3).
def _quad_corners() -> np.ndarray:
    out = np.zeros((6, 4, 3), np.float32)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    for d, (axis, sign) in enumerate(FACE_DIRECTIONS):
        others = [a for a in range(3) if a != axis]
        out[d, :, axis] = 1.0 if sign > 0 else 0.0
        out[d, :, others[0]] = square[:, 0]
        out[d, :, others[1]] = square[:, 1]
    return out


_QUADS = _quad_corners()


def voxel_mesh(labels: np.ndarray, grid: GridSpec, free: int = FREE) -> VoxelMesh:
    """Triangle mesh (grid-frame metres) of the exposed faces of ``labels`` (X, Y, Z) uint8, merged into strips."""
    labels = np.asarray(labels)
    if tuple(labels.shape) != grid.shape:
        raise ValueError(f"labels have shape {labels.shape} but the grid is {grid.shape}")
    faces = exposed_faces(labels, free)
    starts, lengths, dirs, labs, axes = [], [], [], [], []
    for d, (axis, _) in enumerate(FACE_DIRECTIONS):
        sel = faces.direction == d
        # (X, Y, Z) int16: label of the exposed face in direction d, -1 where none
        plane = np.full(labels.shape, -1, np.int16)
        plane[tuple(faces.voxel[sel].T)] = faces.label[sel]
        m = 1 if axis == 0 else 0                                          # merge along this in-plane axis
        rows = np.moveaxis(plane, m, -1)                                   # (..., N) runs along the last axis
        padded = np.concatenate([np.full(rows.shape[:-1] + (1,), -1, np.int16), rows,
                                 np.full(rows.shape[:-1] + (1,), -1, np.int16)], axis=-1)
        begin = (padded[..., 1:-1] >= 0) & (padded[..., 1:-1] != padded[..., :-2])
        end = (padded[..., 1:-1] >= 0) & (padded[..., 1:-1] != padded[..., 2:])
        b, e = np.argwhere(begin), np.argwhere(end)                        # same row-major order: paired runs
        start = np.insert(b[:, :-1], m, b[:, -1], axis=1)                  # back to (i, j, k) order
        starts.append(start)
        lengths.append(e[:, -1] - b[:, -1] + 1)
        dirs.append(np.full(len(b), d, np.int64))
        labs.append(rows[tuple(b.T)].astype(np.uint8))
        axes.append(np.full(len(b), m, np.int64))
    start, length = np.concatenate(starts), np.concatenate(lengths)
    direction, label, merge_axis = np.concatenate(dirs), np.concatenate(labs), np.concatenate(axes)
    n = len(start)
    quad = _QUADS[direction].copy()                                        # (Q, 4, 3) unit corners
    quad[np.arange(n), :, merge_axis] *= length[:, None]                   # stretch along the strip
    corners = start[:, None, :].astype(np.float32) + quad                  # (Q, 4, 3) index space
    vertices = corners.reshape(n * 4, 3) * grid.size.astype(np.float32) + grid.lower.astype(np.float32)
    base = (np.arange(n, dtype=np.int32) * 4)[:, None]                     # (Q, 1)
    tris = np.stack([base + np.array([0, 1, 2], np.int32), base + np.array([0, 2, 3], np.int32)], axis=1)
    return VoxelMesh(vertices.astype(np.float32), tris.reshape(n * 2, 3), direction, label)   # (Q, 2, 3) -> (2Q, 3)


def camera_rays(camera: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One ray per pixel centre: origins (H*W, 3) float32 and unit directions (H*W, 3) float32, row-major."""
    eye = np.asarray(camera.eye, np.float64)
    fwd = np.asarray(camera.target, np.float64) - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(camera.up, np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"camera looks along its up vector {camera.up}; choose another target or up")
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    half_h = np.tan(np.radians(camera.fov_deg) / 2)
    half_w = half_h * width / height
    u = ((np.arange(width) + 0.5) / width * 2 - 1) * half_w            # (W,) right
    v = (1 - (np.arange(height) + 0.5) / height * 2) * half_h          # (H,) up
    d = fwd[None, None] + u[None, :, None] * right + v[:, None, None] * up   # (H, W, 3)
    d = d.reshape(-1, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.broadcast_to(eye.astype(np.float32), d.shape).copy(), d.astype(np.float32)


def render_voxels(
    labels: np.ndarray,
    grid: GridSpec | None = None,
    camera: Camera | None = None,
    size: tuple[int, int] = (640, 480),
    light: tuple[float, float, float] | None = DEFAULT_LIGHT,
    edges: bool = True,
    palette: np.ndarray = OCC3D_PALETTE,
    free: int = FREE,
    tracer_cls: type = EmbreeTracer,
) -> np.ndarray:
    """Render ``labels`` offscreen.

    Parameters
    ----------
    labels : (X, Y, Z) uint8 class ids, grid frame; ``free`` voxels are empty.
    grid : the grid's extent (default: :func:`unit_grid` of the shape).
    camera : default :func:`default_camera` (behind and above the ego).
    size : ``(width, height)`` pixels.
    light : direction towards the light (grid frame), or None for flat, unshaded palette colours.
    edges : darken a thin band along voxel edges.
    tracer_cls : :class:`~vlwm.world.raycast.EmbreeTracer` or ``NumpyTracer`` (the slow reference).

    Returns
    -------
    (H, W, 3) uint8 RGB image; white where nothing is hit.
    """
    labels = np.asarray(labels)
    grid = grid or unit_grid(labels.shape)
    camera = camera or default_camera(grid)
    width, height = int(size[0]), int(size[1])
    mesh = voxel_mesh(labels, grid, free)
    tracer: Tracer = tracer_cls(mesh.vertices, mesh.triangles)
    origins, dirs = camera_rays(camera, width, height)
    dist, tri = tracer.intersect(origins, dirs, np.inf)
    image = np.broadcast_to(BACKGROUND, (height * width, 3)).copy()
    hit = tri >= 0
    quad = tri[hit] // 2
    colour = palette[mesh.label[quad]].astype(np.float32)              # (n_hit, 3)
    shade = np.ones(len(quad), np.float32)
    direction = mesh.direction[quad]
    if light is not None:
        to_light = np.asarray(light, np.float32)
        to_light /= np.linalg.norm(to_light)
        shade = AMBIENT + (1 - AMBIENT) * np.clip(FACE_NORMALS[direction] @ to_light, 0, None)
    if edges:
        point = origins[hit] + dirs[hit] * dist[hit, None]                          # metres
        local = (point - grid.lower.astype(np.float32)) / grid.size.astype(np.float32)  # index space
        frac = local - np.floor(local)
        axis = np.array([a for a, _ in FACE_DIRECTIONS])[direction]
        frac[np.arange(len(quad)), axis] = 0.5                                      # the normal axis never counts
        near_edge = np.any((frac < EDGE_WIDTH) | (frac > 1 - EDGE_WIDTH), axis=1)
        shade = np.where(near_edge, shade * EDGE_DARKEN, shade)
    image[hit] = np.clip(colour * shade[:, None], 0, 255).astype(np.uint8)
    return image.reshape(height, width, 3)
