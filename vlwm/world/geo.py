"""Georeferencing: where a scene's local ENU frame sits on the Earth.

A scene's local frame is a projected CRS (for Tokyo the Japan Plane Rectangular CS zone IX,
EPSG:6677: x = easting, y = northing, metres) shifted so that ``origin`` is (0, 0, 0).  Heights
are orthometric (JGD2011 vertical, Tokyo Bay mean sea level) minus ``origin[2]``.

PLATEAU data arrive in EPSG:6697 (JGD2011 geographic + height; axis order latitude, longitude,
height).  :func:`plane_rectangular_zone` picks the zone that covers a longitude/latitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: JGD2011 geographic 3D (lat, lon, h): PLATEAU's CRS.
EPSG_JGD2011_GEOGRAPHIC = 6697
#: JGD2011 Japan Plane Rectangular CS zone I is EPSG:6669, ..., zone XIX is EPSG:6687.
EPSG_JPRCS_ZONE_I = 6669
#: Zone IX (Tokyo, mainland Kanto).
EPSG_TOKYO_ZONE = 6677
#: Default anchor of generated (procedural) worlds: Tokyo Station, (lat, lon) degrees.
TOKYO_STATION_LATLON = (35.681236, 139.767125)

# Origins (lat, lon) of the 19 zones (Japanese Geospatial Information Authority, notice 2002).
_ZONE_ORIGINS = {
    1: (33.0, 129.5), 2: (33.0, 131.0), 3: (36.0, 132 + 1 / 6), 4: (33.0, 133.5),
    5: (36.0, 134 + 1 / 3), 6: (36.0, 136.0), 7: (36.0, 137 + 1 / 6), 8: (36.0, 138.5),
    9: (36.0, 139 + 5 / 6), 10: (40.0, 140 + 5 / 6), 11: (44.0, 140.25), 12: (44.0, 142.25),
    13: (44.0, 144.25), 14: (26.0, 142.0), 15: (26.0, 127.5), 16: (26.0, 124.0),
    17: (26.0, 131.0), 18: (20.0, 136.0), 19: (26.0, 154.0),
}


def plane_rectangular_zone(lat: float, lon: float) -> int:
    """EPSG code of the mainland plane-rectangular zone (I–XIII) whose origin meridian is nearest.

    Zones are assigned by prefecture; for the main islands the nearest origin meridian within the
    zone's latitude band gives the same answer (Tokyo's 23 wards -> IX, Nagano -> VIII).
    """
    if not (20.0 <= lat <= 46.0 and 122.0 <= lon <= 154.5):
        raise ValueError(f"({lat:.5f}, {lon:.5f}) is outside Japan: no plane-rectangular zone covers it")
    mainland = {k: v for k, v in _ZONE_ORIGINS.items() if k <= 13}
    zone = min(mainland, key=lambda k: (abs(mainland[k][1] - lon), abs(mainland[k][0] - lat)))
    return EPSG_JPRCS_ZONE_I + zone - 1


@lru_cache(maxsize=16)
def _transformer(src: int, dst: int):
    from pyproj import CRS, Transformer

    try:
        return Transformer.from_crs(CRS.from_epsg(src), CRS.from_epsg(dst), always_xy=False)
    except Exception as exc:  # pyproj raises CRSError/ProjError with terse messages
        raise ValueError(f"cannot transform EPSG:{src} -> EPSG:{dst}: {exc}") from exc


def geographic_to_projected(lat, lon, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """JGD2011 latitude/longitude (degrees) -> (easting, northing) metres in ``epsg``."""
    # EPSG:6669..6687 axis order is (northing X, easting Y); ask for it and swap explicitly.
    north, east = _transformer(EPSG_JGD2011_GEOGRAPHIC, epsg).transform(np.asarray(lat), np.asarray(lon))[:2]
    if epsg < EPSG_JPRCS_ZONE_I or epsg > EPSG_JPRCS_ZONE_I + 18:
        east, north = north, east  # CRSs with (easting, northing) order
    return np.asarray(east, dtype=np.float64), np.asarray(north, dtype=np.float64)


def projected_to_geographic(east, north, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """(easting, northing) metres in ``epsg`` -> JGD2011 (latitude, longitude) degrees."""
    if EPSG_JPRCS_ZONE_I <= epsg <= EPSG_JPRCS_ZONE_I + 18:
        a, b = north, east
    else:
        a, b = east, north
    lat, lon = _transformer(epsg, EPSG_JGD2011_GEOGRAPHIC).transform(np.asarray(a), np.asarray(b))[:2]
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


@dataclass(frozen=True)
class GeoOrigin:
    """Where the local frame's (0, 0, 0) is.

    Attributes
    ----------
    epsg : int
        Projected CRS whose axes the local frame shares (east = +x, north = +y).
    origin : (3,) float
        (easting, northing, orthometric height) in metres of the local origin, in ``epsg``.
    source_epsg : int
        CRS the source data came in (6697 for PLATEAU; also recorded for generated worlds).
    """

    epsg: int
    origin: tuple[float, float, float]
    source_epsg: int = EPSG_JGD2011_GEOGRAPHIC

    @classmethod
    def at_latlon(cls, lat: float, lon: float, height: float = 0.0, epsg: int | None = None) -> "GeoOrigin":
        """A local frame anchored at JGD2011 ``lat``, ``lon`` (degrees) and ``height`` (m)."""
        epsg = plane_rectangular_zone(lat, lon) if epsg is None else epsg
        e, n = geographic_to_projected(lat, lon, epsg)
        return cls(epsg=int(epsg), origin=(float(e), float(n), float(height)))

    def latlon(self) -> tuple[float, float, float]:
        """(latitude deg, longitude deg, height m) of the local origin."""
        lat, lon = projected_to_geographic(self.origin[0], self.origin[1], self.epsg)
        return float(lat), float(lon), float(self.origin[2])

    def to_local(self, east, north, height) -> np.ndarray:
        """Projected coordinates (m, in ``epsg``) -> local ENU (..., 3) float64."""
        o = self.origin
        return np.stack([np.asarray(east) - o[0], np.asarray(north) - o[1], np.asarray(height) - o[2]], axis=-1)

    def to_dict(self) -> dict:
        lat, lon, h = self.latlon()
        return {"epsg": self.epsg, "origin": list(self.origin), "source_epsg": self.source_epsg,
                "latitude": lat, "longitude": lon, "height": h}

    @classmethod
    def from_dict(cls, d: dict) -> "GeoOrigin":
        return cls(epsg=int(d["epsg"]), origin=tuple(float(v) for v in d["origin"]),
                   source_epsg=int(d.get("source_epsg", EPSG_JGD2011_GEOGRAPHIC)))
