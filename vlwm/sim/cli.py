"""``vlwm simulate``, ``vlwm sim-server`` and the mission script: argument parsing only.

:func:`add_simulate_parser` and :func:`add_sim_server_parser` register the verbs on ``vlwm``'s
sub-parsers; :func:`mission_main` is ``scripts/data_collection_mission.py``.  Each command calls the
simulator's public functions: :func:`vlwm.sim.jobs.run_jobs` (built-in recording),
:class:`vlwm.sim.mavlink.server.SimServer` (``sim-server``, built-in backend), the Gazebo session of
:mod:`vlwm.sim.gazebo.backend` (``sim-server --backend gazebo``) and :func:`vlwm.sim.mavlink.client.fly`
(the mission script).  The optional integrations (MAVLink, Gazebo) are imported only by the
commands that use them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from vlwm.sim.mavlink.ports import GCS_PORT
from vlwm.world.sources import world_scene_file

#: What ``sim-server --backend gazebo`` says when the stack it needs is not installed.
GAZEBO_STACK_HINT = ("the Gazebo backend needs the ArduPilot + Gazebo stack: install it with "
                     "scripts/install_ardupilot_gazebo_stack.sh, then follow its instructions; "
                     "the built-in backend (--backend builtin, the default) needs nothing else")


def _xy(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(f"expected X,Y in metres (e.g. 120,-40), got {text!r}") from None
    return (x, y)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"expected WIDTHxHEIGHT (e.g. 640x360), got {text!r}") from None
    return (w, h)


# ---------------------------------------------------------------------------------------------
# `vlwm simulate`
# ---------------------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from vlwm.sim.jobs import build_mission, run_jobs, spread_specs
    from vlwm.sim.mission_spec import MissionSpec
    from vlwm.sim.simulator import SimConfig, record_mission
    from vlwm.sim.traffic_config import TrafficConfig
    from vlwm.world.scene import Scene

    out = Path(args.out)
    scene_path = world_scene_file(args.world, out, args.city_seed, args.city_size)
    scene = Scene.load(scene_path)
    config = SimConfig(frame_rate_hz=args.rate, duration_s=args.duration, seed=args.seed,
                       record_lidar=not args.no_lidar, record_cameras=not args.no_cameras,
                       image_size=_size(args.image_size),
                       traffic=None if args.no_traffic else TrafficConfig(seed=args.seed))
    if args.resume:
        spec = MissionSpec(vehicle=args.vehicle, pattern=args.pattern, size=args.size, spacing=args.spacing,
                           altitude=args.altitude, center=_xy(args.center), radius=args.radius, laps=args.laps,
                           target=args.target, waypoints_file=args.waypoints, goals=args.goals,
                           start=_xy(args.start), goal=_xy(args.goal), seed=args.seed)
        path = record_mission(scene, build_mission(scene, spec), out, config, resume=args.resume,
                              scene_ref=str(scene_path.resolve()))
        print(f"simulate: resumed {path}")
        return 0
    if args.drones is None and args.rovers is None:
        counts = {"drone": int(args.vehicle == "drone"), "rover": int(args.vehicle == "rover")}
    else:
        counts = {"drone": args.drones or 0, "rover": args.rovers or 0}
    specs = []
    for vehicle, count in counts.items():
        if count <= 0:
            continue
        pattern = args.pattern
        if vehicle == "rover" and pattern in ("survey", "orbit"):
            pattern = "patrol"  # the flight patterns do not apply to cars: they patrol the roads
        base = MissionSpec(vehicle=vehicle, pattern=pattern, size=args.size, spacing=args.spacing,
                           altitude=args.altitude, center=_xy(args.center), radius=args.radius, laps=args.laps,
                           target=args.target, waypoints_file=args.waypoints, goals=args.goals,
                           start=_xy(args.start), goal=_xy(args.goal), seed=args.seed)
        specs += spread_specs(base, count, scene)
    t0 = time.perf_counter()
    paths = run_jobs(scene_path, specs, out, config, workers=args.workers)
    frames = sum(json.loads((p / "sequence.json").read_text())["num_frames"] for p in paths)
    print(f"simulate: wrote {len(paths)} sequence(s), {frames} frames under {out} in {time.perf_counter() - t0:.1f} s")
    for p in paths:
        print(f"  {p}")
    return 0


def add_simulate_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--world", nargs="+", default=["procedural"],
                   help="'procedural' (default), a scene .npz, or CityGML files/folders")
    s.add_argument("--city-seed", type=int, default=0, help="procedural city seed")
    s.add_argument("--city-size", type=float, default=None, help="procedural city side, metres (default 1000)")
    s.add_argument("--vehicle", choices=("drone", "rover"), default="drone",
                   help="vehicle type when --drones/--rovers are not given")
    s.add_argument("--drones", type=int, default=None, help="number of drone sequences")
    s.add_argument("--rovers", type=int, default=None, help="number of rover sequences")
    s.add_argument("--pattern", choices=("survey", "orbit", "waypoints", "patrol", "route"), default="survey")
    s.add_argument("--size", type=float, default=100.0, help="survey square side, m")
    s.add_argument("--spacing", type=float, default=15.0, help="survey line spacing, m")
    s.add_argument("--altitude", type=float, default=30.0, help="flight height above home ground, m")
    s.add_argument("--center", help="survey/orbit centre X,Y (local metres)")
    s.add_argument("--radius", type=float, default=40.0, help="orbit radius, m")
    s.add_argument("--laps", type=float, default=1.0, help="orbit laps")
    s.add_argument("--target", help="orbit around this building (instance name / gml:id)")
    s.add_argument("--waypoints", help="QGC WPL 110 mission file (pattern waypoints)")
    s.add_argument("--goals", type=int, default=4, help="patrol goals")
    s.add_argument("--start", help="rover route start X,Y")
    s.add_argument("--goal", help="rover route goal X,Y")
    s.add_argument("--duration", type=float, default=None, help="seconds to record (default: whole mission)")
    s.add_argument("--rate", type=float, default=2.0, help="recorded frames per second")
    s.add_argument("--image-size", default="640x360", help="camera WIDTHxHEIGHT")
    s.add_argument("--no-cameras", action="store_true", help="do not render cameras")
    s.add_argument("--no-lidar", action="store_true", help="do not record lidar")
    s.add_argument("--no-traffic", action="store_true", help="an empty city: no cars, pedestrians, drones")
    s.add_argument("--out", default="data/tokyo_gazebo", help="recordings root")
    s.add_argument("--seed", type=int, default=0, help="mission/traffic/noise seed")
    s.add_argument("--workers", type=int, default=1, help="parallel processes (one sequence each)")
    s.add_argument("--resume", help="continue an interrupted sequence folder (same options as its run)")


def add_simulate_parser(sub) -> argparse.ArgumentParser:
    """Register ``vlwm simulate`` on the ``vlwm`` sub-parsers ``sub``."""
    s = sub.add_parser("simulate", help="fly/drive missions among traffic and record sensors (built-in simulator)")
    add_simulate_arguments(s)
    s.set_defaults(func=cmd_simulate)
    return s


# ---------------------------------------------------------------------------------------------
# `vlwm sim-server`
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
    """Run the built-in MAVLink server (or, ``--backend gazebo``, :func:`cmd_gazebo`) until done."""
    if args.backend == "gazebo":
        return cmd_gazebo(args, log=lambda text: print(text, flush=True))
    if args.dry_run:
        print("vlwm sim-server: error: --dry-run applies to --backend gazebo (the built-in backend has no "
              "launch plan: it starts at once)", file=sys.stderr)
        return 2
    from vlwm.sim.mavlink.server import ServerConfig, SimServer
    from vlwm.sim.simulator import SimConfig
    from vlwm.sim.traffic_config import TrafficConfig
    from vlwm.world.scene import Scene

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
    from vlwm.sim.mavlink import server

    s = sub.add_parser("sim-server", help="run vehicles as MAVLink endpoints (ArduPilot SITL style) and record them",
                       description=server.__doc__.split("\n\n")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sim_server_arguments(s)
    s.set_defaults(func=cmd_sim_server)
    return s


def gazebo_config_from_args(args: argparse.Namespace):
    """The :class:`~vlwm.sim.gazebo.backend.GazeboConfig` the ``sim-server`` options describe."""
    from vlwm.sim.gazebo.backend import GazeboConfig

    return GazeboConfig(drones=args.drones, rovers=args.rovers, headless=args.headless,
                        speed=math.inf if args.fast else args.speed, duration_s=args.duration, rate_hz=args.rate,
                        image_size=tuple(args.image_size), cameras=not args.no_cameras, lidar=not args.no_lidar,
                        record=args.record, port_base=args.port_base, host=args.host, seed=args.seed)


def _gazebo_scene(args: argparse.Namespace, out: Path, write: bool):
    """(scene, how the plan refers to it); with ``write=False`` an uncached scene is built in memory."""
    from vlwm.world.scene import Scene
    from vlwm.world.sources import build_scene

    if write:
        path = world_scene_file(args.world, out, args.city_seed, args.city_size)
        return Scene.load(path), str(path)
    if len(args.world) == 1 and args.world[0].endswith(".npz"):
        return Scene.load(args.world[0]), args.world[0]
    name = (f"procedural_seed{args.city_seed}_{int(args.city_size or 1000)}m.npz" if args.world == ["procedural"]
            else "_".join(Path(w).stem for w in args.world)[:80] + ".npz")
    cached = out / "scenes" / name
    if cached.exists():
        return Scene.load(cached), str(cached)
    return build_scene(args.world, seed=args.city_seed, size=args.city_size), f"{cached} (would be built and cached)"


def cmd_gazebo(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """``sim-server --backend gazebo``: check the stack, plan, (unless --dry-run) write the session and run it."""
    from vlwm.sim.gazebo.backend import (EXIT_STACK_MISSING, Stack, new_session_dir, plan_launch, run_session,
                                         write_session)

    config = gazebo_config_from_args(args)
    stack = Stack.detect(os.environ, args.ardupilot_dir)
    missing = stack.missing(config.kinds, config.record)
    if missing and not args.dry_run:
        print("vlwm sim-server: --backend gazebo cannot start, the stack is incomplete:\n"
              + "".join(f"  - {m}\n" for m in missing)
              + GAZEBO_STACK_HINT[:1].upper() + GAZEBO_STACK_HINT[1:]
              + ".  (If it is installed, `source ~/.occworld_env.sh` first.)", file=sys.stderr)
        return EXIT_STACK_MISSING
    if not args.no_traffic:
        log("sim-server: note: the gazebo backend has no traffic (the city model is static)")
    out = Path(args.out)
    scene, scene_ref = _gazebo_scene(args, out, write=not args.dry_run)
    plan = plan_launch(config, scene, new_session_dir(out.resolve()), stack, scene_ref)
    if args.dry_run:
        log("sim-server: dry run: nothing is written or started")
        for line in plan.describe():
            log(line)
        for m in missing:
            log(f"sim-server: stack incomplete: {m}")
        if missing:
            log(f"sim-server: {GAZEBO_STACK_HINT}")
        return 0
    write_session(plan, scene, stack)
    for line in plan.describe():
        log(f"sim-server: {line}")
    stop = threading.Event()
    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.perf_counter()
    try:
        status = run_session(plan, log, stop)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    where = f"; bag: {plan.bag_dir}" if config.record else ""
    log(f"sim-server: {'complete' if status == 0 else 'failed'} after {time.perf_counter() - t0:.1f} s{where}")
    if config.record:
        log("sim-server: convert it into one recording per vehicle, then its occupancy, with:")
        for cmd in (*plan.import_commands(), *plan.gt_commands()):
            log(f"  {shlex.join(cmd)}")
    return status


# ---------------------------------------------------------------------------------------------
# scripts/data_collection_mission.py (the MAVLink mission client)
# ---------------------------------------------------------------------------------------------


def _offset(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DX,DY in metres (e.g. 20,-10), got {text!r}") from None
    return x, y


def add_mission_arguments(p: argparse.ArgumentParser) -> None:
    from vlwm.sim.mavlink.client import DEFAULT_CONNECT, HEARTBEAT_TIMEOUT_S

    p.add_argument("--connect", default=DEFAULT_CONNECT,
                   help=f"MAVLink address (default {DEFAULT_CONNECT}: listen where vehicle 0 sends)")
    p.add_argument("--vehicle", choices=("drone", "rover"), default="drone")
    p.add_argument("--pattern", choices=("survey", "orbit", "patrol", "route", "waypoints"), default="survey")
    p.add_argument("--size", type=float, default=100.0, help="survey square side, m")
    p.add_argument("--spacing", type=float, default=15.0, help="survey line spacing, m")
    p.add_argument("--altitude", type=float, default=30.0, help="flight height above home, m")
    p.add_argument("--radius", type=float, default=40.0, help="orbit radius, m")
    p.add_argument("--laps", type=float, default=1.0, help="orbit laps")
    p.add_argument("--center", type=_offset, help="survey/orbit centre DX,DY: metres east, north of home")
    p.add_argument("--target", help="orbit this building (scene instance name; needs --scene)")
    p.add_argument("--goal", type=_offset, help="rover route goal DX,DY: metres east, north of the rover")
    p.add_argument("--goals", type=int, default=4, help="patrol goals")
    p.add_argument("--seed", type=int, default=0, help="patrol seed")
    p.add_argument("--speed", type=float, help="cruise speed, m/s (default: the vehicle's)")
    p.add_argument("--waypoints", help="QGC WPL 110 file to upload as is (pattern waypoints)")
    p.add_argument("--scene", help="scene .npz the simulator runs (its buildings and roads: patrol, route, --target)")
    p.add_argument("--save-mission", help="write the uploaded mission to this QGC WPL file")
    p.add_argument("--heartbeat-timeout", type=float, default=HEARTBEAT_TIMEOUT_S,
                   help="seconds to wait for the vehicle")
    p.add_argument("--timeout", type=float,
                   help="seconds of vehicle time for the flight (default: a bound from the mission's length)")
    p.add_argument("--no-verify", action="store_true", help="do not read the mission back after uploading")


def client_config_from_args(args: argparse.Namespace):
    """The :class:`~vlwm.sim.mavlink.client.ClientConfig` the mission script's options describe."""
    from vlwm.sim.mavlink.client import ClientConfig
    from vlwm.sim.mission_spec import MissionSpec

    mission = MissionSpec(vehicle=args.vehicle, pattern=args.pattern, size=args.size, spacing=args.spacing,
                          altitude=args.altitude, radius=args.radius, laps=args.laps, center=args.center,
                          target=args.target, goal=args.goal, goals=args.goals, seed=args.seed, speed=args.speed,
                          waypoints_file=args.waypoints)
    return ClientConfig(mission, connect=args.connect, scene=args.scene, save_mission=args.save_mission,
                        heartbeat_timeout=args.heartbeat_timeout, mission_timeout=args.timeout,
                        verify=not args.no_verify)


def cmd_mission(args: argparse.Namespace) -> int:
    """Fly the mission; 1 (with the reason on stderr) if the vehicle refused or did not answer."""
    from vlwm.sim.mavlink.client import MissionError, fly

    try:
        fly(client_config_from_args(args))
    except (ConnectionError, MissionError, ValueError, OSError) as exc:
        print(f"data_collection_mission: error: {exc}", file=sys.stderr)
        return 1
    return 0


def mission_main(argv: Sequence[str] | None = None) -> int:
    """``scripts/data_collection_mission.py``: parse ``argv`` and fly."""
    from vlwm.sim.mavlink import client

    p = argparse.ArgumentParser(prog="data_collection_mission.py", description=client.__doc__.split("\n\n")[0])
    add_mission_arguments(p)
    return cmd_mission(p.parse_args(argv))
