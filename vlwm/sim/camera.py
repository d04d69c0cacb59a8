"""Pinhole cameras rendered by ray casting: RGB, z-depth and semantic labels per pixel.

Frames.  A camera's **optical frame** is OpenCV's: x right, y down, z forward (metres), origin at
the projection centre.  ``CameraConfig.T_body_sensor`` maps optical-frame points into the vehicle
body frame (x forward, y left, z up); the mount is given as the roll/pitch/yaw of the camera's
viewing direction relative to the body (yaw about body z, positive pitch tilts the view down).
Pixel ``(u, v)`` (column, row) has its centre at integer coordinates, so
``[u, v, 1]^T ~ K @ p_optical`` and the image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.

Images.  ``rgb`` is a plausible, deterministic rendering — not physically based: a natural city
palette per :class:`CityClass` (facade, roof and car colours chosen per instance by a hash of the
instance id), Lambert shading from one sun direction plus ambient light (no cast shadows), a
blocky texture from a hash of the world hit position, simple windows on building walls, distance
haze and a sky gradient where rays miss.  ``depth_mm`` is the z-depth along the optical axis
in millimetres (uint16; 0 = no hit or beyond 65.535 m) and ``semantic`` the occupancy label id
(17 = free, for sky).  Files: RGB as JPEG, depth as 16-bit PNG, semantics as 8-bit PNG
(``images/NNNNNN_<CAM>.jpg``, ``..._depth.png``, ``..._sem.png``; Pillow does the encoding).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from vlwm.io.frames import Pose, make_transform, quat_from_euler, quat_to_matrix, rotate_vectors
from vlwm.io.image_io import CameraImage
from vlwm.sim.shading import (DEFAULT_SUN_DIR, MATERIAL_COLOURS, SHADE_BACKENDS, _compose_kernel, _salt,
                              compose_reference)
from vlwm.world.scene import Caster

#: The six cameras of a rig (nuScenes names), in :func:`camera_rig` order.
CAMERA_NAMES: tuple[str, ...] = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT",
                                 "CAM_BACK_RIGHT")
VEHICLES = ("drone", "rover")


#: (3, 3) columns = optical axes (right, down, forward) in a view frame (forward, left, up).
R_VIEW_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class CameraConfig:
    """One pinhole camera and its mount (hashable: ray directions are cached per config)."""

    name: str
    """Camera name, one of :data:`CAMERA_NAMES` for a standard rig (used in file names)."""
    width: int = 640
    """Image width, pixels."""
    height: int = 360
    """Image height, pixels."""
    fov_x_deg: float = 70.0
    """Horizontal field of view, degrees (square pixels: fy = fx)."""
    mount_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Projection centre in the vehicle body frame (x forward, y left, z up), metres."""
    mount_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Viewing direction relative to the body: roll, pitch (positive = down), yaw (about body z), radians."""
    max_range: float = 1000.0
    """Farthest visible surface, metres; beyond it pixels show sky (semantic free, depth 0)."""

    def __post_init__(self):
        if self.width < 1 or self.height < 1:
            raise ValueError(f"camera {self.name}: image size {self.width}x{self.height} must be positive")
        if not 0.0 < self.fov_x_deg < 180.0:
            raise ValueError(f"camera {self.name}: fov_x_deg must lie in (0, 180), got {self.fov_x_deg}")
        if not self.max_range > 0:
            raise ValueError(f"camera {self.name}: max_range must be positive, got {self.max_range}")
        object.__setattr__(self, "mount_xyz", tuple(float(v) for v in self.mount_xyz))
        object.__setattr__(self, "mount_rpy", tuple(float(v) for v in self.mount_rpy))

    @property
    def focal(self) -> float:
        """fx = fy, pixels."""
        return 0.5 * self.width / np.tan(np.deg2rad(self.fov_x_deg) / 2)

    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsics; principal point at the image centre ``((W-1)/2, (H-1)/2)``."""
        f = self.focal
        return np.array([[f, 0.0, (self.width - 1) / 2], [0.0, f, (self.height - 1) / 2], [0.0, 0.0, 1.0]])

    def T_body_sensor(self) -> np.ndarray:
        """(4, 4) float64: maps optical-frame points (x right, y down, z forward) into the body frame."""
        R_body_view = quat_to_matrix(quat_from_euler(*self.mount_rpy))  # view frame: x forward, y left, z up
        return make_transform(R_body_view @ R_VIEW_OPTICAL, self.mount_xyz)


#: Camera yaws (degrees, about body z) and horizontal fields of view, nuScenes-like, by name.
RIG_YAW_FOV_DEG = {
    "CAM_FRONT": (0.0, 70.0), "CAM_FRONT_RIGHT": (-55.0, 70.0), "CAM_FRONT_LEFT": (55.0, 70.0),
    "CAM_BACK": (180.0, 110.0), "CAM_BACK_LEFT": (110.0, 70.0), "CAM_BACK_RIGHT": (-110.0, 70.0),
}
DRONE_CAMERA_PITCH_DEG = 35.0   #: drone cameras look this far below the horizon
DRONE_CAMERA_RING = (0.12, 0.15)    #: (radius, height) of the drone's camera ring above its touch-down point, m
ROVER_CAMERA_RING = (1.0, 1.6)      #: (radius, height) of the rover's roof camera ring, m
ROVER_CAMERA_FORWARD = 1.35         #: rover ring centre ahead of the body origin (rear axle), m


def camera_rig(vehicle: str, width: int = 640, height: int = 360) -> tuple[CameraConfig, ...]:
    """The six cameras of a ``'drone'`` or ``'rover'``, in :data:`CAMERA_NAMES` order.

    Yaws and fields of view follow nuScenes (front 0°, front-left +55°, front-right -55°, back
    180° with a 110° field of view, back-left +110°, back-right -110°).  Rover cameras sit level on
    a 1 m ring 1.6 m above the body origin; drone cameras sit on a 12 cm ring under the body,
    pitched down by :data:`DRONE_CAMERA_PITCH_DEG` so that from altitude they see the ground.
    """
    if vehicle not in VEHICLES:
        raise ValueError(f"camera_rig: unknown vehicle {vehicle!r}; choose one of {VEHICLES}")
    drone = vehicle == "drone"
    radius, z = DRONE_CAMERA_RING if drone else ROVER_CAMERA_RING
    x0 = 0.0 if drone else ROVER_CAMERA_FORWARD
    pitch = np.deg2rad(DRONE_CAMERA_PITCH_DEG) if drone else 0.0
    rig = []
    for name in CAMERA_NAMES:
        yaw_deg, fov = RIG_YAW_FOV_DEG[name]
        yaw = np.deg2rad(yaw_deg)
        rig.append(CameraConfig(name=name, width=width, height=height, fov_x_deg=fov,
                                mount_xyz=(x0 + radius * np.cos(yaw), radius * np.sin(yaw), z),
                                mount_rpy=(0.0, pitch, yaw)))
    return tuple(rig)


# ------------------------------------------------------------------------------ rays


@functools.lru_cache(maxsize=32)
def _optical_rays(width: int, height: int, fov_x_deg: float) -> np.ndarray:
    """(H*W, 3) float32 unit pixel-centre rays in the optical frame, row-major (v, u)."""
    cam = CameraConfig("rays", width, height, fov_x_deg)
    K = cam.K()
    v, u = np.mgrid[0:height, 0:width]
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1).reshape(-1, 3)
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    d.setflags(write=False)
    return d


@functools.lru_cache(maxsize=4)
def _rig_rays(cameras: tuple[CameraConfig, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated rays of ``cameras``: body-frame unit directions (n, 3) float32, optical z (n,) float32."""
    body, cos_z = [], []
    for cam in cameras:
        d = _optical_rays(cam.width, cam.height, cam.fov_x_deg)
        body.append(rotate_vectors(cam.T_body_sensor()[:3, :3].astype(np.float32), d))
        cos_z.append(d[:, 2])
    out = np.concatenate(body), np.concatenate(cos_z)
    for a in out:
        a.setflags(write=False)
    return out


def render(caster: Caster, pose: Pose, camera: CameraConfig, sun_dir=DEFAULT_SUN_DIR, seed: int = 0,
           backend: str = "numba") -> CameraImage:
    """Render one camera at ``pose`` (see :func:`render_rig`)."""
    return render_rig(caster, pose, (camera,), sun_dir, seed, backend)[camera.name]


def render_rig(caster: Caster, pose: Pose, cameras, sun_dir=DEFAULT_SUN_DIR, seed: int = 0,
               backend: str = "numba") -> dict[str, CameraImage]:
    """Render several cameras at one ``pose`` with a single cast.

    Parameters
    ----------
    caster : callable
        ``cast(origins (n, 3), directions (n, 3), max_range (n,)) -> RayHits``, world frame.
    pose : Pose
        Vehicle pose (T_world_body = ``pose.matrix()``).
    cameras : sequence of CameraConfig
        The cameras; names must be distinct.
    sun_dir : (3,) float
        World-frame direction towards the sun (normalised here).
    seed : int
        Salt of the texture and colour hashes (the same seed gives the same look everywhere).
    backend : {'numba', 'numpy'}
        Shading kernel: compiled (fast) or the numpy reference (:func:`compose_reference`).

    Returns
    -------
    ``{camera name: CameraImage}``
    """
    compose = {"numba": _compose_kernel, "numpy": compose_reference}.get(backend)
    if compose is None:
        raise ValueError(f"render_rig: unknown backend {backend!r}; choose one of {SHADE_BACKENDS}")
    cameras = tuple(cameras)
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise ValueError(f"render_rig: camera names must be distinct, got {names}")
    T_wb = pose.matrix()
    rot = T_wb[:3, :3].astype(np.float32)
    d_body, cos_z = _rig_rays(cameras)
    directions = rotate_vectors(rot, d_body)                                      # (n, 3) float32 world
    counts = [c.width * c.height for c in cameras]
    centres = np.array([T_wb[:3, :3] @ c.mount_xyz + T_wb[:3, 3] for c in cameras], np.float32)
    origins = np.repeat(centres, counts, axis=0)
    ranges = np.repeat(np.array([c.max_range for c in cameras], np.float32), counts)
    hits = caster(origins, directions, ranges)

    sun = np.asarray(sun_dir, np.float64)
    sun = (sun / np.linalg.norm(sun)).astype(np.float32)
    rgb8, depth = compose(origins, directions, cos_z, np.asarray(hits.distance, np.float32),
                          np.asarray(hits.triangle, np.int64),
                          np.asarray(hits.normal, np.float32), np.asarray(hits.semantic, np.uint8),
                          np.asarray(hits.instance, np.int32), sun, _salt(seed), _salt(seed + 1), MATERIAL_COLOURS)
    semantic = np.asarray(hits.cls, np.uint8)                                     # free label on misses

    images, start = {}, 0
    for cam, n in zip(cameras, counts):
        sl = slice(start, start + n)
        images[cam.name] = CameraImage(rgb8[sl].reshape(cam.height, cam.width, 3),
                                       depth[sl].reshape(cam.height, cam.width),
                                       semantic[sl].reshape(cam.height, cam.width))
        start += n
    return images


# ------------------------------------------------------------------------------ projection


def project_points(points_world: np.ndarray, pose: Pose, camera: CameraConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of world points.

    Parameters
    ----------
    points_world : (n, 3) float, world frame, metres.

    Returns
    -------
    uv : (n, 2) float64 pixel coordinates (u column, v row; centres at integers).
    z : (n,) float64 depth along the optical axis, metres (<= 0: behind the camera, uv meaningless).
    """
    T_world_cam = pose.matrix() @ camera.T_body_sensor()
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    p = (np.asarray(points_world, np.float64).reshape(-1, 3) - t) @ R           # world -> optical
    z = p[:, 2]
    uvw = p @ camera.K().T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / z[:, None]
    return uv, z
