"""QGC WPL 110 mission files: the text format of ArduPilot, Mission Planner and QGroundControl.

A file is the header line ``QGC WPL 110`` then one item per line, twelve tab-separated fields::

    seq  current  frame  command  p1  p2  p3  p4  lat  lon  alt  autocontinue

Item 0 is home (frame 0 = MAV_FRAME_GLOBAL, altitude above mean sea level); the other items
here use frame 3 (MAV_FRAME_GLOBAL_RELATIVE_ALT: altitude above home).  ``pymavlink.mavwp``
reads what :func:`write_qgc_wpl` writes.  Item mapping (MAVLink command ids):

============  =====================  ================================================
Waypoint      MAVLink                parameters
============  =====================  ================================================
'takeoff'     NAV_TAKEOFF (22)       p4 yaw
'waypoint'    NAV_WAYPOINT (16)      p1 hold (s), p4 yaw
'land'        NAV_LAND (21)          p4 yaw
'rtl'         NAV_RETURN_TO_LAUNCH   —
speed change  DO_CHANGE_SPEED (178)  p1 = 1 (ground speed), p2 m/s (-2: back to default)
============  =====================  ================================================

Yaw is written as a compass heading in degrees (0 = north, clockwise; ``nan`` = none) and read
back into the local frame's yaw (rad, counter-clockwise from east).  Reading also accepts
NAV_LOITER_TIME (19: a waypoint with a hold), NAV_LOITER_TURNS (18: expanded into explicit
circle waypoints), and frames 0/5 (absolute), 3/6 (relative to home), 10/11 (above terrain,
with a ``ground_height`` function).  Anything else is an error naming the file and line.

Latitude/longitude come from the scene's :class:`GeoOrigin` (local ENU <-> its projected CRS
<-> JGD2011 geographic); heights above sea level are local z plus the origin's height.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.world.geo import GeoOrigin, geographic_to_projected, projected_to_geographic
from vlwm.world.scene import Scene

HEADER = "QGC WPL 110"
NUM_FIELDS = 12

MAV_CMD_NAV_WAYPOINT = 16
MAV_CMD_NAV_LOITER_TURNS = 18
MAV_CMD_NAV_LOITER_TIME = 19
MAV_CMD_NAV_RETURN_TO_LAUNCH = 20
MAV_CMD_NAV_LAND = 21
MAV_CMD_NAV_TAKEOFF = 22
MAV_CMD_DO_CHANGE_SPEED = 178

MAV_FRAME_GLOBAL = 0
MAV_FRAME_MISSION = 2
MAV_FRAME_GLOBAL_RELATIVE_ALT = 3
MAV_FRAME_GLOBAL_INT = 5
MAV_FRAME_GLOBAL_RELATIVE_ALT_INT = 6
MAV_FRAME_GLOBAL_TERRAIN_ALT = 10
MAV_FRAME_GLOBAL_TERRAIN_ALT_INT = 11
ABSOLUTE_FRAMES = (MAV_FRAME_GLOBAL, MAV_FRAME_GLOBAL_INT)
RELATIVE_FRAMES = (MAV_FRAME_GLOBAL_RELATIVE_ALT, MAV_FRAME_GLOBAL_RELATIVE_ALT_INT)
TERRAIN_FRAMES = (MAV_FRAME_GLOBAL_TERRAIN_ALT, MAV_FRAME_GLOBAL_TERRAIN_ALT_INT)

SPEED_TYPE_GROUNDSPEED = 1
SPEED_NO_CHANGE = -1.0
SPEED_DEFAULT = -2.0  #: DO_CHANGE_SPEED p2 that returns to the vehicle's default speed
#: NAV_LOITER_TURNS circles are expanded into this many waypoints per turn.
LOITER_POINTS_PER_TURN = 24

_COMMAND_IDS = {"takeoff": MAV_CMD_NAV_TAKEOFF, "waypoint": MAV_CMD_NAV_WAYPOINT, "land": MAV_CMD_NAV_LAND,
                "rtl": MAV_CMD_NAV_RETURN_TO_LAUNCH}


class WPLFormatError(ValueError):
    """A malformed or unsupported QGC WPL file; the message starts with ``path:line:``."""


# ---------------------------------------------------------------------------------------------
# Coordinates
# ---------------------------------------------------------------------------------------------


def local_to_latlon(geo: GeoOrigin, xyz) -> np.ndarray:
    """Local ENU points (n, 3) m -> (n, 3) float64 (latitude deg, longitude deg, height above sea level m)."""
    p = np.asarray(xyz, np.float64).reshape(-1, 3)
    o = geo.origin
    lat, lon = projected_to_geographic(p[:, 0] + o[0], p[:, 1] + o[1], geo.epsg)
    return np.column_stack([np.atleast_1d(lat), np.atleast_1d(lon), p[:, 2] + o[2]])


def latlon_to_local(geo: GeoOrigin, lat, lon, alt_msl) -> np.ndarray:
    """JGD2011 latitude/longitude (deg) and height above sea level (m) -> local ENU (n, 3) float64."""
    east, north = geographic_to_projected(np.atleast_1d(np.asarray(lat, np.float64)),
                                          np.atleast_1d(np.asarray(lon, np.float64)), geo.epsg)
    return geo.to_local(east, north, np.atleast_1d(np.asarray(alt_msl, np.float64)))


def yaw_to_heading_deg(yaw: float | None) -> float:
    """Local yaw (rad, CCW from east) -> compass heading (deg, CW from north, [0, 360)); None -> nan."""
    return math.nan if yaw is None else (90.0 - math.degrees(yaw)) % 360.0


def heading_deg_to_yaw(heading: float) -> float | None:
    """Compass heading (deg) -> local yaw (rad, in (-pi, pi]); nan -> None."""
    if math.isnan(heading):
        return None
    y = math.radians(90.0 - heading)
    return math.atan2(math.sin(y), math.cos(y))


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _num(v: float, digits: int) -> str:
    return "nan" if math.isnan(v) else f"{v:.{digits}f}"


def write_qgc_wpl(mission: Mission, path: str | os.PathLike, geo: GeoOrigin) -> Path:
    """Write ``mission`` as a QGC WPL 110 file (home as item 0); returns the path."""
    path = Path(path)
    home = np.asarray(mission.home, np.float64)
    rows = []

    def row(frame, cmd, p, lla, current=0):
        lat, lon, alt = lla
        rows.append("\t".join([str(len(rows)), str(current), str(frame), str(cmd)]
                              + [_num(float(v), 6) for v in p]
                              + [f"{lat:.10f}", f"{lon:.10f}", _num(alt, 6), "1"]))

    hlat, hlon, hmsl = local_to_latlon(geo, home)[0]
    row(MAV_FRAME_GLOBAL, MAV_CMD_NAV_WAYPOINT, (0, 0, 0, 0), (hlat, hlon, hmsl), current=1)
    lla = local_to_latlon(geo, mission.positions)
    speed = None
    for w, (lat, lon, _) in zip(mission.waypoints, lla):
        if w.speed != speed:
            row(MAV_FRAME_GLOBAL_RELATIVE_ALT, MAV_CMD_DO_CHANGE_SPEED,
                (SPEED_TYPE_GROUNDSPEED, SPEED_DEFAULT if w.speed is None else w.speed, -1, 0), (0.0, 0.0, 0.0))
            speed = w.speed
        rel = w.position[2] - home[2]
        heading = yaw_to_heading_deg(w.yaw)
        if w.command == "rtl":
            row(MAV_FRAME_GLOBAL_RELATIVE_ALT, MAV_CMD_NAV_RETURN_TO_LAUNCH, (0, 0, 0, 0), (0.0, 0.0, 0.0))
        elif w.command == "waypoint":
            row(MAV_FRAME_GLOBAL_RELATIVE_ALT, MAV_CMD_NAV_WAYPOINT, (w.hold_s, 0, 0, heading), (lat, lon, rel))
        else:
            row(MAV_FRAME_GLOBAL_RELATIVE_ALT, _COMMAND_IDS[w.command], (0, 0, 0, heading), (lat, lon, rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_qgc_wpl(path: str | os.PathLike, geo: GeoOrigin, *, vehicle: str = "drone", name: str | None = None,
                 ground_height: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Mission:
    """Read a QGC WPL 110 file into a :class:`Mission` in ``geo``'s local frame.

    ``ground_height(x, y)`` (local m) is needed only for terrain-relative frames (10, 11).
    Raises :class:`WPLFormatError` naming the file and line of the first problem.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such mission file") from None
    except UnicodeDecodeError as exc:
        raise WPLFormatError(f"{path}:1: not a text file ({exc})") from None
    if not lines or lines[0].strip() != HEADER:
        got = lines[0].strip()[:40] if lines else "an empty file"
        raise WPLFormatError(f"{path}:1: expected the header {HEADER!r}, got {got!r}")
    items = []
    for lineno, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        if len(fields) != NUM_FIELDS:
            raise WPLFormatError(f"{path}:{lineno}: expected {NUM_FIELDS} fields "
                                 f"(seq current frame command p1 p2 p3 p4 lat lon alt autocontinue), got {len(fields)}")
        try:
            seq, current, frame, cmd = (int(f) for f in fields[:4])
            values = [float(f) for f in fields[4:11]]
            int(fields[11])
        except ValueError as exc:
            raise WPLFormatError(f"{path}:{lineno}: not a number ({exc})") from None
        if seq != len(items):
            raise WPLFormatError(f"{path}:{lineno}: sequence number {seq}, expected {len(items)}")
        if not all(math.isfinite(v) for v in values[4:]) or not all(math.isfinite(v) or math.isnan(v) for v in values):
            raise WPLFormatError(f"{path}:{lineno}: latitude, longitude and altitude must be finite")
        items.append((lineno, frame, cmd, values))
    if not items:
        raise WPLFormatError(f"{path}:{len(lines)}: no mission items after the header")
    lineno, frame, cmd, (_, _, _, _, lat, lon, alt) = items[0]
    if frame not in ABSOLUTE_FRAMES:
        raise WPLFormatError(f"{path}:{lineno}: item 0 must be home in frame 0 (MAV_FRAME_GLOBAL, altitude above "
                             f"sea level), got frame {frame}")
    home = latlon_to_local(geo, lat, lon, alt)[0]
    waypoints: list[Waypoint] = []
    speed = None
    for lineno, frame, cmd, (p1, p2, p3, p4, lat, lon, alt) in items[1:]:
        where = f"{path}:{lineno}"
        if cmd == MAV_CMD_DO_CHANGE_SPEED:
            if p2 > 0:
                speed = p2
            elif p2 == SPEED_DEFAULT:
                speed = None
            elif p2 != SPEED_NO_CHANGE:
                raise WPLFormatError(f"{where}: DO_CHANGE_SPEED speed {p2} must be > 0, -1 or -2")
            continue
        if cmd == MAV_CMD_NAV_RETURN_TO_LAUNCH:
            waypoints.append(Waypoint(tuple(home), "rtl", speed=speed))
            continue
        if cmd not in (MAV_CMD_NAV_WAYPOINT, MAV_CMD_NAV_TAKEOFF, MAV_CMD_NAV_LAND, MAV_CMD_NAV_LOITER_TIME,
                       MAV_CMD_NAV_LOITER_TURNS):
            raise WPLFormatError(f"{where}: unsupported MAVLink command {cmd}; supported: 16 NAV_WAYPOINT, "
                                 f"18 NAV_LOITER_TURNS, 19 NAV_LOITER_TIME, 20 NAV_RETURN_TO_LAUNCH, 21 NAV_LAND, "
                                 f"22 NAV_TAKEOFF, 178 DO_CHANGE_SPEED")
        xyz = _item_position(where, frame, lat, lon, alt, geo, home, ground_height)
        if cmd == MAV_CMD_NAV_LOITER_TURNS:
            start = waypoints[-1].xyz if waypoints else home
            waypoints += _loiter_circle(where, xyz, p1, p3, start, speed)
            continue
        try:
            if cmd == MAV_CMD_NAV_WAYPOINT:
                waypoints.append(Waypoint(tuple(xyz), "waypoint", speed, heading_deg_to_yaw(p4), p1))
            elif cmd == MAV_CMD_NAV_LOITER_TIME:
                waypoints.append(Waypoint(tuple(xyz), "waypoint", speed, None, p1))
            else:
                command = "takeoff" if cmd == MAV_CMD_NAV_TAKEOFF else "land"
                waypoints.append(Waypoint(tuple(xyz), command, speed, heading_deg_to_yaw(p4)))
        except ValueError as exc:
            raise WPLFormatError(f"{where}: {exc}") from None
    if not waypoints:
        raise WPLFormatError(f"{path}:{items[-1][0]}: the file has a home item but no mission items")
    try:
        return Mission(name or path.stem, vehicle, tuple(home), tuple(waypoints))
    except ValueError as exc:
        raise WPLFormatError(f"{path}: {exc}") from None


def _item_position(where, frame, lat, lon, alt, geo, home, ground_height) -> np.ndarray:
    xyz = latlon_to_local(geo, lat, lon, 0.0)[0]
    if frame in ABSOLUTE_FRAMES:
        xyz[2] = alt - geo.origin[2]
    elif frame in RELATIVE_FRAMES:
        xyz[2] = home[2] + alt
    elif frame in TERRAIN_FRAMES:
        if ground_height is None:
            raise WPLFormatError(f"{where}: frame {frame} (above terrain) needs a scene's ground height; "
                                 f"read it with waypoints_mission(path, scene)")
        xyz[2] = float(ground_height(xyz[0], xyz[1])) + alt
    else:
        raise WPLFormatError(f"{where}: unsupported frame {frame}; supported: 0/5 absolute, 3/6 relative to "
                             f"home, 10/11 above terrain")
    return xyz


def _loiter_circle(where, center, turns, radius, start, speed) -> list[Waypoint]:
    """NAV_LOITER_TURNS as explicit waypoints: ``turns`` circles of ``|radius|`` m around
    ``center`` (clockwise for a positive radius, as ArduPilot), entered nearest ``start``."""
    if not (turns > 0 and radius != 0):
        raise WPLFormatError(f"{where}: NAV_LOITER_TURNS needs turns > 0 and a non-zero radius, got {turns}, {radius}")
    a0 = math.atan2(start[1] - center[1], start[0] - center[0])
    sign = -1.0 if radius > 0 else 1.0
    n = max(1, int(round(turns * LOITER_POINTS_PER_TURN)))
    ang = a0 + sign * 2 * np.pi * np.arange(n + 1) / LOITER_POINTS_PER_TURN
    r = abs(radius)
    return [Waypoint((center[0] + r * math.cos(a), center[1] + r * math.sin(a), center[2]), speed=speed) for a in ang]


def waypoints_mission(path: str | os.PathLike, scene: Scene, vehicle: str = "drone",
                      name: str | None = None) -> Mission:
    """The mission in the QGC WPL file ``path``, placed in ``scene``'s frame (its geo-origin and terrain)."""
    return read_qgc_wpl(path, scene.geo, vehicle=vehicle, name=name, ground_height=scene.ground_height)
