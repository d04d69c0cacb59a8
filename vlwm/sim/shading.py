"""Per-pixel shading of camera rays: the look of :mod:`vlwm.sim.camera` images.

A plausible, deterministic rendering — not physically based: a natural city palette per
:class:`CityClass` (facade, roof and car colours chosen per instance by a hash of the instance id),
Lambert shading from one sun direction plus ambient light (no cast shadows), a blocky texture from a
hash of the world hit position, simple windows on building walls, distance haze and a sky gradient
where rays miss.  Two implementations of one recipe: :func:`compose_reference` (numpy, for tests)
and the compiled ``_compose_kernel`` (numba, used by default).
"""

from __future__ import annotations

import numba
import numpy as np

from vlwm.io.image_io import DEPTH_MAX_MM, DEPTH_SCALE_MM, NO_DEPTH
from vlwm.labels import NUM_CITY_CLASSES, CityClass

#: (3,) world-frame unit vector towards the sun: south-east, ~58° above the horizon.
DEFAULT_SUN_DIR = tuple((np.array([0.45, -0.3, 0.85]) / np.linalg.norm([0.45, -0.3, 0.85])).tolist())
AMBIENT = 0.42             #: light reaching surfaces that face away from the sun (sky light)
SUN = 0.68                 #: extra light on a surface facing the sun head-on
HAZE_DISTANCE = 1500.0     #: metres over which haze takes 63 % of a surface's colour
SKY_HORIZON = np.array([0.80, 0.86, 0.92], np.float32)   #: sky colour at the horizon (and haze)
SKY_ZENITH = np.array([0.33, 0.53, 0.84], np.float32)    #: sky colour straight up
TEXTURE_CELLS_PER_M = 4.0         #: fine texture cells per metre (0.25 m cells)
TEXTURE_FINE_AMPLITUDE = 0.05     #: +- brightness variation between fine cells
TEXTURE_COARSE_SHIFT = 3          #: coarse cells are 2**3 fine cells wide (2 m)
TEXTURE_COARSE_AMPLITUDE = 0.08   #: +- brightness variation between coarse cells
FLOOR_HEIGHT = 3.2         #: building storey height for the window pattern, metres
WINDOW_SPACING = 2.6       #: horizontal window pitch, metres

# ------------------------------------------------------------------------------ palette (RGB 0..255)

_PALETTE = {
    CityClass.UNKNOWN: (128, 128, 128), CityClass.BUILDING: (190, 182, 170), CityClass.ROAD: (86, 87, 90),
    CityClass.SIDEWALK: (176, 172, 164), CityClass.CROSSWALK: (196, 196, 190), CityClass.PARKING: (104, 104, 106),
    CityClass.RAILWAY: (112, 98, 86), CityClass.WATER: (58, 88, 116), CityClass.TERRAIN: (126, 116, 94),
    CityClass.GRASS: (96, 138, 70), CityClass.VEGETATION: (62, 104, 52), CityClass.BRIDGE: (160, 158, 152),
    CityClass.BARRIER: (168, 164, 152), CityClass.POLE: (112, 112, 116), CityClass.CAR: (160, 164, 170),
    CityClass.BUS: (84, 140, 96), CityClass.TRUCK: (206, 206, 200), CityClass.PEDESTRIAN: (118, 92, 80),
    CityClass.BICYCLE: (60, 60, 70), CityClass.MOTORCYCLE: (52, 52, 60), CityClass.DRONE: (40, 40, 44),
    CityClass.CONSTRUCTION_VEHICLE: (228, 170, 40), CityClass.TRAFFIC_CONE: (238, 110, 32),
    CityClass.TRAILER: (182, 182, 178),
}
#: (NUM_CITY_CLASSES, 3) float32 base colour (0..1) per city class.
CITY_PALETTE = np.array([_PALETTE[c] for c in CityClass], np.float32) / 255.0
#: Facade colours a building picks from by its instance id: beige, concrete, glass blue, off-white, brick, slate.
FACADE_COLOURS = np.array([(200, 190, 172), (168, 168, 165), (118, 138, 160), (220, 217, 208), (150, 106, 86),
                           (96, 100, 108)], np.float32) / 255.0
#: Roof colours (up-facing building triangles): grey, dark grey, green-grey, red-brown.
ROOF_COLOURS = np.array([(132, 130, 126), (84, 86, 90), (112, 122, 110), (126, 82, 70)], np.float32) / 255.0
#: Car paints: white, black, silver, red, blue, grey.
CAR_COLOURS = np.array([(228, 228, 226), (30, 30, 34), (164, 168, 172), (150, 32, 30), (40, 62, 122),
                        (92, 92, 96)], np.float32) / 255.0
WINDOW_COLOUR = np.array([0.30, 0.36, 0.44], np.float32)  #: window glass on building walls


# ------------------------------------------------------------------------------ shading
# Two implementations of the same per-pixel recipe: `compose_reference` in plain numpy (obviously
# correct, used by the tests) and `_compose_kernel`, one compiled pass with no temporaries.  They
# agree to one grey level except where float32 round-off puts a pixel in another texture cell.

SHADE_BACKENDS = ("numba", "numpy")
FACADE_BASE = NUM_CITY_CLASSES                          #: material ids: city classes first, then
ROOF_BASE = FACADE_BASE + len(FACADE_COLOURS)           #: facades, roofs, car paints and window glass
CAR_BASE = ROOF_BASE + len(ROOF_COLOURS)
WINDOW_MATERIAL = CAR_BASE + len(CAR_COLOURS)
#: (3, materials) float32 albedo (0..1) per material id, one row per channel.
MATERIAL_COLOURS = np.ascontiguousarray(
    np.concatenate([CITY_PALETTE, FACADE_COLOURS, ROOF_COLOURS, CAR_COLOURS, WINDOW_COLOUR[None]]).T)
_BUILDING, _CAR = int(CityClass.BUILDING), int(CityClass.CAR)
_HASH_KEY_PRIMES = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D)  #: odd multipliers of the x, y, z hash keys
_U32 = 0xFFFFFFFF


def _salt(seed: int) -> int:
    """Initial 32-bit hash state for ``seed``."""
    return (int(seed) * 0x27D4EB2F + 0x165667B1) & _U32


def _hash_u32(keys: list[np.ndarray], salt: int) -> np.ndarray:
    """(n,) uint32 hash of 32-bit integer key arrays (each (n,)): keys times odd constants, xor-ed
    into the salt, then murmur3's finaliser."""
    h = np.full(len(keys[0]), salt, np.uint32)
    for k, p in zip(keys, _HASH_KEY_PRIMES):
        h ^= k.astype(np.int32, copy=False).view(np.uint32) * np.uint32(p)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _unit(h: np.ndarray) -> np.ndarray:
    """(n,) float32 in [0, 1) from the top 24 bits of a uint32 hash."""
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def compose_reference(origins, directions, cos_z, distance, triangle, normal, semantic, instance, sun, salt,
                      salt_instance, material_colours) -> tuple[np.ndarray, np.ndarray]:
    """The pixel recipe in numpy: colour and z-depth of every ray.

    Parameters
    ----------
    origins, directions : (n, 3) float32
        World-frame ray origins and unit directions.
    cos_z : (n,) float32
        Optical-axis component of each unit ray (distance -> z-depth).
    distance, triangle, normal, semantic, instance
        The caster's hits (:class:`vlwm.world.scene.RayHits` fields; normals face the camera).
    sun : (3,) float32
        Unit vector towards the sun, world frame.
    salt, salt_instance : int
        Hash states (:func:`_salt`) of the texture and of the per-instance colour choice.
    material_colours : (3, materials) float32
        :data:`MATERIAL_COLOURS`.

    Returns
    -------
    rgb : (n, 3) uint8;  depth_mm : (n,) uint16 (0 = no hit or beyond 65.535 m).
    """
    hit = triangle >= 0
    dist = np.where(hit, distance, np.float32(0.0))
    points = origins + directions * dist[:, None]
    nz = normal[:, 2]
    # Materials: buildings pick a facade and a roof colour (up-facing triangles) by a hash of the
    # instance id, cars a paint; walls get windows on a storey x pitch grid; objects are tinted +-10 %.
    material = semantic.astype(np.intp)
    pick = _hash_u32([instance], salt_instance)
    bldg = semantic == _BUILDING
    roof, wall = bldg & (nz > 0.7), bldg & (np.abs(nz) < 0.3)
    np.copyto(material, FACADE_BASE + (pick % np.uint32(len(FACADE_COLOURS))).astype(np.intp), where=wall)
    np.copyto(material, ROOF_BASE + ((pick >> np.uint32(8)) % np.uint32(len(ROOF_COLOURS))).astype(np.intp),
              where=roof)
    np.copyto(material, CAR_BASE + (pick % np.uint32(len(CAR_COLOURS))).astype(np.intp), where=semantic == _CAR)
    along = normal[:, 0] * points[:, 1] - normal[:, 1] * points[:, 0]          # horizontal position on the wall
    fz = _frac(points[:, 2] * np.float32(1.0 / FLOOR_HEIGHT))
    fh = _frac(along * np.float32(1.0 / WINDOW_SPACING))
    np.copyto(material, WINDOW_MATERIAL, where=wall & (fz > 0.35) & (fz < 0.8) & (fh > 0.2) & (fh < 0.8))
    factor = np.where(instance >= 0, np.float32(0.9) + np.float32(0.2) * _unit(pick), np.float32(1.0))
    # Texture: value noise on a fine and a coarse grid of world cells (the coarse index is the fine
    # one shifted right).  Cells are keyed a little below the surface, so flat faces (the z = 0
    # ground, axis-aligned walls) fall into one cell layer instead of flickering with round-off.
    inner = (points - normal * np.float32(0.25 / TEXTURE_CELLS_PER_M)) * np.float32(TEXTURE_CELLS_PER_M)
    cell = np.floor(inner).astype(np.int32)
    for shift, amplitude in ((0, TEXTURE_FINE_AMPLITUDE), (TEXTURE_COARSE_SHIFT, TEXTURE_COARSE_AMPLITUDE)):
        noise = _unit(_hash_u32([cell[:, i] >> np.int32(shift) for i in range(3)], salt))
        factor = factor * (np.float32(1.0 - amplitude) + np.float32(2.0 * amplitude) * noise)
    # Light: ambient sky light (a little more on up-facing surfaces) plus Lambert sun; haze with distance.
    lambert = np.maximum(normal @ sun, np.float32(0.0))
    light = np.float32(AMBIENT * 0.85) + np.float32(AMBIENT * 0.15) * nz + np.float32(SUN) * lambert
    haze = np.float32(1.0) - np.exp(-dist * np.float32(1.0 / HAZE_DISTANCE))
    factor = factor * light * (np.float32(1.0) - haze)
    sky_t = np.sqrt(np.clip(directions[:, 2], 0.0, 1.0))
    rgb = np.empty((len(dist), 3), np.uint8)
    for c in range(3):
        colour = np.where(hit, material_colours[c][material] * factor + SKY_HORIZON[c] * haze,
                          SKY_HORIZON[c] + (SKY_ZENITH[c] - SKY_HORIZON[c]) * sky_t)
        rgb[:, c] = np.clip(colour * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    mm = np.rint(dist * cos_z * np.float32(DEPTH_SCALE_MM))
    depth = np.where(hit & (mm <= DEPTH_MAX_MM), mm, NO_DEPTH).astype(np.uint16)
    return rgb, depth


@numba.njit(cache=True, nogil=True, inline="always")
def _mix32(h):  # pragma: no cover - compiled
    """murmur3 finaliser on a uint64 holding 32 bits (the same numbers as :func:`_hash_u32`)."""
    m = np.uint64(_U32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    h ^= h >> np.uint64(16)
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _key(h, k, prime):  # pragma: no cover - compiled
    """Xor 32-bit key ``k`` (an int32 as bits) times ``prime`` into the state ``h``."""
    m = np.uint64(_U32)
    return h ^ (((np.uint64(k) & m) * np.uint64(prime)) & m)


@numba.njit(cache=True, nogil=True)
def _compose_kernel(origins, directions, cos_z, distance, triangle, normal, semantic, instance, sun, salt,
                    salt_instance, material_colours):  # pragma: no cover - compiled
    """:func:`compose_reference` as one compiled pass (same arguments, same results)."""
    n = origins.shape[0]
    rgb = np.empty((n, 3), np.uint8)
    depth = np.zeros(n, np.uint16)
    one, zero = np.float32(1.0), np.float32(0.0)
    colour = np.empty(3, np.float32)
    for i in range(n):
        if triangle[i] < 0:
            t = np.float32(np.sqrt(min(max(directions[i, 2], zero), one)))
            for c in range(3):
                colour[c] = SKY_HORIZON[c] + (SKY_ZENITH[c] - SKY_HORIZON[c]) * t
        else:
            d = distance[i]
            px = origins[i, 0] + directions[i, 0] * d
            py = origins[i, 1] + directions[i, 1] * d
            pz = origins[i, 2] + directions[i, 2] * d
            nx, ny, nz = normal[i, 0], normal[i, 1], normal[i, 2]
            s, inst = semantic[i], instance[i]
            pick = _mix32(_key(np.uint64(salt_instance), inst, _HASH_KEY_PRIMES[0]))
            material = np.intp(s)
            if s == _BUILDING and nz > 0.7:
                material = ROOF_BASE + np.intp((pick >> np.uint64(8)) % np.uint64(len(ROOF_COLOURS)))
            elif s == _BUILDING and abs(nz) < 0.3:
                material = FACADE_BASE + np.intp(pick % np.uint64(len(FACADE_COLOURS)))
                along = nx * py - ny * px
                fz = pz * np.float32(1.0 / FLOOR_HEIGHT)
                fz -= np.floor(fz)
                fh = along * np.float32(1.0 / WINDOW_SPACING)
                fh -= np.floor(fh)
                if 0.35 < fz < 0.8 and 0.2 < fh < 0.8:
                    material = WINDOW_MATERIAL
            elif s == _CAR:
                material = CAR_BASE + np.intp(pick % np.uint64(len(CAR_COLOURS)))
            factor = one
            if inst >= 0:
                factor = np.float32(0.9) + np.float32(0.2) * (
                    np.float32(pick >> np.uint64(8)) * np.float32(1.0 / (1 << 24)))
            off = np.float32(0.25 / TEXTURE_CELLS_PER_M)
            k = np.float32(TEXTURE_CELLS_PER_M)
            cx = np.int32(np.floor((px - nx * off) * k))
            cy = np.int32(np.floor((py - ny * off) * k))
            cz = np.int32(np.floor((pz - nz * off) * k))
            for shift, amplitude in ((0, TEXTURE_FINE_AMPLITUDE), (TEXTURE_COARSE_SHIFT, TEXTURE_COARSE_AMPLITUDE)):
                h = np.uint64(salt)
                h = _key(h, cx >> shift, _HASH_KEY_PRIMES[0])
                h = _key(h, cy >> shift, _HASH_KEY_PRIMES[1])
                h = _key(h, cz >> shift, _HASH_KEY_PRIMES[2])
                noise = np.float32(_mix32(h) >> np.uint64(8)) * np.float32(1.0 / (1 << 24))
                factor = factor * (np.float32(1.0 - amplitude) + np.float32(2.0 * amplitude) * noise)
            lambert = max(nx * sun[0] + ny * sun[1] + nz * sun[2], zero)
            light = np.float32(AMBIENT * 0.85) + np.float32(AMBIENT * 0.15) * nz + np.float32(SUN) * lambert
            haze = one - np.float32(np.exp(-d * np.float32(1.0 / HAZE_DISTANCE)))
            factor = factor * light * (one - haze)
            for c in range(3):
                colour[c] = material_colours[c, material] * factor + SKY_HORIZON[c] * haze
            mm = np.float32(np.rint(d * cos_z[i] * np.float32(DEPTH_SCALE_MM)))
            if mm <= DEPTH_MAX_MM:
                depth[i] = np.uint16(mm)
        for c in range(3):
            rgb[i, c] = np.uint8(min(max(colour[c] * np.float32(255.0) + np.float32(0.5), zero), np.float32(255.0)))
    return rgb, depth
