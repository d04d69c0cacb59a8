"""A ground-station script: build a data-collection mission around a vehicle, upload it over MAVLink, fly it.

It talks to ``vlwm sim-server`` exactly as to ArduPilot SITL (pymavlink, ArduPilot modes and the
standard mission protocol), so ``scripts/data_collection_mission.py`` works against either::

    heartbeat -> home (HOME_POSITION) -> mission built around home -> upload (and read back)
    drone: GUIDED -> arm -> NAV_TAKEOFF -> climb -> AUTO -> items reached -> landed, disarmed
    rover: arm -> AUTO -> items reached -> HOLD -> disarm

**Geometry.**  The mission comes from the same builders as ``vlwm simulate``
(:mod:`vlwm.sim.missions`), in a local frame anchored at the vehicle's home: with ``--scene`` the
scene's own frame (buildings and roads known: orbits around named buildings, patrols, rover
routes), otherwise a flat, open world at the home's height (the vehicle re-plans around what it
meets).  Offsets (``--center``) are metres east, north of home.  The frame is the scene's, or a
projected CRS at home (Japan's plane-rectangular zone, UTM elsewhere); the mission travels as
latitude/longitude with altitudes relative to home (a QGC WPL file, saved with ``--save-mission``).

Every wait has a timeout, and every failure says what did not answer and what to do.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vlwm.labels import CityClass
from vlwm.sim.mavlink.endpoint import STATUSTEXT_LEN
from vlwm.sim.mavlink.items import MissionItem, read_wpl_items
from vlwm.sim.mission_spec import MissionSpec
from vlwm.sim.mission_types import Mission
from vlwm.sim.missions import orbit_mission, patrol_mission, route_mission, survey_mission
from vlwm.sim.qgc_wpl import latlon_to_local, write_qgc_wpl
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain

DEFAULT_CONNECT = "udp:127.0.0.1:14550"
HEARTBEAT_TIMEOUT_S = 10.0    #: wall seconds to wait for the vehicle's first heartbeat
REPLY_TIMEOUT_S = 2.0         #: wall seconds to wait for one reply (ACK, mission item) ...
RETRIES = 3                   #: ... sent again this many times
SILENCE_TIMEOUT_S = 30.0      #: no message from the vehicle for this long (wall s): contact lost
MODE_TIMEOUT_S = 5.0          #: wall seconds for a heartbeat to show a new mode / arming state
TAKEOFF_FRACTION = 0.95       #: the climb is done at this fraction of the takeoff altitude
FLAT_WORLD_HALF_M = 2000.0    #: half side of the flat open world that stands in for an unknown scene
SLOW_SPEED = 1.0              #: m/s, horizontal speed for the mission-time bound (slower than any vehicle)
SLOW_CLIMB = 0.5              #: m/s, vertical speed for the bound
TIMEOUT_MARGIN_S = 120.0      #: added to the mission-time bound
POSITION_SETTLE_S = 10.0      #: vehicle seconds to wait for a position report after the mission ends
NOT_RUNNING = "is the simulator running? start it with scripts/launch_occworld_simulation.sh"


class MissionError(RuntimeError):
    """The vehicle refused something, or did not answer in time; the message says which and why."""


@dataclass(frozen=True)
class ClientConfig:
    """A data-collection flight as the command line states it: the mission and how to reach the vehicle."""

    mission: MissionSpec = field(default_factory=MissionSpec)
    """What to fly; positions are metres east, north of the vehicle's home (:mod:`vlwm.sim.mission_spec`)."""
    connect: str = DEFAULT_CONNECT
    """pymavlink address: ``udp:HOST:PORT`` listens (SITL/sim-server send there), ``udpout:``, ``tcp:``."""
    scene: str | None = None
    """Scene file (.npz) the vehicle flies in: obstacles, buildings and roads for the builders."""
    save_mission: str | None = None
    """Also write the uploaded mission here (QGC WPL 110)."""
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S
    """Wall seconds to wait for the first heartbeat."""
    mission_timeout: float | None = None
    """Seconds of vehicle time (``time_boot_ms``) for the flight; None: a bound from the mission's length."""
    verify: bool = True
    """Read the mission back after uploading and check it is the same."""

    def __post_init__(self):
        m = self.mission
        if m.start is not None:
            raise ValueError("the mission client's route starts where the rover is: give only --goal DX,DY")
        if self.scene is None and (m.pattern in ("patrol", "route") or m.target is not None):
            raise ValueError(f"pattern {m.pattern!r}{' around a building' if m.target else ''} needs the "
                             f"scene's buildings and roads: give --scene SCENE.npz")


@dataclass
class FlightReport:
    """What happened: the items sent and read back, the items reached, where it ended."""

    uploaded: list[MissionItem]
    downloaded: list[MissionItem] | None = None
    reached: list[int] = field(default_factory=list)
    home: tuple[float, float, float] | None = None
    """(lat deg, lon deg, MSL m) of home."""
    final: tuple[float, float, float] | None = None
    """(lat deg, lon deg, m above home) at the end."""
    armed: bool | None = None


# ---------------------------------------------------------------------------------------------
# The mission, in a frame at home
# ---------------------------------------------------------------------------------------------


def home_frame(lat: float, lon: float, msl: float) -> GeoOrigin:
    """A local ENU frame with its origin at home: Japan's plane-rectangular zone, UTM elsewhere."""
    try:
        return GeoOrigin.at_latlon(lat, lon, msl)
    except ValueError:   # outside Japan
        zone = int((lon + 180.0) // 6.0) % 60 + 1
        return GeoOrigin.at_latlon(lat, lon, msl, epsg=(32600 if lat >= 0 else 32700) + zone)


def flat_world(geo: GeoOrigin, half: float = FLAT_WORLD_HALF_M) -> Scene:
    """An open, level world (ground at local z = 0) in ``geo``: the scene when none is known."""
    terrain = Terrain.flat(0.0, (-half, -half, half, half))
    builder = SceneBuilder()
    builder.add_mesh(*terrain.mesh(), CityClass.TERRAIN)
    return builder.build(terrain, geo, meta={"source": "flat world (mission client)"})


def mission_around_home(spec: MissionSpec, scene: Scene, home_xyz: np.ndarray) -> Mission:
    """The mission ``spec`` describes (offsets in metres east, north of home), around ``home_xyz`` (3,)
    local ENU m in ``scene``."""
    home_xy = np.asarray(home_xyz, np.float64)[:2]
    kw = dict(speed=spec.speed, home_xy=home_xy)
    if spec.pattern == "survey":
        center = home_xy + (spec.center or (0.0, 0.0))
        return survey_mission(scene, center, size=spec.size, spacing=spec.spacing, altitude=spec.altitude, **kw)
    if spec.pattern == "orbit":
        center = spec.target if spec.target is not None else \
            home_xy + (spec.center if spec.center is not None else (-(spec.radius + 10.0), 0.0))
        return orbit_mission(scene, center, radius=spec.radius, altitude=spec.altitude, laps=spec.laps, **kw)
    if spec.pattern == "patrol":
        return patrol_mission(scene, spec.vehicle, spec.goals, spec.seed, altitude=spec.altitude, home_xy=home_xy)
    if spec.goal is None:
        raise ValueError("pattern 'route' needs --goal DX,DY (metres east, north of the rover)")
    return route_mission(scene, home_xy, home_xy + spec.goal)


def mission_items(cfg: ClientConfig, home_lla: tuple[float, float, float], folder: Path) -> list[MissionItem]:
    """The items to upload (item 0 = home): a WPL file as is, or a mission built around home."""
    if cfg.mission.pattern == "waypoints":
        return [it._replace(seq=i) for i, it in enumerate(read_wpl_items(cfg.mission.waypoints_file))]
    if cfg.scene is not None:
        scene = Scene.load(cfg.scene)
        home = latlon_to_local(scene.geo, *home_lla)[0]
        lo, hi = scene.bounds[0], scene.bounds[1]
        if not (np.all(home[:2] >= lo[:2]) and np.all(home[:2] <= hi[:2])):
            raise MissionError(f"the vehicle's home {home_lla[:2]} is at local ({home[0]:.0f}, {home[1]:.0f}) m, "
                               f"outside the scene {cfg.scene}: is it the scene the simulator runs?")
    else:
        scene, home = flat_world(home_frame(*home_lla)), np.zeros(3)
    mission = mission_around_home(cfg.mission, scene, home)
    path = write_qgc_wpl(mission, Path(cfg.save_mission) if cfg.save_mission else folder / "mission.waypoints",
                         scene.geo)
    return read_wpl_items(path)


def time_bound(items: Sequence[MissionItem], home_lla) -> float:
    """Seconds the flight may take at worst: its legs at SLOW_SPEED / SLOW_CLIMB, holds, a margin."""
    metres_per_deg = math.radians(1.0) * 6.371e6
    coslat = math.cos(math.radians(home_lla[0]))
    prev, total = np.zeros(3), TIMEOUT_MARGIN_S
    for it in items[1:]:
        if it.command >= mavlink.MAV_CMD_NAV_LAST:
            continue
        if it.command == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            p = np.zeros(3)
        elif it.x == 0 and it.y == 0:
            p = np.array([prev[0], prev[1], it.z])
        else:
            p = np.array([(it.y / 1e7 - home_lla[1]) * metres_per_deg * coslat,
                          (it.x / 1e7 - home_lla[0]) * metres_per_deg, it.z])
        if it.command == mavlink.MAV_CMD_NAV_LAND:
            p[2] = 0.0
        hold = it.param1 if it.command in (mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_LOITER_TIME) else 0.0
        total += math.hypot(*(p[:2] - prev[:2])) / SLOW_SPEED + abs(p[2] - prev[2]) / SLOW_CLIMB + hold
        prev = p
    return total


# ---------------------------------------------------------------------------------------------
# The link
# ---------------------------------------------------------------------------------------------


class VehicleLink:
    """A pymavlink connection to one autopilot, with every message seen kept as state.

    State: ``heartbeat``, ``position`` (GLOBAL_POSITION_INT), ``home`` (HOME_POSITION),
    ``current`` (MISSION_CURRENT), ``reached`` (MISSION_ITEM_REACHED seqs), ``texts`` (STATUSTEXT).
    """

    def __init__(self, url: str, timeout: float = HEARTBEAT_TIMEOUT_S, log: Callable[[str], None] = print):
        self.url, self.log = url, log
        try:
            self.conn = mavutil.mavlink_connection(url, source_system=255, dialect="ardupilotmega",
                                                   source_component=mavlink.MAV_COMP_ID_MISSIONPLANNER)
        except OSError as exc:
            if url.startswith(("udp:", "udpin:")):
                raise ConnectionError(f"cannot listen on {url}: {exc} — is a ground station using it?") from None
            raise ConnectionError(f"cannot open {url}: {exc} — {NOT_RUNNING}") from None
        self.heartbeat = self.position = self.home = self.current = None
        self.reached: list[int] = []
        self.texts: list[str] = []
        self._chunks: dict[int, str] = {}
        self.boot_s: float | None = None
        """The vehicle's clock (s), from the last message that carried ``time_boot_ms``."""
        self.target = (0, 0)
        self._last_heard = time.monotonic()
        self._last_beat = -math.inf
        if self._wait(lambda: self.heartbeat is not None, timeout) is None:
            self.conn.close()
            raise ConnectionError(f"no heartbeat on {url} after {timeout:g} s — {NOT_RUNNING}")
        self.target = (self.heartbeat.get_srcSystem(), self.heartbeat.get_srcComponent())
        self.modes = mavutil.mode_mapping_byname(self.heartbeat.type)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ receiving

    def _observe(self, msg) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            if msg.autopilot != mavlink.MAV_AUTOPILOT_INVALID and msg.type != mavlink.MAV_TYPE_GCS and (
                    self.target == (0, 0) or msg.get_srcSystem() == self.target[0]):
                self.heartbeat = msg
            return
        if self.target != (0, 0) and msg.get_srcSystem() != self.target[0]:
            return
        if kind == "GLOBAL_POSITION_INT":
            self.position = msg
        elif kind == "HOME_POSITION":
            self.home = msg
        elif kind == "MISSION_CURRENT":
            self.current = msg
        elif kind == "MISSION_ITEM_REACHED":
            if not self.reached or self.reached[-1] != msg.seq:
                self.reached.append(msg.seq)
                self.log(f"  reached item {msg.seq}")
        elif kind == "STATUSTEXT":
            text = self._chunks.pop(msg.id, "") + msg.text
            if msg.id and len(msg.text) == STATUSTEXT_LEN:   # MAVLink 2 chunks: more to come
                self._chunks[msg.id] = text
                return
            self.texts.append(text)
            self.log(f"  vehicle: {text}")

    def _recv(self, timeout: float):
        """The next message from the vehicle (state updated), or None after ``timeout`` s."""
        now = time.monotonic()
        if now - self._last_beat >= 1.0:   # a GCS heartbeat each second, as ground stations do
            self.conn.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)
            self._last_beat = now
        msg = self.conn.recv_match(blocking=True, timeout=max(timeout, 0.0))
        if msg is None or msg.get_type() == "BAD_DATA":
            return None
        self._last_heard = time.monotonic()
        self._observe(msg)
        if hasattr(msg, "time_boot_ms") and msg.get_srcSystem() == self.target[0]:
            self.boot_s = msg.time_boot_ms / 1000.0
        return msg

    def _wait(self, done: Callable[[], object], timeout: float, match: Callable | None = None):
        """Receive until ``done()`` is truthy (returns it) or ``match(msg)`` is (returns the message);
        None after ``timeout`` wall s."""
        end = time.monotonic() + timeout
        while True:
            got = done() if done is not None else None
            if got:
                return got
            left = end - time.monotonic()
            if left <= 0:
                return None
            msg = self._recv(min(left, 0.5))
            if msg is not None and match is not None and match(msg):
                return msg

    def wait_for(self, done: Callable[[], object], timeout: float, what: str):
        got = self._wait(done, timeout)
        if not got:
            raise MissionError(f"{what}: not seen after {timeout:g} s{self._last_text()}")
        return got

    def follow(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Receive until ``done()``, for at most ``timeout`` s of the vehicle's clock (``time_boot_ms``:
        sim time, however fast or slow the simulation runs), while the vehicle keeps talking."""
        start = None
        while not done():
            if self.boot_s is not None:
                start = self.boot_s if start is None else start
                if self.boot_s - start > timeout:
                    cur = self.current.seq if self.current is not None else "?"
                    raise MissionError(f"{what}: not reached after {timeout:.0f} s of vehicle time (current item "
                                       f"{cur}, reached {self.reached}){self._last_text()}; raise --timeout if the "
                                       f"vehicle is just slow")
            if time.monotonic() - self._last_heard > SILENCE_TIMEOUT_S:
                raise MissionError(f"lost contact with the vehicle on {self.url}: nothing for {SILENCE_TIMEOUT_S:g} s")
            self._recv(0.5)

    def _reply(self, send: Callable[[], None], match: Callable, what: str, timeout: float = REPLY_TIMEOUT_S):
        """``send()`` and wait for a message ``match`` accepts, sending again up to RETRIES times."""
        for _ in range(RETRIES + 1):
            send()
            msg = self._wait(None, timeout, match)
            if msg is not None:
                return msg
        raise MissionError(f"{what}: no answer from {self.url} after {RETRIES + 1} tries of {timeout:g} s "
                           f"— {NOT_RUNNING}")

    def _last_text(self) -> str:
        return f" (vehicle said: {self.texts[-1]!r})" if self.texts else ""

    def _is(self, kind: str) -> Callable:
        return lambda m: m.get_type() == kind and getattr(m, "target_system", 255) in (0, 255)

    # ------------------------------------------------------------------ commands

    def command(self, command: int, *params: float, what: str = "") -> None:
        """COMMAND_LONG ``command`` with up to 7 params; raises MissionError unless ACCEPTED."""
        p = (list(params) + [0.0] * 7)[:7]
        what = what or f"command {command}"
        n_texts = len(self.texts)
        sends = iter(range(RETRIES + 1))
        ack = self._reply(lambda: self.conn.mav.command_long_send(*self.target, command, next(sends, RETRIES), *p),
                          lambda m: m.get_type() == "COMMAND_ACK" and m.command == command, what)
        if ack.result != mavlink.MAV_RESULT_ACCEPTED:
            results = mavlink.enums["MAV_RESULT"]
            name = results[ack.result].name if ack.result in results else ack.result
            said = f": {self.texts[-1]}" if len(self.texts) > n_texts else ""
            raise MissionError(f"{what} refused ({name}){said}")

    def set_mode(self, name: str) -> None:
        if name not in self.modes:
            raise MissionError(f"the vehicle has no mode {name!r} (modes: {sorted(self.modes)})")
        number = self.modes[name]
        self.command(mavlink.MAV_CMD_DO_SET_MODE, mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, number,
                     what=f"mode {name}")
        self.wait_for(lambda: self.heartbeat.custom_mode == number, MODE_TIMEOUT_S, f"mode {name} in the heartbeat")

    @property
    def armed(self) -> bool:
        return bool(self.heartbeat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)

    def arm(self, arm: bool = True) -> None:
        self.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0 if arm else 0.0, what="arm" if arm else "disarm")
        self.wait_for(lambda: self.armed == arm, MODE_TIMEOUT_S, "armed" if arm else "disarmed")

    def request_home(self) -> tuple[float, float, float]:
        """(lat deg, lon deg, MSL m) of home, from HOME_POSITION."""
        self.home = None
        self.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_HOME_POSITION,
                     what="home position request")
        h = self.wait_for(lambda: self.home, REPLY_TIMEOUT_S * 2, "HOME_POSITION")
        return h.latitude / 1e7, h.longitude / 1e7, h.altitude / 1000.0

    # ------------------------------------------------------------------ mission protocol

    def upload(self, items: Sequence[MissionItem]) -> None:
        """MISSION_COUNT, then each item the vehicle asks for, until its MISSION_ACK."""
        mav, ts, tc = self.conn.mav, *self.target
        n_texts = len(self.texts)

        def answer(msg):
            it = items[msg.seq]
            fields = (ts, tc, msg.seq, it.frame, it.command, it.current, it.autocontinue,
                      it.param1, it.param2, it.param3, it.param4)
            if msg.get_type() == "MISSION_REQUEST_INT":
                mav.mission_item_int_send(*fields, it.x, it.y, it.z)
            else:
                mav.mission_item_send(*fields, it.x / 1e7, it.y / 1e7, it.z)

        def is_request_or_ack(m):
            return m.get_type() in ("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK") and \
                getattr(m, "mission_type", 0) == 0 and m.target_system in (0, 255)

        msg = self._reply(lambda: mav.mission_count_send(ts, tc, len(items)), is_request_or_ack, "mission upload")
        while msg.get_type() != "MISSION_ACK":
            if msg.seq >= len(items):
                raise MissionError(f"mission upload: the vehicle asked for item {msg.seq} of {len(items)}")
            answer(msg)
            msg = self._wait(None, REPLY_TIMEOUT_S * (RETRIES + 1), is_request_or_ack)
            if msg is None:
                raise MissionError(f"mission upload: the vehicle stopped asking for items — {NOT_RUNNING}")
        if msg.type != mavlink.MAV_MISSION_ACCEPTED:
            name = mavlink.enums["MAV_MISSION_RESULT"][msg.type].name
            said = f": {' '.join(self.texts[n_texts:])}" if len(self.texts) > n_texts else ""
            raise MissionError(f"mission upload refused ({name}){said}")

    def download(self) -> list[MissionItem]:
        """MISSION_REQUEST_LIST, then every item with MISSION_REQUEST_INT; ends with MISSION_ACK."""
        mav, ts, tc = self.conn.mav, *self.target
        count = self._reply(lambda: mav.mission_request_list_send(ts, tc), self._is("MISSION_COUNT"),
                            "mission download").count
        items = []
        for seq in range(count):
            msg = self._reply(lambda: mav.mission_request_int_send(ts, tc, seq),
                              lambda m, s=seq: self._is("MISSION_ITEM_INT")(m) and m.seq == s,
                              f"mission download item {seq}")
            items.append(MissionItem.from_message(msg))
        mav.mission_ack_send(ts, tc, mavlink.MAV_MISSION_ACCEPTED)
        return items


# ---------------------------------------------------------------------------------------------
# The flight
# ---------------------------------------------------------------------------------------------


def item_difference(sent: Sequence[MissionItem], got: Sequence[MissionItem]) -> str | None:
    """Where two item lists differ (None if they agree to float32 precision).  Item 0 is home,
    which the vehicle fills in itself (ArduPilot: where it armed), so only its presence counts."""
    if len(sent) != len(got):
        return f"{len(got)} items instead of {len(sent)}"
    for x, y in zip(sent[1:], got[1:]):
        fx, fy = (np.array(i[5:9] + (i.z,), np.float32) for i in (x, y))
        if x[:5] != y[:5] or (x.x, x.y) != (y.x, y.y) or not np.array_equal(fx, fy, equal_nan=True):
            return f"item {x.seq}: sent {tuple(x)}, read back {tuple(y)}"
    return None


def fly(cfg: ClientConfig, log: Callable[[str], None] = print) -> FlightReport:
    """Connect, build and upload the mission, fly it to the end; raises MissionError/ConnectionError."""
    link = VehicleLink(cfg.connect, cfg.heartbeat_timeout, log)
    try:
        return _fly(link, cfg, log)
    finally:
        link.close()


def _fly(link: VehicleLink, cfg: ClientConfig, log) -> FlightReport:
    hb = link.heartbeat
    is_rover = hb.type in (mavlink.MAV_TYPE_GROUND_ROVER, mavlink.MAV_TYPE_SURFACE_BOAT)
    if is_rover != (cfg.mission.vehicle == "rover"):
        kind = mavlink.enums["MAV_TYPE"][hb.type].name
        raise MissionError(f"--vehicle {cfg.mission.vehicle}, but the vehicle on {cfg.connect} is a {kind} (sysid "
                           f"{link.target[0]}): connect to the other vehicle's port (vehicle i: 14550 + 10 i)")
    log(f"connected to sysid {link.target[0]} ({mavlink.enums['MAV_TYPE'][hb.type].name}) on {cfg.connect}")
    home = link.request_home()
    log(f"home at {home[0]:.7f}, {home[1]:.7f}, {home[2]:.1f} m MSL")
    with tempfile.TemporaryDirectory(prefix="vlwm_mission_") as tmp:
        items = mission_items(cfg, home, Path(tmp))
    report = FlightReport(uploaded=items, home=home)
    log(f"uploading {len(items) - 1} mission items ({cfg.mission.pattern})")
    link.upload(items)
    if cfg.verify:
        report.downloaded = link.download()
        diff = item_difference(items, report.downloaded)
        if diff is not None:
            raise MissionError(f"the mission read back from the vehicle differs from the one uploaded: {diff}")
        log("mission read back: identical")
    nav = [it for it in items[1:] if it.command < mavlink.MAV_CMD_NAV_LAST]
    if not nav:
        raise MissionError("the mission has no navigation items")
    last = nav[-1].seq
    ends_landed = nav[-1].command in (mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH, mavlink.MAV_CMD_NAV_LAND)
    timeout = cfg.mission_timeout or time_bound(items, home)
    if cfg.mission.vehicle == "drone":
        takeoff = next((it for it in nav if it.command == mavlink.MAV_CMD_NAV_TAKEOFF), None)
        relative = (mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT)
        altitude = takeoff.z if takeoff is not None and takeoff.frame in relative else cfg.mission.altitude
        link.set_mode("GUIDED")
        if link.armed and link.position is not None and link.position.relative_alt > 1000:
            log("already flying: no takeoff")
        else:
            link.arm()
            log(f"taking off to {altitude:g} m")
            link.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, math.nan, 0, 0, altitude, what="takeoff")
            link.follow(lambda: link.position is not None
                        and link.position.relative_alt >= TAKEOFF_FRACTION * altitude * 1000,
                        altitude / SLOW_CLIMB + TIMEOUT_MARGIN_S, f"climb to {altitude:g} m")
    else:
        link.arm()
    link.reached.clear()
    link.set_mode("AUTO")
    log(f"flying the mission (up to {timeout:.0f} s of vehicle time)")

    def finished():
        cur = link.current
        return last in link.reached or (cur is not None and cur.seq == last
                                        and cur.mission_state == mavlink.MISSION_STATE_COMPLETE)

    link.follow(finished, timeout, "the mission's last item")
    if cfg.mission.vehicle == "drone":
        if not ends_landed:
            link.set_mode("RTL")
        link.follow(lambda: not link.armed, timeout, "landing and disarming")
    else:
        link.set_mode("HOLD")
        link.arm(False)
    # The disarm comes in a HEARTBEAT; the last GLOBAL_POSITION_INT may predate it (a busy machine
    # delays messages), so report the first position sent at or after that moment.
    settled = link.boot_s
    if settled is not None:
        link.follow(lambda: link.position is not None and link.position.time_boot_ms / 1000.0 >= settled,
                    POSITION_SETTLE_S, "a position report after the mission")
    p = link.position
    report.reached, report.armed = list(link.reached), link.armed
    if p is not None:
        report.final = (p.lat / 1e7, p.lon / 1e7, p.relative_alt / 1000.0)
    log(f"mission complete: {len(report.reached)} items reached, vehicle {'armed' if report.armed else 'disarmed'}")
    return report
