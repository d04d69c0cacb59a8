"""MAVLink <-> our frames and mission items: ENU/NED conversion, attitude, QGC WPL item files.

Shared by the simulator's endpoint (:mod:`vlwm.sim.mavlink.endpoint`) and the mission client
(:mod:`vlwm.sim.mavlink.client`).  MAVLink speaks NED (x north, y east, z down; yaw clockwise from
north; body x forward, y right, z down); the scene is local ENU with FLU bodies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vlwm.io.frames import quat_to_matrix
from vlwm.sim.qgc_wpl import HEADER, LOITER_POINTS_PER_TURN, MAV_CMD_DO_CHANGE_SPEED, MAV_CMD_NAV_LOITER_TURNS

_ENU_TO_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_FLU_TO_FRD = np.diag([1.0, -1.0, -1.0])


def enu_to_ned(v) -> np.ndarray:
    """(3,) local ENU vector -> NED (also NED -> ENU: the map is its own inverse)."""
    return _ENU_TO_NED @ np.asarray(v, np.float64)


def attitude_ned(orientation, angular_velocity) -> tuple[float, float, float, float, float, float]:
    """Body attitude (x, y, z, w) FLU->ENU and body rates (3,) rad/s FLU -> ATTITUDE's
    (roll, pitch, yaw, rollspeed, pitchspeed, yawspeed): aircraft FRD in NED, yaw clockwise from north."""
    r = _ENU_TO_NED @ quat_to_matrix(orientation) @ _FLU_TO_FRD
    roll = math.atan2(r[2, 1], r[2, 2])
    pitch = -math.asin(float(np.clip(r[2, 0], -1.0, 1.0)))
    yaw = math.atan2(r[1, 0], r[0, 0])
    w = _FLU_TO_FRD @ np.asarray(angular_velocity, np.float64)
    return roll, pitch, yaw, float(w[0]), float(w[1]), float(w[2])


# ---------------------------------------------------------------------------------------------
# Mission items
# ---------------------------------------------------------------------------------------------


class MissionItem(NamedTuple):
    """One mission item as MISSION_ITEM_INT carries it: ``x``/``y`` latitude/longitude in 1e-7
    degrees, ``z`` altitude (m) in ``frame``; one line of a QGC WPL 110 file."""

    seq: int
    frame: int
    command: int
    current: int
    autocontinue: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float

    @classmethod
    def from_message(cls, msg) -> "MissionItem":
        """From MISSION_ITEM_INT, or MISSION_ITEM (float degrees)."""
        scale = 1 if msg.get_type() == "MISSION_ITEM_INT" else 1e7
        return cls(int(msg.seq), int(msg.frame), int(msg.command), int(msg.current), int(msg.autocontinue),
                   float(msg.param1), float(msg.param2), float(msg.param3), float(msg.param4),
                   int(round(msg.x * scale)), int(round(msg.y * scale)), float(msg.z))

    def wpl_line(self, seq: int | None = None) -> str:
        def num(v):
            return "nan" if math.isnan(v) else f"{v:.9g}"
        return "\t".join([str(self.seq if seq is None else seq), str(self.current), str(self.frame), str(self.command),
                          *(num(p) for p in (self.param1, self.param2, self.param3, self.param4)),
                          f"{self.x / 1e7:.7f}", f"{self.y / 1e7:.7f}", num(self.z), str(self.autocontinue)])


def read_wpl_items(path: str | Path) -> list[MissionItem]:
    """The items of a QGC WPL 110 file, as uploaded (no geometry interpretation)."""
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"{path}:1: expected the header {HEADER!r}")
    items = []
    for lineno, line in enumerate(lines[1:], start=2):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) != 12:
            raise ValueError(f"{path}:{lineno}: expected 12 fields, got {len(f)}")
        items.append(MissionItem(int(f[0]), int(f[2]), int(f[3]), int(f[1]), int(f[11]),
                                 *(float(v) for v in f[4:8]), int(round(float(f[8]) * 1e7)),
                                 int(round(float(f[9]) * 1e7)), float(f[10])))
    return items


def write_wpl_items(items, path: str | Path) -> Path:
    """Write items as a QGC WPL 110 file, renumbered 0..n-1."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER] + [it.wpl_line(seq=i) for i, it in enumerate(items)]) + "\n")
    return path


def waypoint_item_seqs(items) -> list[int]:
    """The item seq each :class:`Waypoint` read from ``items`` (home first) comes from, mirroring
    :func:`vlwm.sim.qgc_wpl.read_qgc_wpl`: speed changes give none, NAV_LOITER_TURNS a circle."""
    seqs: list[int] = []
    for it in items[1:]:
        if it.command == MAV_CMD_DO_CHANGE_SPEED:
            continue
        n = 1 if it.command != MAV_CMD_NAV_LOITER_TURNS else max(1, int(round(it.param1 * LOITER_POINTS_PER_TURN))) + 1
        seqs += [it.seq] * n
    return seqs
