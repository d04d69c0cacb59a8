"""The simulator as a MAVLink server: vehicles in a scene among traffic, each a SITL-like endpoint, recorded.

``vlwm sim-server`` (``scripts/launch_occworld_simulation.sh``) puts ``--drones`` drones on the
ground at distinct open sites near the scene origin and ``--rovers`` cars in the left lane of the
roads nearest it, makes each a :class:`~vlwm.sim.mavlink_endpoint.VehicleEndpoint` (vehicle ``i``,
drones first, sends to UDP ``14550 + 10 i``), and steps them until ``--duration`` or Ctrl-C /
SIGTERM.  Vehicles nobody commands stand (disarmed) or hover where they were left.

**Time.**  One clock drives everything in lock-step, as in :func:`vlwm.sim.simulator.record_mission`:
vehicles advance in ``physics_dt`` steps that land exactly on every frame time ``k / frame_rate_hz``,
where (with ``--record``) each vehicle's sensors see the scene and the traffic at that instant.
Between steps the server reads and answers MAVLink, and after each step sends the telemetry
that is due.  Pacing: by default sim time follows the wall clock (``--speed 1``; ``--speed 5``
runs five times faster; if the machine cannot keep up the sim runs slower and says so once).
``--fast`` drops pacing: sim time advances as fast as the machine allows and never waits for a
client, so a client's waits always end (vehicles hold while it thinks).  Telemetry is due every
0.1 s of sim time but at most every 0.04 s of wall time, so a fast sim does not flood a ground
station; events (COMMAND_ACK, mission protocol, MISSION_ITEM_REACHED) go out at once.  MAVLink
``time_boot_ms`` is sim time.

**Recording** (``--record``) writes one sequence per vehicle under ``--out`` in the documented
layout (:mod:`vlwm.io.recording`), frames at ``--rate`` from t = 0; the manifest's ``mavlink``
entry lists the ports and the missions uploaded (saved under ``<out>/mavlink_missions/``).  A
run stopped before ``--duration`` closes its sequences as ``interrupted``.
"""

from __future__ import annotations

import argparse
import math
import os
import select
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from vlwm.io.sequence_writer import SequenceWriter
from vlwm.sim.camera import camera_rig
from vlwm.sim.dynamic_world import DynamicWorld
from vlwm.sim.lidar import LidarConfig
from vlwm.sim.mavlink_endpoint import GCS_PORT, VehicleEndpoint, vehicle_ports
from vlwm.sim.missions import Mission, Waypoint
from vlwm.sim.planning import PlanningError, nearest_open_site
from vlwm.sim.simulator import SimConfig, _record_frame, build_manifest
from vlwm.sim.traffic import Traffic, TrafficConfig
from vlwm.sim.vehicles import Drone, Rover
from vlwm.world.scene import Scene

SPAWN_GRID_M = 12.0            #: drones are placed at the open sites nearest grid points this far apart ...
MIN_SPAWN_SEPARATION_M = 8.0   #: ... at least this far from each other (and from rovers)
SPAWN_CANDIDATES = 200         #: grid points / road edges tried before giving up
LAG_RESET_S = 0.5              #: a paced sim this far behind the wall clock stops trying to catch up
GAZEBO_MESSAGE = ("the Gazebo backend needs the ArduPilot + Gazebo stack: install it with "
                  "scripts/install_ardupilot_gazebo_stack.sh, then follow its instructions; "
                  "the built-in backend (--backend builtin, the default) needs nothing else")


@dataclass(frozen=True)
class ServerConfig:
    """What ``vlwm sim-server`` runs."""

    drones: int = 1
    """Number of drones (vehicles 0 .. drones-1)."""
    rovers: int = 1
    """Number of rovers (the vehicles after the drones)."""
    speed: float = 1.0
    """Sim seconds per wall-clock second; ``math.inf`` = as fast as the machine allows (``--fast``)."""
    record: bool = False
    """Record one sequence per vehicle."""
    port_base: int = GCS_PORT
    """GCS port of vehicle 0 (vehicle i: ``port_base + 10 i``, its own socket ``+ 5``)."""
    host: str = "127.0.0.1"
    """Address the vehicles bind and send to."""
    sim: SimConfig = field(default_factory=SimConfig)
    """Frame rate, physics step, ``duration_s`` (None = until stopped), seed, sensors, traffic."""

    def __post_init__(self):
        if self.drones < 0 or self.rovers < 0 or self.drones + self.rovers == 0:
            raise ValueError(f"ServerConfig: need at least one vehicle, got {self.drones} drones, {self.rovers} rovers")
        if not self.speed > 0:
            raise ValueError(f"ServerConfig.speed must be positive (math.inf for --fast), got {self.speed}")


# ---------------------------------------------------------------------------------------------
# Placing vehicles
# ---------------------------------------------------------------------------------------------


def _grid_by_distance(step: float, count: int) -> np.ndarray:
    """(count, 2) grid points ``step`` m apart, nearest the origin first."""
    r = int(math.ceil(math.sqrt(count))) + 1
    g = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1)), -1).reshape(-1, 2) * step
    return g[np.lexsort((g[:, 1], g[:, 0], np.hypot(g[:, 0], g[:, 1])))][:count]


def _far_from(p, others, min_dist: float) -> bool:
    return all(np.hypot(*(np.asarray(p)[:2] - np.asarray(o)[:2])) >= min_dist for o in others)


def drone_sites(scene: Scene, count: int) -> list[np.ndarray]:
    """``count`` open takeoff sites (3,) near the origin, at least MIN_SPAWN_SEPARATION_M apart."""
    sites: list[np.ndarray] = []
    for xy in _grid_by_distance(SPAWN_GRID_M, SPAWN_CANDIDATES):
        if len(sites) == count:
            break
        try:
            site = nearest_open_site(scene, xy)
        except PlanningError:
            continue
        if _far_from(site, sites, MIN_SPAWN_SEPARATION_M):
            sites.append(site)
    if len(sites) < count:
        raise PlanningError(f"found only {len(sites)} open takeoff sites for {count} drones near the origin")
    return sites


def place_rovers(scene: Scene, count: int, avoid: Sequence[np.ndarray] = ()) -> list[Rover]:
    """``count`` rovers in the left lane at the road edges nearest the origin, facing along them."""
    if count == 0:
        return []
    roads = scene.roads
    if roads.num_edges == 0:
        raise PlanningError("the scene has no road graph: rovers cannot be placed (use --rovers 0, or the "
                            "procedural city)")
    nodes = roads.nodes.astype(np.float64)
    mid = nodes[roads.edges].mean(axis=1)
    rovers: list[Rover] = []
    taken = list(avoid)
    for e in np.argsort(np.hypot(mid[:, 0], mid[:, 1]), kind="stable")[:SPAWN_CANDIDATES]:
        if len(rovers) == count:
            break
        a, b = (int(v) for v in roads.edges[e])
        spawn = Mission("spawn", "rover", tuple(nodes[a]), (Waypoint(tuple(nodes[a])), Waypoint(tuple(nodes[b]))))
        try:
            rover = Rover.at_route_start(scene, spawn)
        except PlanningError:
            continue
        if _far_from(rover.position, taken, MIN_SPAWN_SEPARATION_M):
            rovers.append(rover)
            taken.append(rover.position)
    if len(rovers) < count:
        raise PlanningError(f"found only {len(rovers)} road places for {count} rovers")
    return rovers


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class Recording(NamedTuple):
    """One vehicle's sequence being written, and the sensors it records."""

    writer: SequenceWriter
    cameras: tuple
    lidar: LidarConfig


class SimServer:
    """Vehicles, traffic and MAVLink endpoints in ``scene``; :meth:`run` steps them until done or :meth:`stop`.

    ``out_root`` is where recordings (``config.record``) and uploaded missions go; ``scene_ref``
    how the manifests refer to the scene file.  Ports are bound here, so a clash fails early.
    """

    def __init__(self, scene: Scene, config: ServerConfig = ServerConfig(), out_root: str | os.PathLike | None = None,
                 *, scene_ref: str | None = None, log: Callable[[str], None] = print):
        self.scene, self.config, self.log = scene, config, log
        if config.record and out_root is None:
            raise ValueError("SimServer: recording needs an output folder (out_root)")
        sim = config.sim
        self.traffic = Traffic(scene, sim.traffic) if sim.traffic is not None else None
        self.world = DynamicWorld(scene, self.traffic)
        sites = drone_sites(scene, config.drones)
        vehicles = [Drone(scene, s[:2]) for s in sites] + place_rovers(scene, config.rovers, avoid=sites)
        kinds = ["drone"] * config.drones + ["rover"] * config.rovers
        self.ids = [f"{k}_{i if k == 'drone' else i - config.drones}" for i, k in enumerate(kinds)]
        self._tmp = None
        if config.record:
            mission_dir = Path(out_root) / "mavlink_missions"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="vlwm_missions_")
            mission_dir = Path(self._tmp.name)
        self.vehicles = vehicles
        self.endpoints: list[VehicleEndpoint] = []
        try:
            for i, (vid, vehicle) in enumerate(zip(self.ids, vehicles)):
                gcs, own = vehicle_ports(i, config.port_base)
                self.endpoints.append(VehicleEndpoint(vehicle, scene, vehicle_id=vid, sysid=i + 1,
                                                      gcs_addr=(config.host, gcs), bind_addr=(config.host, own),
                                                      mission_dir=mission_dir, log=log))
            self.recordings = [self._recording(out_root, scene_ref, i, kind)
                               for i, kind in enumerate(kinds)] if config.record else []
        except BaseException:
            self._close_endpoints()
            raise
        self.kinds = kinds
        self.t = 0.0
        self.frames = 0
        self._stop = threading.Event()

    def _recording(self, out_root, scene_ref, i: int, kind: str) -> Recording:
        sim, vid, home = self.config.sim, self.ids[i], self.vehicles[i].home
        cameras = camera_rig(kind, *sim.image_size) if sim.record_cameras else ()
        # The manifest's mission: standing at home until a ground station uploads one (listed under 'mavlink').
        start = Mission(f"{vid}_mavlink", kind, tuple(home), (Waypoint(tuple(home)),))
        manifest = build_manifest(self.scene, scene_ref, start, sim, vid, cameras)
        gcs, own = vehicle_ports(i, self.config.port_base)
        manifest["mavlink"] = {"sysid": self.endpoints[i].sysid, "gcs_udp": f"{self.config.host}:{gcs}",
                               "vehicle_udp": f"{self.config.host}:{own}",
                               "speed": "fast" if math.isinf(self.config.speed) else self.config.speed,
                               "missions": [], "items_reached": []}
        return Recording(SequenceWriter.create(out_root, kind, manifest), cameras, sim.lidar_for(kind))

    def describe(self) -> list[str]:
        """One line per vehicle: what it is, where, and how to connect."""
        lines = []
        for i, (vid, ep) in enumerate(zip(self.ids, self.endpoints)):
            gcs, own = vehicle_ports(i, self.config.port_base)
            lat, lon, msl = ep.latlon(ep.vehicle.home)
            lines.append(f"{vid}: sysid {ep.sysid}, at ({lat / 1e7:.7f}, {lon / 1e7:.7f}) {msl:.1f} m MSL; "
                         f"sends to udp {self.config.host}:{gcs} (client: --connect udp:{self.config.host}:{gcs}, "
                         f"or udpout:{self.config.host}:{own})")
        return lines

    def stop(self) -> None:
        """Ask :meth:`run` to finish after the current step (thread- and signal-safe)."""
        self._stop.set()

    def run(self) -> str:
        """Step until ``duration_s`` ('complete') or :meth:`stop` ('interrupted'); closes everything."""
        sim = self.config.sim
        dt_frame = 1.0 / sim.frame_rate_hz
        total = None if sim.duration_s is None else int(np.floor(sim.duration_s * sim.frame_rate_hz + 1e-9)) + 1
        status, k = "interrupted", 0
        self._wall0 = time.monotonic()
        self._lagging = False
        try:
            while not self._stop.is_set():
                t_frame = k * dt_frame
                if self.t >= t_frame - 1e-9:
                    for rec, vehicle in zip(self.recordings, self.vehicles):
                        _record_frame(rec.writer, self.world, vehicle.pose(), t_frame, k, self.scene, rec.lidar,
                                      rec.cameras, sim)
                    self.frames = k = k + 1
                    if total is not None and k >= total:
                        status = "complete"
                        break
                    continue
                for ep in self.endpoints:
                    ep.poll()
                dt = min(sim.physics_dt, t_frame - self.t)
                for vehicle in self.vehicles:
                    vehicle.step(dt)
                self.t = t_frame if abs(self.t + dt - t_frame) < 1e-9 else self.t + dt
                for ep in self.endpoints:
                    ep.update(self.t)
                self._pace()
        finally:
            self._close(status)
        return status

    def _pace(self) -> None:
        """Wait (answering MAVLink) until the wall clock catches up with sim time / speed."""
        speed = self.config.speed
        if math.isinf(speed):
            return
        while not self._stop.is_set():
            ahead = self._wall0 + self.t / speed - time.monotonic()
            if ahead <= 0:
                break
            ready, _, _ = select.select(self.endpoints, [], [], ahead)
            for ep in ready:
                ep.poll()
        behind = time.monotonic() - (self._wall0 + self.t / speed)
        if behind > LAG_RESET_S:
            if not self._lagging:
                self.log(f"sim-server: the simulation runs slower than {speed:g}x real time (rendering?); "
                         f"sim time now lags the wall clock")
                self._lagging = True
            self._wall0 += behind

    def _close(self, status: str) -> None:
        for rec, ep in zip(self.recordings, self.endpoints):
            rec.writer.manifest.mavlink.update(missions=ep.missions, items_reached=ep.reached)
            rec.writer.close(status)
        self._close_endpoints()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _close_endpoints(self) -> None:
        for ep in self.endpoints:
            ep.close()


# ---------------------------------------------------------------------------------------------
# Command line: `vlwm sim-server` (and `python -m vlwm.sim.mavlink_server`)
# ---------------------------------------------------------------------------------------------


def _image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 640x360), got {text!r}") from None
    return w, h


def add_sim_server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("builtin", "gazebo"), default="builtin",
                   help="builtin (this simulator, default) or gazebo (Gazebo Harmonic + ArduPilot SITL, installed by "
                        "scripts/install_ardupilot_gazebo_stack.sh; see docs/gazebo.md)")
    p.add_argument("--dry-run", action="store_true",
                   help="gazebo: print the launch plan (vehicles, ports, files, commands); write and start nothing")
    p.add_argument("--ardupilot-dir", default=None,
                   help="gazebo: ArduPilot checkout with build/sitl/bin (default: $OCCWORLD_ARDUPILOT_DIR, else "
                        "the one whose Tools/autotest/sim_vehicle.py is on PATH)")
    p.add_argument("--world", nargs="+", default=["procedural"],
                   help="'procedural' (default), a scene .npz, or CityGML files/folders")
    p.add_argument("--city-seed", type=int, default=0, help="procedural city seed")
    p.add_argument("--city-size", type=float, default=None, help="procedural city side, metres (default 1000)")
    p.add_argument("--drones", type=int, default=1, help="number of drones (vehicles 0..)")
    p.add_argument("--rovers", type=int, default=1, help="number of rovers (the vehicles after the drones)")
    p.add_argument("--record", action="store_true",
                   help="builtin: record one sequence per vehicle under --out; gazebo: record the sensor topics to a "
                        "ROS 2 bag in the session folder under --out (convert it with vlwm import-bag)")
    p.add_argument("--headless", action="store_true",
                   help="no display: gazebo runs its server only, rendering sensors offscreen (builtin: always)")
    p.add_argument("--fast", action="store_true", help="no pacing: sim time runs as fast as the machine allows")
    p.add_argument("--speed", type=float, default=1.0, help="sim seconds per wall second without --fast (default 1)")
    p.add_argument("--duration", type=float, default=None, help="seconds of sim time to run (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=2.0, help="recorded frames per second")
    p.add_argument("--image-size", type=_image_size, default=(640, 360), help="camera WIDTHxHEIGHT")
    p.add_argument("--no-cameras", action="store_true", help="do not render cameras")
    p.add_argument("--no-lidar", action="store_true", help="do not record lidar")
    p.add_argument("--no-traffic", action="store_true", help="an empty city: no cars, pedestrians, drones")
    p.add_argument("--out", default="data/tokyo_gazebo", help="recordings root (and the scene cache)")
    p.add_argument("--seed", type=int, default=0, help="traffic and lidar-noise seed")
    p.add_argument("--port-base", type=int, default=GCS_PORT,
                   help=f"GCS UDP port of vehicle 0 (default {GCS_PORT}); vehicle i uses +10 i")
    p.add_argument("--host", default="127.0.0.1", help="address to bind and send to")


def cmd_sim_server(args: argparse.Namespace) -> int:
    if args.backend == "gazebo":
        from vlwm.sim.gazebo_backend import cmd_gazebo

        return cmd_gazebo(args, missing_hint=GAZEBO_MESSAGE, log=lambda text: print(text, flush=True))
    if args.dry_run:
        print("vlwm sim-server: error: --dry-run applies to --backend gazebo (the built-in backend has no "
              "launch plan: it starts at once)", file=sys.stderr)
        return 2
    from vlwm.world.sources import world_scene_file

    out = Path(args.out)
    scene_path = world_scene_file(args.world, out, args.city_seed, args.city_size)
    scene = Scene.load(scene_path)
    sim = SimConfig(frame_rate_hz=args.rate, duration_s=args.duration, seed=args.seed,
                    record_lidar=not args.no_lidar, record_cameras=not args.no_cameras, image_size=args.image_size,
                    traffic=None if args.no_traffic else TrafficConfig(seed=args.seed))
    config = ServerConfig(drones=args.drones, rovers=args.rovers, speed=math.inf if args.fast else args.speed,
                          record=args.record, port_base=args.port_base, host=args.host, sim=sim)
    scene_ref = os.path.relpath(scene_path.resolve(), out.resolve() / "x") if args.record else str(scene_path)

    def log(text: str) -> None:
        print(text, flush=True)

    try:
        server = SimServer(scene, config, out, scene_ref=scene_ref, log=log)
    except OSError as exc:   # a port in use
        print(f"vlwm sim-server: error: {exc}", file=sys.stderr)
        return 2
    for line in server.describe():
        log(f"sim-server: {line}")
    handlers = {s: signal.signal(s, lambda *_: server.stop()) for s in (signal.SIGINT, signal.SIGTERM)}
    pace = "as fast as possible (--fast)" if args.fast else f"{args.speed:g}x real time"
    until = "Ctrl-C" if args.duration is None else f"{args.duration:g} s of sim time or Ctrl-C"
    log(f"sim-server: ready: {len(server.vehicles)} vehicle(s) in {scene_path}, {pace}, until {until}")
    t0 = time.perf_counter()
    try:
        status = server.run()
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    where = f", {server.frames} frames per vehicle under {out}" if args.record else ""
    log(f"sim-server: {status} after {server.t:.1f} s of sim time in {time.perf_counter() - t0:.1f} s{where}")
    for rec in server.recordings:
        log(f"  {rec.writer.path}")
    return 0


def add_sim_server_parser(sub) -> argparse.ArgumentParser:
    """Register ``vlwm sim-server`` on the ``vlwm`` sub-parsers ``sub``."""
    s = sub.add_parser("sim-server", help="run vehicles as MAVLink endpoints (ArduPilot SITL style) and record them",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sim_server_arguments(s)
    s.set_defaults(func=cmd_sim_server)
    return s


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vlwm sim-server", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sim_server_arguments(p)
    args = p.parse_args(argv)
    try:
        return cmd_sim_server(args)
    except (ValueError, FileNotFoundError) as exc:   # PlanningError, bad files (as `vlwm` reports them)
        print(f"vlwm sim-server: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
