"""Recording jobs: which missions to fly, built from command-line style specs, run in parallel.

A :class:`~vlwm.sim.mission_spec.MissionSpec` names a pattern and its parameters (positions in the
scene's local ENU frame); :func:`build_mission` turns it into a
:class:`~vlwm.sim.mission_types.Mission` in a given scene.  :func:`run_jobs` records several specs —
several vehicles or several sequences — in worker processes that each load the scene file once.
"""

from __future__ import annotations

import datetime
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from vlwm.sim.mission_spec import MissionSpec
from vlwm.sim.mission_types import Mission
from vlwm.sim.missions import orbit_mission, patrol_mission, route_mission, survey_mission
from vlwm.sim.qgc_wpl import waypoints_mission
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.world.scene import Scene


def build_mission(scene: Scene, spec: MissionSpec) -> Mission:
    """The mission ``spec`` describes, in ``scene``."""
    rng = np.random.default_rng(spec.seed)
    if spec.pattern == "waypoints":
        return waypoints_mission(spec.waypoints_file, scene, vehicle=spec.vehicle)
    if spec.pattern == "patrol":
        home = (0.0, 0.0) if spec.center is None else spec.center
        return patrol_mission(scene, spec.vehicle, spec.goals, rng, altitude=spec.altitude, home_xy=home)
    if spec.pattern == "route":
        if spec.vehicle != "rover":
            raise ValueError("pattern 'route' follows roads: it is for rovers (drones: 'waypoints' or 'patrol')")
        nodes = scene.roads.nodes
        if not len(nodes):
            raise ValueError("pattern 'route' needs a scene with a road graph (the procedural city has one)")
        start = spec.start if spec.start is not None else nodes[rng.integers(len(nodes)), :2]
        goal = spec.goal if spec.goal is not None else nodes[rng.integers(len(nodes)), :2]
        return route_mission(scene, start, goal)
    center = spec.target if spec.target is not None else (spec.center if spec.center is not None else (0.0, 0.0))
    if spec.pattern == "survey":
        return survey_mission(scene, center, size=spec.size, spacing=spec.spacing, altitude=spec.altitude,
                              speed=spec.speed)
    return orbit_mission(scene, center, radius=spec.radius, altitude=spec.altitude, laps=spec.laps, speed=spec.speed)


def spread_specs(base: MissionSpec, count: int, scene: Scene) -> list[MissionSpec]:
    """``count`` variants of ``base`` for several vehicles/sequences: seeds ``seed, seed+1, …``; when no
    centre was given, jobs after the first survey/orbit around seeded points inside the scene."""
    specs = [base]
    lo, hi = scene.bounds[0, :2] * 0.6, scene.bounds[1, :2] * 0.6
    for i in range(1, count):
        s = replace(base, seed=base.seed + i)
        if base.center is None and base.target is None and base.pattern in ("survey", "orbit"):
            c = np.random.default_rng(s.seed).uniform(lo, hi)
            s = replace(s, center=(float(c[0]), float(c[1])))
        specs.append(s)
    return specs


def _record_job(args) -> str:
    scene_path, spec, config, out_root, scene_ref, vehicle_id, progress, name, start = args
    scene = Scene.load(scene_path)
    mission = build_mission(scene, spec)
    path = record_mission(scene, mission, out_root, replace(config, seed=spec.seed), scene_ref=scene_ref,
                          vehicle_id=vehicle_id, progress=progress, name=name, start=start)
    return str(path)


def run_jobs(scene_path: str | os.PathLike, specs: Sequence[MissionSpec], out_root: str | os.PathLike,
             config: SimConfig, workers: int = 1, progress: bool = True, names: Sequence[str] | None = None,
             start: datetime.datetime | None = None) -> list[Path]:
    """Record every spec (one sequence each); ``workers`` > 1 uses that many processes.

    ``scene_path`` is the cached scene file each worker loads; the manifests refer to it relative
    to the sequence folder when it lies under ``out_root``.  ``names`` (one per spec) fix the
    folder names and ``start`` the manifests' ``created`` time (defaults: ``<vehicle>_<timestamp>``
    and now), for recordings that must be reproducible byte for byte.
    """
    if names is not None and len(names) != len(specs):
        raise ValueError(f"run_jobs: {len(names)} names for {len(specs)} specs")
    scene_path = Path(scene_path).resolve()
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    try:
        scene_ref = os.path.relpath(scene_path, out_root.resolve() / "x")
    except ValueError:  # another drive (Windows)
        scene_ref = str(scene_path)
    counters: dict[str, int] = {}
    jobs = []
    for spec in specs:
        n = counters.get(spec.vehicle, 0)
        counters[spec.vehicle] = n + 1
        jobs.append((str(scene_path), spec, config, str(out_root), scene_ref, f"{spec.vehicle}_{n}",
                     progress and workers <= 1, None if names is None else names[len(jobs)], start))
    if workers <= 1 or len(jobs) == 1:
        return [Path(_record_job(j)) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [Path(p) for p in pool.map(_record_job, jobs)]
