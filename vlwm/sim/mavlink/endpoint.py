"""One simulated vehicle as a MAVLink system on loopback UDP, following ArduPilot SITL conventions.

**Ports** (:mod:`vlwm.sim.mavlink.ports`, :func:`~vlwm.sim.mavlink.ports.endpoint_ports`).  SITL
instance ``i`` sends to a ground station listening on UDP ``14550 + 10 i``
(``sim_vehicle.py --out udp:127.0.0.1:14550``).  So does vehicle ``i`` here: its socket binds
``127.0.0.1:(14550 + 10 i + 5)`` and sends every message to ``127.0.0.1:(14550 + 10 i)``, where a
GCS or ``scripts/data_collection_mission.py --connect udp:127.0.0.1:14550`` listens (pymavlink's
``udp:``/``udpin:`` = listen).  It answers whoever talks to it: a second client may connect with
``udpout:127.0.0.1:14555`` and is served as long as it keeps talking (see PEER_TIMEOUT_S).

**Frames.**  The vehicle lives in the scene's local ENU frame (x east, y north, z up; yaw
counter-clockwise from east); MAVLink speaks NED (x north, y east, z down; yaw clockwise from
north; body x forward, y right, z down).  Latitude/longitude/MSL come from the scene's geo-origin
(:mod:`vlwm.sim.qgc_wpl` helpers); relative altitudes are above the vehicle's home ground;
LOCAL_POSITION_NED is relative to where the vehicle started (ArduPilot's EKF origin).

**Modes** are ArduPilot's custom_mode numbers (pymavlink's tables): Copter STABILIZE 0, AUTO 3,
GUIDED 4, LOITER 5, RTL 6, LAND 9; Rover MANUAL 0, HOLD 4, AUTO 10, RTL 11, GUIDED 15.  With no
pilot, the manual and position-hold modes hover (drone) or stand (rover) where the vehicle is.

**Missions** arrive with the MAVLink mission protocol (item 0 is home, as in ArduPilot) and are
read with the same QGC WPL reader as ``vlwm simulate --waypoints``: each accepted upload is saved
as ``<mission_dir>/<vehicle_id>_missionN.waypoints``.  Camera, gimbal, servo and ROI items are
accepted and ignored; a mission the planner refuses is answered MAV_MISSION_INVALID plus a
STATUSTEXT saying why.  Deviation from ArduPilot: AUTO needs the vehicle armed (arm in GUIDED,
take off or not, then AUTO or MISSION_START).
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from pathlib import Path
from typing import Callable

import numpy as np
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vlwm.sim.mavlink.items import MissionItem, attitude_ned, enu_to_ned, waypoint_item_seqs, write_wpl_items
from vlwm.sim.planning import PlanningError
from vlwm.sim.qgc_wpl import latlon_to_local, local_to_latlon, waypoints_mission
from vlwm.sim.vehicles import Drone
from vlwm.world.scene import Scene

FAST_PERIOD_S = 0.1          #: position, attitude, VFR_HUD, MISSION_CURRENT every 0.1 s of sim time (10 Hz) ...
FAST_MIN_WALL_S = 0.04       #: ... but never more often than every 0.04 s of wall time (fast mode)
SLOW_PERIOD_S = 1.0          #: HEARTBEAT, SYS_STATUS, GPS_RAW_INT, EXTENDED_SYS_STATE every 1 s (sim or wall) ...
SLOW_MIN_WALL_S = 0.25       #: ... but never more often than every 0.25 s of wall time
PEER_TIMEOUT_S = 10.0        #: a client heard from is sent to until silent this long (wall s)
MISSION_RETRY_S = 1.0        #: an unanswered mission item request is repeated after this (wall s) ...
MISSION_RETRIES = 5          #: ... this many times, then the upload is cancelled
ARM_FORCE_MAGIC = 21196      #: COMPONENT_ARM_DISARM param2 that forces (ArduPilot)
STATUSTEXT_LEN = 50          #: characters per STATUSTEXT chunk
ROVER_REACH_M = 6.0          #: a rover item is reached within this distance of its road node
COPTER_MODES = {name: number for number, name in mavutil.mode_mapping_acm.items()}
ROVER_MODES = {name: number for number, name in mavutil.mode_mapping_rover.items()}
#: Modes without a pilot: hover (drone) / stand (rover) where the vehicle is.
DRONE_HOLD_MODES = ("STABILIZE", "ALT_HOLD", "LOITER", "POSHOLD", "BRAKE")
ROVER_HOLD_MODES = ("MANUAL", "ACRO", "STEERING", "LOITER")
#: Mission items that do not move the vehicle (camera, gimbal, servo, relay, ROI): accepted, ignored.
IGNORED_COMMANDS = frozenset({181, 183, 195, 197, 201, 202, 203, 205, 206, 214, 530, 1000, 2000, 2001, 2500, 2501})
#: Frames of SET_POSITION_TARGET_LOCAL_NED: from the origin, from the vehicle, from the vehicle along its heading.
LOCAL_FRAMES = (mavlink.MAV_FRAME_LOCAL_NED, mavlink.MAV_FRAME_LOCAL_OFFSET_NED, mavlink.MAV_FRAME_BODY_NED,
                mavlink.MAV_FRAME_BODY_OFFSET_NED, mavlink.MAV_FRAME_BODY_FRD)
_RESUMABLE_STATES = (mavlink.MISSION_STATE_NOT_STARTED, mavlink.MISSION_STATE_PAUSED)


# ---------------------------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------------------------


class Refused(Exception):
    """A command the vehicle will not carry out: its MAV_RESULT and the reason for the GCS."""

    def __init__(self, result: int, text: str):
        super().__init__(text)
        self.result = result


class _Datagrams:
    """The file pymavlink writes packets to: one datagram per packet to every peer."""

    def __init__(self, endpoint: "VehicleEndpoint"):
        self.endpoint = endpoint

    def write(self, buf: bytes) -> None:
        for addr in self.endpoint.peers():
            # Nobody listening (yet) is normal: telemetry is fire-and-forget, like SITL's.
            with contextlib.suppress(OSError):
                self.endpoint.sock.sendto(buf, addr)


class VehicleEndpoint:
    """A :class:`~vlwm.sim.vehicles.Drone` or :class:`~vlwm.sim.vehicles.Rover` as MAVLink system ``sysid``.

    The owner calls :meth:`poll` (read and act on what arrived) and :meth:`update` (after each
    physics step: mission progress events, telemetry) from its loop; nothing runs on its own.
    ``gcs_addr`` is where telemetry goes, ``bind_addr`` the vehicle's socket (see the module doc).
    """

    def __init__(self, vehicle, scene: Scene, *, vehicle_id: str, sysid: int, gcs_addr: tuple[str, int],
                 bind_addr: tuple[str, int], mission_dir: str | Path, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic):
        self.vehicle, self.scene, self.vehicle_id, self.sysid = vehicle, scene, vehicle_id, int(sysid)
        self.kind = "drone" if isinstance(vehicle, Drone) else "rover"
        self.modes = COPTER_MODES if self.kind == "drone" else ROVER_MODES
        self.mission_dir, self.log, self.clock = Path(mission_dir), log, clock
        self.gcs_addr = gcs_addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(bind_addr)
        except OSError as exc:
            self.sock.close()
            raise OSError(f"{vehicle_id}: cannot bind UDP {bind_addr[0]}:{bind_addr[1]} ({exc}); is another "
                          f"simulator running? choose other ports with --port-base") from None
        self.sock.setblocking(False)
        self._heard: dict[tuple[str, int], float] = {}
        self.mav = mavlink.MAVLink(_Datagrams(self), srcSystem=self.sysid, srcComponent=mavlink.MAV_COMP_ID_AUTOPILOT1)
        self.mav.robust_parsing = True
        self.origin = vehicle.position.copy()
        """(3,) local ENU m: where the vehicle started, the LOCAL_POSITION_NED origin."""
        self.items: list[MissionItem] = []
        """The stored mission, item 0 = home (as uploaded)."""
        self.missions: list[dict] = []
        """Accepted uploads: sim time, file, item count (for the recording manifest)."""
        self.reached: list[int] = []
        """Seqs announced with MISSION_ITEM_REACHED, in order."""
        self.t = 0.0
        self._alias: str | None = "STABILIZE" if self.kind == "drone" else "MANUAL"
        self._upload: dict | None = None
        self._wp_seq: list[int] | None = None
        self._goal_xy: np.ndarray | None = None
        self._next_wp = 0
        self._current = 0
        self._resume = 1
        self._state = mavlink.MISSION_STATE_NO_MISSION
        self._events_seen = 0
        self._text_id = 0
        self._last = {"fast": (-math.inf, -math.inf), "slow": (-math.inf, -math.inf)}
        self._handlers = {
            "HEARTBEAT": lambda m: None, "COMMAND_LONG": self._on_command_long, "COMMAND_INT": self._on_command_int,
            "SET_MODE": self._on_set_mode, "MISSION_COUNT": self._on_mission_count,
            "MISSION_ITEM_INT": self._on_mission_item, "MISSION_ITEM": self._on_mission_item,
            "MISSION_REQUEST_LIST": self._on_request_list, "MISSION_REQUEST_INT": self._on_mission_request,
            "MISSION_REQUEST": self._on_mission_request, "MISSION_CLEAR_ALL": self._on_clear_all,
            "MISSION_SET_CURRENT": self._on_set_current, "MISSION_ACK": lambda m: None,
            "SET_POSITION_TARGET_LOCAL_NED": self._on_position_target,
            "SET_POSITION_TARGET_GLOBAL_INT": self._on_position_target,
        }

    # ------------------------------------------------------------------ I/O

    def peers(self) -> list[tuple[str, int]]:
        """Where messages go: the GCS address, and every client heard from recently."""
        now = self.clock()
        return [self.gcs_addr] + [a for a, t in self._heard.items() if a != self.gcs_addr and now - t < PEER_TIMEOUT_S]

    def poll(self) -> None:
        """Read every datagram waiting and act on its messages."""
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:   # nothing waiting (BlockingIOError), or the socket closed
                break
            self._heard[addr] = self.clock()
            for msg in self.mav.parse_buffer(data) or ():
                handler = self._handlers.get(msg.get_type())
                if handler is not None and getattr(msg, "target_system", self.sysid) in (0, self.sysid):
                    handler(msg)
        self._retry_upload()

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    # ------------------------------------------------------------------ after each step

    def update(self, t: float) -> None:
        """Sim time is now ``t`` s: announce mission progress and vehicle events, send due telemetry."""
        self.t = float(t)
        self._track_mission()
        events = self.vehicle.events
        for text in events[self._events_seen:]:
            self.statustext(mavlink.MAV_SEVERITY_INFO, f"{self.vehicle_id}: {text}")
        self._events_seen = len(events)
        wall = self.clock()
        if self._due("slow", SLOW_PERIOD_S, SLOW_MIN_WALL_S, wall):
            self._send_slow()
        if self._due("fast", FAST_PERIOD_S, FAST_MIN_WALL_S, wall):
            self._send_fast()

    def _due(self, group: str, period: float, min_wall: float, wall: float) -> bool:
        t0, w0 = self._last[group]
        if wall - w0 >= min_wall and (self.t - t0 >= period - 1e-9 or wall - w0 >= period):
            self._last[group] = (self.t, wall)
            return True
        return False

    # ------------------------------------------------------------------ telemetry

    @property
    def mode_name(self) -> str:
        """The ArduPilot mode the vehicle reports."""
        return self._alias or self.vehicle.mode

    def _time_ms(self) -> int:
        return int(round(self.t * 1000)) & 0xFFFFFFFF

    def latlon(self, xyz) -> tuple[int, int, float]:
        """Local ENU (3,) m -> (lat 1e7 deg, lon 1e7 deg, MSL m)."""
        lat, lon, msl = local_to_latlon(self.scene.geo, xyz)[0]
        return int(round(lat * 1e7)), int(round(lon * 1e7)), float(msl)

    def _landed(self) -> bool:
        return bool(self.vehicle.landed) if self.kind == "drone" else True

    def _send_slow(self) -> None:
        m, v = self.mav, self.vehicle
        base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink.MAV_MODE_FLAG_STABILIZE_ENABLED
        if self.mode_name in ("GUIDED", "AUTO", "RTL", "SMART_RTL", "LAND"):
            base |= mavlink.MAV_MODE_FLAG_GUIDED_ENABLED
        if self.mode_name == "AUTO":
            base |= mavlink.MAV_MODE_FLAG_AUTO_ENABLED
        if v.armed:
            base |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
        mav_type = mavlink.MAV_TYPE_QUADROTOR if self.kind == "drone" else mavlink.MAV_TYPE_GROUND_ROVER
        m.heartbeat_send(mav_type, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, base, self.modes[self.mode_name],
                         mavlink.MAV_STATE_ACTIVE if v.armed else mavlink.MAV_STATE_STANDBY)
        sensors = 0b1111 | 32   # gyro, accelerometer, magnetometer, barometer, GPS
        m.sys_status_send(sensors, sensors, sensors, 0, 12600, -1, 100, 0, 0, 0, 0, 0, 0)
        pose = v.pose()
        lat, lon, msl = self.latlon(pose.position)
        vel = pose.linear_velocity
        cog = (90.0 - math.degrees(math.atan2(vel[1], vel[0]))) % 360.0
        m.gps_raw_int_send(int(self.t * 1e6), mavlink.GPS_FIX_TYPE_3D_FIX, lat, lon, int(msl * 1000), 100, 100,
                           int(math.hypot(vel[0], vel[1]) * 100), int(cog * 100) % 36000, 12)
        if self.kind == "drone":
            state = mavlink.MAV_LANDED_STATE_ON_GROUND if v.landed else mavlink.MAV_LANDED_STATE_IN_AIR
            m.extended_sys_state_send(mavlink.MAV_VTOL_STATE_UNDEFINED, state)

    def _send_fast(self) -> None:
        m, v = self.mav, self.vehicle
        pose, ms = v.pose(), self._time_ms()
        p, vel = pose.position, pose.linear_velocity
        lat, lon, msl = self.latlon(p)
        v_ned = enu_to_ned(vel)
        roll, pitch, yaw, rs, ps, ys = attitude_ned(pose.orientation, pose.angular_velocity)
        hdg = math.degrees(yaw) % 360.0
        m.global_position_int_send(ms, lat, lon, int(round(msl * 1000)), int(round((p[2] - v.home[2]) * 1000)),
                                   *(int(round(c * 100)) for c in v_ned), int(round(hdg * 100)) % 36000)
        m.local_position_ned_send(ms, *enu_to_ned(p - self.origin), *v_ned)
        m.attitude_send(ms, roll, pitch, yaw, rs, ps, ys)
        m.vfr_hud_send(float(math.hypot(vel[0], vel[1])), float(math.hypot(vel[0], vel[1])), int(hdg) % 360,
                       0 if self._landed() else 50, msl, float(vel[2]))
        self._send_current()

    def _send_current(self) -> None:
        total = max(len(self.items) - 1, 0)
        mode = 1 if self.mode_name == "AUTO" else 2
        self.mav.mission_current_send(self._current, total, self._state, mode)

    def send_home(self) -> None:
        home = self.vehicle.home
        lat, lon, msl = self.latlon(home)
        self.mav.home_position_send(lat, lon, int(round(msl * 1000)), *enu_to_ned(home - self.origin),
                                    [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0, int(self.t * 1e6))

    def statustext(self, severity: int, text: str) -> None:
        """Log ``text`` and send it to the GCS (in 50-character chunks, MAVLink 2 style)."""
        self.log(text)
        data = text.encode("ascii", "replace")
        chunks = [data[i:i + STATUSTEXT_LEN] for i in range(0, len(data), STATUSTEXT_LEN)] or [b""]
        text_id = 0
        if len(chunks) > 1:
            self._text_id = self._text_id % 65535 + 1
            text_id = self._text_id
        for k, chunk in enumerate(chunks):
            self.mav.statustext_send(severity, chunk, text_id, k)

    # ------------------------------------------------------------------ commands

    def _on_command_long(self, msg) -> None:
        p = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
        self._ack(msg, msg.command, self._run_command(msg.command, p, None))

    def _on_command_int(self, msg) -> None:
        p = (msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z)
        self._ack(msg, msg.command, self._run_command(msg.command, p, msg.frame))

    def _on_set_mode(self, msg) -> None:
        self._ack(msg, mavlink.MAVLINK_MSG_ID_SET_MODE, self._guarded(lambda: self._set_mode_number(msg.custom_mode)))

    def _ack(self, msg, command: int, result: int) -> None:
        self.mav.command_ack_send(command, result, target_system=msg.get_srcSystem(),
                                  target_component=msg.get_srcComponent())

    def _guarded(self, action: Callable[[], None]) -> int:
        """Run ``action``: MAV_RESULT_ACCEPTED, or the refusal (with a STATUSTEXT saying why)."""
        try:
            action()
            return mavlink.MAV_RESULT_ACCEPTED
        except Refused as exc:
            result, text = exc.result, str(exc)
        except (RuntimeError, ValueError) as exc:   # vehicle state, planning errors
            result, text = mavlink.MAV_RESULT_FAILED, str(exc)
        self.statustext(mavlink.MAV_SEVERITY_WARNING, f"{self.vehicle_id}: {text}")
        return result

    def _run_command(self, command: int, p: tuple, frame: int | None) -> int:
        c = mavlink
        if command == c.MAV_CMD_COMPONENT_ARM_DISARM:
            return self._guarded(lambda: self._arm(p[0] >= 0.5, p[1] == ARM_FORCE_MAGIC))
        if command == c.MAV_CMD_NAV_TAKEOFF:
            return self._guarded(lambda: self._takeoff(p[6]))
        if command == c.MAV_CMD_DO_SET_MODE:
            return self._guarded(lambda: self._set_mode_number(int(p[1])))
        if command == c.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            return self._guarded(lambda: self._set_mode("RTL"))
        if command == c.MAV_CMD_NAV_LAND:
            return self._guarded(lambda: self._set_mode("LAND"))
        if command == c.MAV_CMD_MISSION_START:
            if p[0] != 0 or p[1] != 0:
                return self._guarded(self._refuse(c.MAV_RESULT_DENIED, "MISSION_START: first/last item must be 0 "
                                                  "(use MISSION_SET_CURRENT to start elsewhere)"))
            return self._guarded(lambda: self._set_mode("AUTO"))
        if command == c.MAV_CMD_DO_REPOSITION and frame is not None:
            return self._guarded(lambda: self._reposition(frame, p))
        if command in (c.MAV_CMD_GET_HOME_POSITION, c.MAV_CMD_REQUEST_MESSAGE):
            if command == c.MAV_CMD_REQUEST_MESSAGE and int(p[0]) != c.MAVLINK_MSG_ID_HOME_POSITION:
                return self._request_message(int(p[0]))
            self.send_home()
            return c.MAV_RESULT_ACCEPTED
        if command == c.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            return self._request_message(c.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
        return self._guarded(self._refuse(c.MAV_RESULT_UNSUPPORTED, f"command {command} is not simulated"))

    @staticmethod
    def _refuse(result: int, text: str) -> Callable[[], None]:
        def refuse():
            raise Refused(result, text)
        return refuse

    def _request_message(self, msg_id: int) -> int:
        c = mavlink
        if msg_id == c.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            caps = (c.MAV_PROTOCOL_CAPABILITY_MISSION_INT | c.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                    | c.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
                    | c.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT | c.MAV_PROTOCOL_CAPABILITY_MAVLINK2)
            self.mav.autopilot_version_send(caps, 0, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0, self.sysid)
        elif msg_id in (c.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, c.MAVLINK_MSG_ID_LOCAL_POSITION_NED,
                        c.MAVLINK_MSG_ID_ATTITUDE, c.MAVLINK_MSG_ID_MISSION_CURRENT):
            self._send_fast()
        elif msg_id in (c.MAVLINK_MSG_ID_HEARTBEAT, c.MAVLINK_MSG_ID_SYS_STATUS, c.MAVLINK_MSG_ID_GPS_RAW_INT):
            self._send_slow()
        else:
            return self._guarded(self._refuse(c.MAV_RESULT_UNSUPPORTED, f"message {msg_id} is not simulated"))
        return c.MAV_RESULT_ACCEPTED

    def _arm(self, arm: bool, force: bool) -> None:
        v = self.vehicle
        if arm == bool(v.armed):
            return
        if arm:
            if self.kind == "drone" and self.mode_name in ("AUTO", "RTL", "SMART_RTL", "LAND") and not force:
                raise Refused(mavlink.MAV_RESULT_FAILED, f"Arm: mode {self.mode_name} not armable; use GUIDED")
            v.arm()
            self.send_home()
        else:
            if self.kind == "drone" and not v.landed:
                raise Refused(mavlink.MAV_RESULT_DENIED if force else mavlink.MAV_RESULT_FAILED,
                              "Disarm: the drone is flying; land first (a forced disarm would drop it)")
            v.disarm()

    def _takeoff(self, altitude: float) -> None:
        if self.kind != "drone":
            raise Refused(mavlink.MAV_RESULT_UNSUPPORTED, "NAV_TAKEOFF: a rover does not fly")
        if self.mode_name != "GUIDED":
            raise Refused(mavlink.MAV_RESULT_FAILED, f"Takeoff: mode {self.mode_name}; switch to GUIDED first")
        self.vehicle.takeoff(float(altitude))

    def _set_mode_number(self, number: int) -> None:
        names = [n for n, k in self.modes.items() if k == number]
        if not names:
            raise Refused(mavlink.MAV_RESULT_FAILED, f"unknown {self.kind} mode number {number}")
        self._set_mode(names[0])

    def _set_mode(self, name: str) -> None:
        """Switch to ArduPilot mode ``name`` (raises Refused / RuntimeError / PlanningError)."""
        v = self.vehicle
        if name == "AUTO":
            self._start_auto()
            return
        was_active = self.mode_name == "AUTO" and self._state == mavlink.MISSION_STATE_ACTIVE
        if self.kind == "drone":
            if name in DRONE_HOLD_MODES or name == "GUIDED":
                v.set_mode("GUIDED")
            elif name in ("RTL", "SMART_RTL"):
                if not v.landed:   # on the ground RTL has nothing to do (as ArduPilot, which then lands)
                    v.rtl()
            elif name == "LAND":
                v.land()
            else:
                raise Refused(mavlink.MAV_RESULT_FAILED, f"mode {name} is not simulated for a drone")
        else:
            if name in ROVER_HOLD_MODES or name == "HOLD":
                v.hold()
            elif name == "GUIDED":
                v.set_mode("GUIDED")
            elif name in ("RTL", "SMART_RTL"):
                v.rtl()
            else:
                raise Refused(mavlink.MAV_RESULT_FAILED, f"mode {name} is not simulated for a rover")
        self._alias = None if name == v.mode else name
        if was_active:
            self._state, self._resume = mavlink.MISSION_STATE_PAUSED, self._current

    def _reposition(self, frame: int, p: tuple) -> None:
        """DO_REPOSITION (COMMAND_INT): fly to lat/lon/alt (NaN altitude: the current one), switching
        to GUIDED if its flags ask (bit 0, MAV_DO_REPOSITION_FLAGS_CHANGE_MODE)."""
        if int(p[1]) & mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE and self.mode_name != "GUIDED":
            self._set_mode("GUIDED")
        xyz = self._global_to_local(frame, p[4], p[5], 0.0 if math.isnan(p[6]) else p[6])
        if math.isnan(p[6]):
            xyz[2] = self.vehicle.position[2]
        self._goto(xyz)

    def _goto(self, xyz: np.ndarray) -> None:
        if self.mode_name != "GUIDED":
            raise Refused(mavlink.MAV_RESULT_FAILED, f"position target ignored in mode {self.mode_name}; "
                                                     f"switch to GUIDED")
        self.vehicle.goto(xyz)

    def _global_to_local(self, frame: int, lat: float, lon: float, alt: float) -> np.ndarray:
        """A MAVLink global position (degrees, altitude in ``frame``) -> local ENU (3,) m."""
        xyz = latlon_to_local(self.scene.geo, lat, lon, 0.0)[0]
        if frame in (mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT):
            xyz[2] = alt - self.scene.geo.origin[2]
        elif frame in (mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT):
            xyz[2] = self.vehicle.home[2] + alt
        elif frame in (mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT, mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT):
            xyz[2] = float(self.scene.ground_height(xyz[0], xyz[1])) + alt
        else:
            raise Refused(mavlink.MAV_RESULT_UNSUPPORTED, f"frame {frame} is not a global frame")
        return xyz

    def _on_position_target(self, msg) -> None:
        """SET_POSITION_TARGET_LOCAL_NED / _GLOBAL_INT: a position (goto) or else a velocity target."""
        mask, v = msg.type_mask, self.vehicle
        use_pos, use_vel = (mask & 0b111) != 0b111, (mask & 0b111000) != 0b111000
        frame = msg.coordinate_frame
        if msg.get_type() == "SET_POSITION_TARGET_GLOBAL_INT":
            def position():
                return self._global_to_local(frame, msg.lat_int / 1e7, msg.lon_int / 1e7, msg.alt)
            heading = 0.0
        elif frame not in LOCAL_FRAMES:
            self._guarded(self._refuse(mavlink.MAV_RESULT_UNSUPPORTED, f"position target frame {frame}: use "
                                                                        f"LOCAL_NED, LOCAL_OFFSET_NED or BODY_*"))
            return
        else:
            body = frame in LOCAL_FRAMES[2:]
            heading = (math.pi / 2 - v.pose().yaw) if body else 0.0   # NED yaw of the body's x axis

            def position():
                d = enu_to_ned(_rotate_ned((msg.x, msg.y, msg.z), heading))
                return (self.origin if frame == mavlink.MAV_FRAME_LOCAL_NED else v.position) + d
        vel = enu_to_ned(_rotate_ned((msg.vx, msg.vy, msg.vz), heading))
        yaw_rate = None if mask & 0x800 else -float(msg.yaw_rate)   # NED clockwise -> ENU counter-clockwise
        if use_pos:
            self._guarded(lambda: self._goto(position()))
        elif use_vel:
            if self.kind != "drone":
                self._guarded(self._refuse(mavlink.MAV_RESULT_UNSUPPORTED, "velocity targets: rovers take positions"))
            elif self.mode_name != "GUIDED":
                self._guarded(self._refuse(mavlink.MAV_RESULT_FAILED, f"velocity target ignored in mode "
                                                                       f"{self.mode_name}; switch to GUIDED"))
            else:
                self._guarded(lambda: v.set_velocity(vel, yaw_rate))

    # ------------------------------------------------------------------ mission upload / download

    def _on_mission_count(self, msg) -> None:
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        if msg.mission_type != mavlink.MAV_MISSION_TYPE_MISSION:
            result = mavlink.MAV_MISSION_ACCEPTED if msg.count == 0 else mavlink.MAV_MISSION_UNSUPPORTED
            self.mav.mission_ack_send(*src, result, msg.mission_type)
            return
        if msg.count == 0:
            self._on_clear_all(msg)
            return
        self._upload = {"src": src, "items": [], "count": int(msg.count), "use_int": True, "wall": self.clock(),
                        "tries": 0}
        self._request_next()

    def _request_next(self) -> None:
        up = self._upload
        seq = len(up["items"])
        if up["use_int"]:
            self.mav.mission_request_int_send(*up["src"], seq, mavlink.MAV_MISSION_TYPE_MISSION)
        else:
            self.mav.mission_request_send(*up["src"], seq, mavlink.MAV_MISSION_TYPE_MISSION)
        up["wall"] = self.clock()

    def _retry_upload(self) -> None:
        up = self._upload
        if up is None or self.clock() - up["wall"] < MISSION_RETRY_S:
            return
        up["tries"] += 1
        if up["tries"] > MISSION_RETRIES:
            self.mav.mission_ack_send(*up["src"], mavlink.MAV_MISSION_OPERATION_CANCELLED)
            self.statustext(mavlink.MAV_SEVERITY_WARNING, f"{self.vehicle_id}: mission upload timed out at item "
                                                          f"{len(up['items'])} of {up['count']}")
            self._upload = None
        else:
            self._request_next()

    def _on_mission_item(self, msg) -> None:
        up = self._upload
        if up is None or msg.mission_type != mavlink.MAV_MISSION_TYPE_MISSION:
            return
        if msg.seq != len(up["items"]):
            return   # a duplicate or out of order: the pending request stands (and is retried)
        up["use_int"] = msg.get_type() == "MISSION_ITEM_INT"
        up["items"].append(MissionItem.from_message(msg))
        up["tries"] = 0
        if len(up["items"]) < up["count"]:
            self._request_next()
            return
        self._upload = None
        result = mavlink.MAV_MISSION_ACCEPTED
        try:
            path = self._accept(up["items"])
        except (ValueError, RuntimeError) as exc:   # WPLFormatError, PlanningError
            result = mavlink.MAV_MISSION_INVALID
            self.statustext(mavlink.MAV_SEVERITY_ERROR, f"{self.vehicle_id}: mission rejected: {exc}")
        else:
            self.statustext(mavlink.MAV_SEVERITY_INFO, f"{self.vehicle_id}: mission of {len(self.items) - 1} items "
                                                       f"accepted ({path})")
        self.mav.mission_ack_send(*up["src"], result, mavlink.MAV_MISSION_TYPE_MISSION)

    def _accept(self, items: list[MissionItem]) -> Path:
        """Check ``items`` (plan them from where the vehicle is) and store them."""
        path = self.mission_dir / f"{self.vehicle_id}_mission{len(self.missions) + 1}.waypoints"
        mission, _ = self._mission(items, 1, path)
        try:
            self.vehicle.set_mission(mission)
        except PlanningError as exc:
            if not (self.kind == "drone" and self.vehicle.landed and mission.waypoints[0].command != "takeoff"):
                raise
            self.statustext(mavlink.MAV_SEVERITY_WARNING, f"{self.vehicle_id}: the mission has no takeoff item: "
                                                          f"take off in GUIDED before AUTO ({exc})")
        self.items = list(items)
        self._state, self._resume, self._current, self._wp_seq = mavlink.MISSION_STATE_NOT_STARTED, 1, 0, None
        self.missions.append({"t": self.t, "file": str(path), "items": len(items) - 1})
        return path

    def _mission(self, items: list[MissionItem], first: int, path: Path):
        """(Mission, item seq of each waypoint) of ``items[first:]`` from the vehicle's home, via ``path``."""
        lat, lon, msl = self.latlon(self.vehicle.home)
        home = MissionItem(0, mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 1, 0, 0, 0, 0, lat, lon, msl)
        kept = [home] + [it for it in items[first:] if it.command not in IGNORED_COMMANDS]
        write_wpl_items(kept, path)
        mission = waypoints_mission(path, self.scene, vehicle=self.kind, name=f"{self.vehicle_id}_mavlink")
        seqs = waypoint_item_seqs(kept)
        if len(seqs) != len(mission.waypoints):
            raise RuntimeError(f"{path}: {len(mission.waypoints)} waypoints read from {len(kept) - 1} items, "
                               f"expected {len(seqs)} (the QGC WPL reader and waypoint_item_seqs disagree)")
        return mission, seqs

    def _on_request_list(self, msg) -> None:
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        count = max(len(self.items), 1) if msg.mission_type == mavlink.MAV_MISSION_TYPE_MISSION else 0
        self.mav.mission_count_send(*src, count, msg.mission_type)

    def _on_mission_request(self, msg) -> None:
        if msg.mission_type != mavlink.MAV_MISSION_TYPE_MISSION:
            return
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        if msg.seq == 0:   # home, where it is now (as ArduPilot)
            lat, lon, msl = self.latlon(self.vehicle.home)
            it = MissionItem(0, mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_CMD_NAV_WAYPOINT, 0, 1, 0, 0, 0, 0, lat, lon, msl)
        elif msg.seq < len(self.items):
            it = self.items[msg.seq]
        else:
            self.mav.mission_ack_send(*src, mavlink.MAV_MISSION_INVALID_SEQUENCE)
            return
        fields = (it.seq, it.frame, it.command, int(it.seq == self._current), it.autocontinue,
                  it.param1, it.param2, it.param3, it.param4)
        if msg.get_type() == "MISSION_REQUEST_INT":
            self.mav.mission_item_int_send(*src, *fields, it.x, it.y, it.z)
        else:
            self.mav.mission_item_send(*src, *fields, it.x / 1e7, it.y / 1e7, it.z)

    def _on_clear_all(self, msg) -> None:
        self.items, self._wp_seq, self._current, self._resume = [], None, 0, 1
        self._state = mavlink.MISSION_STATE_NO_MISSION
        self.mav.mission_ack_send(msg.get_srcSystem(), msg.get_srcComponent(), mavlink.MAV_MISSION_ACCEPTED)

    def _on_set_current(self, msg) -> None:
        if not 0 < msg.seq < len(self.items):
            self.statustext(mavlink.MAV_SEVERITY_WARNING, f"{self.vehicle_id}: no mission item {msg.seq}")
            return
        self._resume = int(msg.seq)
        if self.mode_name == "AUTO":
            self._guarded(self._start_auto)
        else:
            self._current = self._resume
            self._send_current()

    # ------------------------------------------------------------------ AUTO

    def _start_auto(self) -> None:
        if len(self.items) < 2:
            raise Refused(mavlink.MAV_RESULT_FAILED, "AUTO: no mission; upload one first")
        first = self._resume if self._state in _RESUMABLE_STATES else 1
        path = self.mission_dir / f"{self.vehicle_id}_mission{len(self.missions)}" \
                                  f"{'' if first == 1 else f'_from{first}'}.waypoints"
        mission, seqs = self._mission(self.items, first, path)
        self.vehicle.set_mission(mission)
        self.vehicle.start_mission()
        self._alias = None
        self._wp_seq, self._next_wp, self._state = seqs, 0, mavlink.MISSION_STATE_ACTIVE
        if self.kind == "rover":
            roads = self.scene.roads
            self._goal_xy = np.array([roads.nodes[roads.nearest_node(w.position[:2]), :2] for w in mission.waypoints])
        self._track_mission()

    def _track_mission(self) -> None:
        """Announce MISSION_ITEM_REACHED for every item passed, MISSION_CURRENT on change."""
        if self._wp_seq is None or self._state != mavlink.MISSION_STATE_ACTIVE or self.vehicle.mode != "AUTO":
            return
        n = len(self._wp_seq)
        idx = n if self.vehicle.done else self._current_waypoint()
        while self._next_wp < idx:
            seq = self._wp_seq[self._next_wp]
            self._next_wp += 1
            if self._next_wp == n or self._wp_seq[self._next_wp] != seq:   # the item's last waypoint
                self.mav.mission_item_reached_send(seq)
                self.reached.append(seq)
        current = self._wp_seq[min(idx, n - 1)] if n else 0
        if idx >= n:
            self._state, self._resume = mavlink.MISSION_STATE_COMPLETE, 1
        if current != self._current or idx >= n:
            self._current = current
            self._send_current()

    def _current_waypoint(self) -> int:
        """Index of the mission waypoint being flown/driven to."""
        if self.kind == "drone":
            return max(self.vehicle.current_item, self._next_wp)
        xy = self.vehicle.position[:2]
        for j in range(self._next_wp, min(self._next_wp + 3, len(self._goal_xy))):
            if np.linalg.norm(self._goal_xy[j] - xy) < ROVER_REACH_M:
                return j + 1
        return self._next_wp


def _rotate_ned(v, heading: float) -> np.ndarray:
    """A NED vector given in a frame turned ``heading`` rad clockwise from north -> NED."""
    c, s = math.cos(heading), math.sin(heading)
    x, y, z = (float(a) for a in v)
    return np.array([c * x - s * y, s * x + c * y, z])
