"""The built-in simulator: a vehicle flies or drives a mission among traffic and is recorded.

One call of :func:`record_mission` produces one sequence folder in the documented layout
(:mod:`vlwm.io.recording`).  Time runs in lock-step: the vehicle's control loop advances in
``physics_dt`` steps, and at every frame time ``k / frame_rate_hz`` the sensors see the scene plus
the traffic at exactly that time (the same time the ground-truth stage voxelises).

Determinism: the vehicle, the traffic (seeded) and the lidar noise (seeded per frame by
``(seed, frame)``) make a recording a pure function of its inputs, which is what lets an
interrupted recording resume: the vehicle is replayed without sensors up to the first missing
frame, then recording continues.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vlwm.io.manifest import load_manifest
from vlwm.io.recording import LIDAR_COLUMNS, OPTICAL_FRAME, POSE_CONVENTION
from vlwm.io.sequence_writer import SequenceWriter
from vlwm.sim.camera import CAMERA_NAMES, camera_rig, render_rig
from vlwm.sim.dynamic_world import DynamicWorld
from vlwm.sim.lidar import LidarConfig, drone_lidar, rover_lidar, scan
from vlwm.sim.mission_types import Mission
from vlwm.sim.traffic import Traffic
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.sim.vehicles import vehicle_for_mission
from vlwm.world.scene import Scene

#: OccWorld's keyframe rate (0.5 s between occupancy frames), the default recording rate.
DEFAULT_FRAME_RATE_HZ = 2.0
LIDAR_CONVENTION = ("points in the lidar frame at the frame's pose time; the sweep is motion-compensated "
                    "(geometry and pose sampled at the frame time), t = when the column would fire (s)")


@dataclass(frozen=True)
class SimConfig:
    """How a mission is simulated and recorded."""

    frame_rate_hz: float = DEFAULT_FRAME_RATE_HZ
    """Recorded frames per second (2 Hz = OccWorld's 0.5 s step)."""
    physics_dt: float = 0.05
    """Vehicle control-loop step, seconds (frames fall exactly on their times regardless)."""
    duration_s: float | None = None
    """Stop recording after this many seconds; None = when the mission ends."""
    max_mission_s: float = 3600.0
    """A mission still running after this long is an error (a stuck vehicle)."""
    seed: int = 0
    """Seed of the lidar noise (and recorded in the manifest)."""
    lidar: LidarConfig | None = None
    """The lidar; None = the vehicle type's default (:func:`drone_lidar` / :func:`rover_lidar`)."""
    record_lidar: bool = True
    """Write ``lidar/NNNNNN_LIDAR.npy``."""
    record_cameras: bool = True
    """Render and write the six cameras."""
    image_size: tuple[int, int] = (640, 360)
    """Camera width, height in pixels."""
    traffic: TrafficConfig | None = field(default_factory=TrafficConfig)
    """Dynamic traffic; None = an empty city."""

    def __post_init__(self):
        if not self.frame_rate_hz > 0 or not self.physics_dt > 0:
            raise ValueError(f"SimConfig: frame_rate_hz ({self.frame_rate_hz}) and physics_dt ({self.physics_dt}) "
                             "must be positive")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"SimConfig: duration_s must be positive or None, got {self.duration_s}")

    def lidar_for(self, vehicle: str) -> LidarConfig:
        if self.lidar is not None:
            return self.lidar
        return drone_lidar() if vehicle == "drone" else rover_lidar()


def sensor_calibration(vehicle: str, lidar: LidarConfig, cameras) -> dict:
    """``sequence.json`` sensor entries: per sensor ``T_body_sensor`` (4x4 row-major), cameras' K and size."""
    sensors = {"LIDAR": {"type": "lidar", "T_body_sensor": lidar.T_body_sensor().round(9).tolist(),
                         **{k: v for k, v in asdict(lidar).items() if k not in ("mount_xyz", "mount_rpy")},
                         "columns_layout": list(LIDAR_COLUMNS), "convention": LIDAR_CONVENTION}}
    for cam in cameras:
        sensors[cam.name] = {"type": "camera", "T_body_sensor": cam.T_body_sensor().round(9).tolist(),
                             "K": cam.K().round(9).tolist(), "width": cam.width, "height": cam.height,
                             "max_range": cam.max_range,
                             "optical_frame": OPTICAL_FRAME, "depth": "16-bit PNG, z-depth in mm, 0 = none",
                             "semantic": "8-bit PNG, occupancy label ids"}
    return sensors


def build_manifest(scene: Scene, scene_ref: str | None, mission: Mission, config: SimConfig,
                   vehicle_id: str, cameras) -> dict:
    lidar = config.lidar_for(mission.vehicle)
    return {
        "vehicle_id": vehicle_id,
        "scene": {"source": scene.meta.get("source", "unknown"), "file": scene_ref,
                  "geo_origin": scene.geo.to_dict(), "label_names": list(scene.label_map.names),
                  "generator": {k: scene.meta[k] for k in ("config", "generator_version") if k in scene.meta}},
        "seed": config.seed,
        "rates": {"frame_rate_hz": config.frame_rate_hz, "lidar_rate_hz": lidar.rate_hz,
                  "physics_dt": config.physics_dt},
        "pose_convention": POSE_CONVENTION,
        "lidar_columns": list(LIDAR_COLUMNS),
        "sensors": sensor_calibration(mission.vehicle, lidar, cameras),
        "cameras": [c.name for c in cameras],
        "mission": {"name": mission.name, "vehicle": mission.vehicle, "home": list(mission.home),
                    "waypoints": [{"position": list(w.position), "command": w.command, "speed": w.speed,
                                   "yaw": w.yaw, "hold_s": w.hold_s} for w in mission.waypoints]},
        "traffic": None if config.traffic is None else asdict(config.traffic),
        # Instance ids from this one up are traffic actors (they continue after the scene's own).
        "traffic_first_instance": None if config.traffic is None else int(len(scene.instance_names)),
        "sim": {k: v for k, v in asdict(config).items() if k not in ("lidar", "traffic")},
    }


def record_mission(scene: Scene, mission: Mission, out_root: str | os.PathLike, config: SimConfig = SimConfig(),
                   *, scene_ref: str | None = None, vehicle_id: str | None = None, resume: str | os.PathLike | None = None,
                   traffic: Traffic | None = None, name: str | None = None, progress: bool = True,
                   start: datetime.datetime | None = None) -> Path:
    """Fly/drive ``mission`` in ``scene`` and record it; returns the sequence folder.

    Parameters
    ----------
    scene_ref : str, optional
        How the manifest refers to the scene file (e.g. ``../scenes/city.npz``), so later stages
        can reload it.
    resume : path, optional
        An interrupted sequence folder to continue (its manifest must describe the same mission).
    traffic : Traffic, optional
        Prebuilt traffic (built from ``config.traffic`` otherwise).
    name : str, optional
        Folder name instead of ``<vehicle>_<YYYYmmdd_HHMMSS>``.
    start : datetime, optional
        The manifest's ``created`` time (default: now); a fixed value makes ``sequence.json``
        reproducible byte for byte.
    """
    vehicle = vehicle_for_mission(mission, scene)  # plans the mission: errors before anything is written
    if traffic is None and config.traffic is not None:
        traffic = Traffic(scene, config.traffic)
    world = DynamicWorld(scene, traffic)
    lidar_cfg = config.lidar_for(mission.vehicle)
    cameras = camera_rig(mission.vehicle, *config.image_size) if config.record_cameras else ()
    vehicle_id = vehicle_id or f"{mission.vehicle}_0"
    manifest = build_manifest(scene, scene_ref, mission, config, vehicle_id, cameras)

    if resume is not None:
        if load_manifest(resume).status == "complete":
            raise ValueError(f"{resume}: the recording is already complete")
        writer = SequenceWriter.open(resume)
        _check_resumable(writer, manifest)
    else:
        writer = SequenceWriter.create(out_root, mission.vehicle, manifest, start=start, name=name)

    dt_frame = 1.0 / config.frame_rate_hz
    total = None
    if config.duration_s is not None:
        total = int(np.floor(config.duration_s * config.frame_rate_hz + 1e-9)) + 1
    bar = tqdm(total=total, initial=writer.num_frames, unit="frame", desc=writer.path.name, disable=not progress)
    status = "interrupted"
    try:
        k = 0
        while True:
            t = k * dt_frame
            if total is not None and k >= total:
                status = "complete"
                break
            while vehicle.t < t - 1e-9:
                if vehicle.t > config.max_mission_s:
                    raise RuntimeError(f"mission {mission.name!r} still running after {config.max_mission_s:.0f} s")
                vehicle.step(min(config.physics_dt, t - vehicle.t))
            if k >= writer.num_frames:  # frames already on disk (resume) are replayed without sensors
                _record_frame(writer, world, vehicle.pose(), t, k, scene, lidar_cfg, cameras, config)
                bar.update(1)
            k += 1
            if vehicle.done and total is None:
                status = "complete"
                break
    finally:
        bar.close()
        writer.close(status)
    return writer.path


def _record_frame(writer, world, pose, t, k, scene, lidar_cfg, cameras, config) -> None:
    pose = replace(pose, timestamp=float(t))
    caster = world.caster(t)
    lidar = None
    if config.record_lidar:
        rng = np.random.default_rng([config.seed, k])
        lidar = scan(caster, pose, lidar_cfg, rng if (lidar_cfg.range_noise_std or lidar_cfg.dropout) else None)
    images = render_rig(caster, pose, cameras, seed=config.seed) if cameras else None
    ground_z = float(scene.ground_height(pose.position[0], pose.position[1]))
    writer.write_frame(pose, lidar=lidar, images=images, ground_z=ground_z)


def _check_resumable(writer: SequenceWriter, manifest: dict) -> None:
    old = writer.manifest.to_json()
    for key in ("mission", "seed", "rates", "traffic", "sensors"):
        if json.dumps(old.get(key), sort_keys=True) != json.dumps(json.loads(json.dumps(manifest[key])), sort_keys=True):
            raise ValueError(f"{writer.path}: cannot resume: its {key!r} differs from this run's "
                             f"(start a new sequence, or --overwrite)")


__all__ = ["CAMERA_NAMES", "DEFAULT_FRAME_RATE_HZ", "SimConfig", "record_mission", "sensor_calibration"]
