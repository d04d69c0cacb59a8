"""A spinning multi-beam lidar, simulated by casting one ray per (column, beam) into the world.

The sensor frame is the lidar's own: x forward, y left, z up (metres), origin at the optical
centre; ``LidarConfig.T_body_sensor`` places it on the vehicle body.  A sweep has ``columns``
azimuth steps and ``beams`` elevation rings:

* **Azimuth.**  The head spins clockwise seen from above (like Velodyne and Ouster units).
  Column ``k`` points at azimuth ``pi - 2 pi k / columns`` (counter-clockwise from sensor +x), so
  column 0 looks backwards and the sweep passes the front half-way through.
* **Elevation.**  Beams are spread evenly from ``fov_down_deg`` to ``fov_up_deg``; **ring 0 is
  the lowest beam** (the ROS ``velodyne_pointcloud`` numbering).
* **Time.**  Column ``k`` fires ``t = k / (columns * rate_hz)`` seconds after the frame time.

**Motion during the sweep.**  Geometry and sensor pose are both sampled at the frame time: the
point cloud is the one a perfectly motion-compensated sensor would report (every point is where
the surface is at the frame time, in the sensor frame at the frame time).  ``t`` still records
when each column would have fired, so a consumer can re-introduce rolling-shutter distortion.

**Returns.**  Only hits are reported (no rows for misses).  A surface closer than ``min_range``
hides what lies behind it and its return is discarded (the blind zone of a real sensor).

**Intensity** (in [0, 1]) is a calibrated reflectivity, as modern sensors report it, so there is
no 1/r² fall-off: ``intensity = reflectivity[city class] * |cos(incidence)|`` where the incidence
angle is between the ray and the surface normal.  :data:`REFLECTIVITY` lists the values.

**Noise.**  Gaussian range noise (``range_noise_std`` metres) moves each point along its ray;
``dropout`` removes each return independently with that probability; a noisy range that falls
outside ``[min_range, max_range]`` is dropped too.  Both draw from the ``rng`` passed to
:func:`scan` (dropout first, then noise, over the returns in firing order); with both off the
scan is exact and needs no generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from vlwm.io.frames import Pose, make_transform, quat_from_euler, quat_to_matrix
from vlwm.io.recording import LIDAR_COLUMNS
from vlwm.labels import NUM_CITY_CLASSES, CityClass
from vlwm.world.scene import Caster

_NUM_LIDAR_COLUMNS = len(LIDAR_COLUMNS)


def _reflectivity_table() -> np.ndarray:
    """(NUM_CITY_CLASSES,) float32 diffuse reflectivity at ~900 nm, per :class:`CityClass`.

    Rough values for near-infrared lidar: dark asphalt reflects little, concrete and painted
    metal more, vegetation is bright in the near infrared, water almost nothing back.
    """
    r = np.full(NUM_CITY_CLASSES, 0.3, dtype=np.float32)  # UNKNOWN and anything unlisted
    values = {
        CityClass.BUILDING: 0.4,
        CityClass.ROAD: 0.2,
        CityClass.SIDEWALK: 0.35,
        CityClass.CROSSWALK: 0.6,       # white paint
        CityClass.PARKING: 0.22,
        CityClass.RAILWAY: 0.25,
        CityClass.WATER: 0.05,
        CityClass.TERRAIN: 0.3,
        CityClass.GRASS: 0.45,
        CityClass.VEGETATION: 0.5,
        CityClass.BRIDGE: 0.35,
        CityClass.BARRIER: 0.5,
        CityClass.POLE: 0.5,
        CityClass.CAR: 0.8,             # painted metal, retro-reflective plates
        CityClass.BUS: 0.8,
        CityClass.TRUCK: 0.75,
        CityClass.PEDESTRIAN: 0.4,
        CityClass.BICYCLE: 0.6,
        CityClass.MOTORCYCLE: 0.7,
        CityClass.DRONE: 0.6,
        CityClass.CONSTRUCTION_VEHICLE: 0.75,
        CityClass.TRAFFIC_CONE: 0.9,    # retro-reflective bands
        CityClass.TRAILER: 0.75,
    }
    for cls, value in values.items():
        r[cls] = value
    return r


#: (NUM_CITY_CLASSES,) float32 reflectivity per city class, see :func:`_reflectivity_table`.
REFLECTIVITY: np.ndarray = _reflectivity_table()


@dataclass(frozen=True)
class LidarConfig:
    """A spinning lidar and where it sits on the vehicle (hashable: directions are cached per config)."""

    beams: int = 64
    """Number of elevation rings (vertical channels)."""
    columns: int = 2048
    """Azimuth steps per sweep (firings per channel per revolution)."""
    fov_up_deg: float = 10.0
    """Elevation of the top beam, degrees above the sensor's x-y plane."""
    fov_down_deg: float = -30.0
    """Elevation of the bottom beam, degrees (negative = below the sensor's x-y plane)."""
    max_range: float = 200.0
    """Farthest return, metres; farther surfaces are misses."""
    min_range: float = 0.5
    """Nearest return, metres; closer hits are discarded (blind zone)."""
    rate_hz: float = 10.0
    """Spin rate, revolutions per second: one sweep takes ``1 / rate_hz`` seconds."""
    mount_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Sensor origin in the vehicle body frame (x forward, y left, z up), metres."""
    mount_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Sensor orientation relative to the body: roll, pitch, yaw (radians, intrinsic Z-Y-X)."""
    range_noise_std: float = 0.0
    """Standard deviation of Gaussian range noise along each ray, metres (0 = exact)."""
    dropout: float = 0.0
    """Probability that a return is lost, independently per point (0 = none)."""

    def __post_init__(self):
        if self.beams < 1 or self.columns < 1:
            raise ValueError(f"LidarConfig: beams ({self.beams}) and columns ({self.columns}) must be >= 1")
        if not -90.0 <= self.fov_down_deg <= self.fov_up_deg <= 90.0:
            raise ValueError(f"LidarConfig: need -90 <= fov_down_deg ({self.fov_down_deg}) <= "
                             f"fov_up_deg ({self.fov_up_deg}) <= 90")
        if not 0.0 <= self.min_range < self.max_range:
            raise ValueError(f"LidarConfig: need 0 <= min_range ({self.min_range}) < max_range ({self.max_range})")
        if not self.rate_hz > 0:
            raise ValueError(f"LidarConfig: rate_hz must be positive, got {self.rate_hz}")
        if self.range_noise_std < 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LidarConfig: need range_noise_std >= 0 ({self.range_noise_std}) and "
                             f"0 <= dropout < 1 ({self.dropout})")
        object.__setattr__(self, "mount_xyz", tuple(float(v) for v in self.mount_xyz))
        object.__setattr__(self, "mount_rpy", tuple(float(v) for v in self.mount_rpy))

    @property
    def num_rays(self) -> int:
        return self.beams * self.columns

    @property
    def sweep_time(self) -> float:
        """Seconds per revolution."""
        return 1.0 / self.rate_hz

    def elevations(self) -> np.ndarray:
        """(beams,) float64 beam elevations, radians, ring 0 (lowest) first."""
        lo, hi = np.deg2rad(self.fov_down_deg), np.deg2rad(self.fov_up_deg)
        return np.linspace(lo, hi, self.beams) if self.beams > 1 else np.array([0.5 * (lo + hi)])

    def azimuths(self) -> np.ndarray:
        """(columns,) float64 column azimuths, radians counter-clockwise from sensor +x (clockwise spin)."""
        return np.pi - 2.0 * np.pi * np.arange(self.columns) / self.columns

    def T_body_sensor(self) -> np.ndarray:
        """(4, 4) float64: maps lidar-frame points into the vehicle body frame."""
        return make_transform(quat_to_matrix(quat_from_euler(*self.mount_rpy)), self.mount_xyz)


def drone_lidar() -> LidarConfig:
    """A 64-beam lidar hung under a drone, looking mostly down.

    The spin axis stays vertical (level mount, so the pattern does not depend on heading) and the
    field of view is shifted downwards, +15° to -75°: from 30 m the lower rings cover the ground
    out to ~110 m, and from 150 m altitude the rings below -48.6° still reach the ground within the
    200 m range (a disc of ~130 m radius) while the upper rings see building walls around.
    The drone's body origin is its touch-down point (the bottom of the landing gear); the
    sensor hangs under the fuselage, 10 cm above it, so it stays above the ground when landed.
    """
    return LidarConfig(beams=64, columns=2048, fov_up_deg=15.0, fov_down_deg=-75.0, max_range=200.0,
                       min_range=0.5, rate_hz=10.0, mount_xyz=(0.0, 0.0, 0.10), mount_rpy=(0.0, 0.0, 0.0))


def rover_lidar() -> LidarConfig:
    """A 64-beam lidar on a car roof, +10° to -30°: 1.8 m above the road and 1.35 m ahead of the
    body origin (the rear-axle centre on the road), i.e. over the middle of a 2.7 m wheelbase.

    The field of view is that of the nuScenes HDL-32E (+10.67° to -30.67°) with twice the rings.
    """
    return LidarConfig(beams=64, columns=2048, fov_up_deg=10.0, fov_down_deg=-30.0, max_range=200.0,
                       min_range=0.5, rate_hz=10.0, mount_xyz=(1.35, 0.0, 1.8), mount_rpy=(0.0, 0.0, 0.0))


@functools.lru_cache(maxsize=16)
def _sweep_pattern(beams: int, columns: int, fov_up_deg: float, fov_down_deg: float, rate_hz: float):
    """Unit directions, ring and time of every ray of a sweep, column-major (firing order).

    Returns
    -------
    directions : (columns * beams, 3) float32, unit vectors in the lidar frame.
    ring : (columns * beams,) float32 ring index (0 = lowest beam).
    t : (columns * beams,) float32 seconds after the frame time.
    """
    cfg = LidarConfig(beams=beams, columns=columns, fov_up_deg=fov_up_deg, fov_down_deg=fov_down_deg,
                      rate_hz=rate_hz)
    az = cfg.azimuths()[:, None]                       # (columns, 1)
    el = cfg.elevations()[None, :]                     # (1, beams)
    d = np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)), -1)
    directions = d.reshape(-1, 3).astype(np.float32)   # (columns * beams, 3), ray k*beams + ring
    ring = np.tile(np.arange(beams, dtype=np.float32), columns)
    t = np.repeat((np.arange(columns) / (columns * rate_hz)).astype(np.float32), beams)
    out = directions, ring, t
    for a in out:
        a.setflags(write=False)
    return out


def sweep_pattern(config: LidarConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cached ``(directions (n, 3) float32 lidar frame, ring (n,) float32, t (n,) float32 s)`` of ``config``.

    Ray ``k * beams + r`` is column ``k``, ring ``r``; the arrays are read-only.
    """
    return _sweep_pattern(config.beams, config.columns, config.fov_up_deg, config.fov_down_deg, config.rate_hz)


def scan(caster: Caster, pose: Pose, config: LidarConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """One sweep of the lidar at ``pose``.

    Parameters
    ----------
    caster : callable
        ``cast(origins (n, 3), directions (n, 3), max_range) -> RayHits`` in the world frame.
    pose : Pose
        Vehicle pose at the frame time (T_world_body = ``pose.matrix()``).
    config : LidarConfig
        Sensor and mount.
    rng : numpy Generator, optional
        Draws the range noise and dropout; required when either is enabled.

    Returns
    -------
    points : (N, 8) float32
        One row per return, in firing order, columns :data:`LIDAR_COLUMNS`: x, y, z (metres,
        lidar frame at the frame time), intensity [0, 1], label (occupancy id), instance (-1 none),
        ring (0 = lowest beam), t (s after the frame time, in ``[0, 1 / rate_hz)``).
    """
    noisy = config.range_noise_std > 0 or config.dropout > 0
    if noisy and rng is None:
        raise ValueError("scan: the config enables range noise or dropout; pass rng=np.random.default_rng(seed)")
    d_sensor, ring, t = _sweep_pattern(config.beams, config.columns, config.fov_up_deg, config.fov_down_deg,
                                       config.rate_hz)
    T_world_sensor = pose.matrix() @ config.T_body_sensor()
    rot = np.ascontiguousarray(T_world_sensor[:3, :3], dtype=np.float32)
    d_world = _rotate(rot, d_sensor)                                            # (n, 3) float32
    origins = np.broadcast_to(T_world_sensor[:3, 3].astype(np.float32), d_world.shape)
    hits = caster(origins, d_world, config.max_range)

    keep = _returning(hits.distance, hits.triangle, np.float32(config.min_range), np.float32(config.max_range))
    ranges = hits.distance
    if noisy:
        r = ranges[keep]
        if config.dropout > 0:
            alive = rng.random(len(keep)) >= config.dropout
            keep, r = keep[alive], r[alive]
        if config.range_noise_std > 0:
            r = r + rng.normal(0.0, config.range_noise_std, len(r)).astype(np.float32)
            ok = (r >= config.min_range) & (r <= config.max_range)
            keep, r = keep[ok], r[ok]
        ranges = ranges.copy()
        ranges[keep] = r
    return _points(keep, ranges, hits.normal, hits.semantic, d_world, REFLECTIVITY, d_sensor, hits.cls,
                   hits.instance, ring, t)


# The kernels below repeat numpy's float32 arithmetic operation for operation (products summed
# x, y, z in order, no fused multiply-add), so a scan is bit-identical to the vectorised numpy
# formulation it replaced (``tests/sim/test_lidar.py`` checks this against numpy).

@numba.njit(cache=True, nogil=True)
def _rotate(rot, v):  # pragma: no cover - compiled
    """(n, 3) float32 ``v`` rotated by the (3, 3) float32 ``rot``: ``np.einsum("ij,nj->ni", rot, v)``."""
    out = np.empty((v.shape[0], 3), np.float32)
    for n in range(v.shape[0]):
        x, y, z = v[n, 0], v[n, 1], v[n, 2]
        for i in range(3):
            out[n, i] = rot[i, 0] * x + rot[i, 1] * y + rot[i, 2] * z
    return out


@numba.njit(cache=True, nogil=True)
def _returning(distance, triangle, min_range, max_range):  # pragma: no cover - compiled
    """(k,) int64 ascending indices of the rays that hit with ``min_range <= distance <= max_range``
    (float32 distances and bounds)."""
    n = distance.shape[0]
    keep = np.empty(n + 1, np.int64)
    k = 0
    for i in range(n):                          # branch-free append: write, then advance if kept
        keep[k] = i
        k += (triangle[i] >= 0) & (distance[i] >= min_range) & (distance[i] <= max_range)
    return keep[:k]


@numba.njit(cache=True, nogil=True)
def _points(keep, ranges, normal, semantic, directions, reflectivity, d_sensor, cls, instance, ring,
            t):  # pragma: no cover - compiled
    """(k, len(LIDAR_COLUMNS)) float32 rows of :data:`LIDAR_COLUMNS` for the returning rays ``keep``
    (k,): the point ``d_sensor * ranges`` in the lidar frame, the intensity
    ``min(reflectivity[semantic] * |normal . direction|, 1)``, label, instance, ring, firing time.
    Every other argument has one entry per ray of the sweep."""
    k = keep.shape[0]
    out = np.empty((k, _NUM_LIDAR_COLUMNS), np.float32)
    one = np.float32(1.0)
    for j in range(k):
        i = keep[j]
        r = ranges[i]
        cos_inc = abs(normal[i, 0] * directions[i, 0] + normal[i, 1] * directions[i, 1]
                      + normal[i, 2] * directions[i, 2])
        value = reflectivity[semantic[i]] * cos_inc
        out[j, 0] = d_sensor[i, 0] * r
        out[j, 1] = d_sensor[i, 1] * r
        out[j, 2] = d_sensor[i, 2] * r
        out[j, 3] = one if value > one else value   # np.minimum(value, 1), NaN kept
        out[j, 4] = cls[i]
        out[j, 5] = instance[i]
        out[j, 6] = ring[i]
        out[j, 7] = t[i]
    return out
