"""The simulator as a MAVLink server: vehicles in a scene among traffic, each a SITL-like endpoint, recorded.

``vlwm sim-server`` (``scripts/launch_occworld_simulation.sh``) puts ``--drones`` drones on the
ground at distinct open sites near the scene origin and ``--rovers`` cars in the left lane of the
roads nearest it, makes each a :class:`~vlwm.sim.mavlink.endpoint.VehicleEndpoint` (vehicle ``i``,
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

Vehicles are placed by :mod:`vlwm.sim.placement` (as in the Gazebo backend), ports follow
:mod:`vlwm.sim.mavlink.ports`, and the command line is :func:`vlwm.sim.cli.cmd_sim_server`.
"""

from __future__ import annotations

import math
import os
import select
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from vlwm.io.sequence_writer import SequenceWriter
from vlwm.sim.camera import camera_rig
from vlwm.sim.dynamic_world import DynamicWorld
from vlwm.sim.lidar import LidarConfig
from vlwm.sim.mavlink.endpoint import VehicleEndpoint
from vlwm.sim.mavlink.ports import GCS_PORT, endpoint_ports
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.placement import drone_sites, place_rovers
from vlwm.sim.simulator import SimConfig, _record_frame, build_manifest
from vlwm.sim.traffic import Traffic
from vlwm.sim.vehicles import Drone
from vlwm.world.scene import Scene

LAG_RESET_S = 0.5              #: a paced sim this far behind the wall clock stops trying to catch up


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
                gcs, own = endpoint_ports(i, config.port_base)
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
        gcs, own = endpoint_ports(i, self.config.port_base)
        manifest["mavlink"] = {"sysid": self.endpoints[i].sysid, "gcs_udp": f"{self.config.host}:{gcs}",
                               "vehicle_udp": f"{self.config.host}:{own}",
                               "speed": "fast" if math.isinf(self.config.speed) else self.config.speed,
                               "missions": [], "items_reached": []}
        return Recording(SequenceWriter.create(out_root, kind, manifest), cameras, sim.lidar_for(kind))

    def describe(self) -> list[str]:
        """One line per vehicle: what it is, where, and how to connect."""
        lines = []
        for i, (vid, ep) in enumerate(zip(self.ids, self.endpoints)):
            gcs, own = endpoint_ports(i, self.config.port_base)
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
