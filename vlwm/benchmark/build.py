"""``vlwm benchmark build``: a preset's districts -> scenes -> recordings -> ground truth -> manifest.

Uses the stages' public entry points, as ``vlwm demo`` does: :func:`vlwm.world.procedural.generate_city`
and :func:`vlwm.world.citygml.load_plateau` (scenes), :func:`vlwm.sim.jobs.run_jobs` (recordings,
named deterministically and dated :data:`~vlwm.benchmark.presets.RECORDING_EPOCH`, so that their
``sequence.json`` files are byte-identical between builds) and :func:`vlwm.gt.recording.generate`
(occupancy with simulator instance ids on the preset's grid).  Then the lidar sweeps are removed
(unless the preset keeps them), the test windows are indexed and every file is hashed into
``MANIFEST.json``.

Seeds: district ``d`` with seed ``s`` records its ``k``-th agent with seed ``1000 * s + k``; its
traffic (shared by all of its agents) has seed ``s``.
"""

from __future__ import annotations

import datetime
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlwm.benchmark.layout import (ATTRIBUTION_FILE, INFO_FILE, MISSIONS_DIR, SCENES_DIR, WINDOWS_FILE,
                                   build_window_index, split_root, write_json)
from vlwm.benchmark.manifest import write_manifest
from vlwm.benchmark.presets import (BENCHMARK_ID, PLATEAU_ATTRIBUTION, PLATEAU_DIR_IN_REPO, RECORDING_EPOCH, Agent,
                                    District, Preset, altitude_band)

REPO = Path(__file__).resolve().parents[2]
#: Survey line spacing (m) of the drones' lawnmower missions.
SURVEY_SPACING_M = 20.0
#: Residential districts: no towers, few mid-rises (the procedural generator's knobs).
RESIDENTIAL = {"tower_fraction": 0.0, "midrise_fraction": 0.03}
#: Traffic on PLATEAU tiles, which have no road graph: only drones fly (they need no roads).
PLATEAU_TRAFFIC = {"cars": 0, "buses": 0, "trucks": 0, "pedestrians": 0, "drones": 6}
#: Mission centres tried per agent before the build gives up (towers can block low flights).
CANDIDATE_CENTRES = 8


def default_plateau_dir() -> Path:
    """``<repo>/../shared/data/plateau``, where the repository's tests also find the tiles."""
    return (REPO / PLATEAU_DIR_IN_REPO).resolve()


def check_plateau(preset: Preset, plateau_dir: Path) -> None:
    """Refuse, naming the folder and the files, when a preset needs PLATEAU tiles that are not there."""
    wanted = [d.gml for d in preset.districts if d.source == "plateau"]
    missing = [g for g in wanted if not (plateau_dir / g).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the '{preset.name}' preset needs the PLATEAU CityGML tiles {missing} in {plateau_dir}: put them there "
            f"(they ship in shared/data/plateau beside the repository, i.e. {PLATEAU_DIR_IN_REPO} from its root) "
            f"or pass --plateau-dir DIR; the 'tiny' preset needs none")


def build_scene(district: District, plateau_dir: Path):
    """The district's :class:`~vlwm.world.scene.Scene`."""
    if district.source == "plateau":
        from vlwm.world.citygml import load_plateau

        return load_plateau([plateau_dir / district.gml])
    from vlwm.world.procedural import CityConfig, generate_city

    extra = RESIDENTIAL if district.style == "residential" else {}
    return generate_city(CityConfig(seed=district.seed, size=district.size, **extra))


def recorded_seconds(preset: Preset, agent: Agent) -> float:
    """Seconds recorded for ``agent``: ``preset.duration_s`` at mission altitude, plus, for drones,
    the vertical takeoff to it (at the simulator's takeoff speed)."""
    from vlwm.sim.drone import DroneLimits

    climb = agent.altitude / DroneLimits().takeoff_speed if agent.vehicle == "drone" else 0.0
    return float(preset.duration_s + math.ceil(climb))


def _centre(scene) -> tuple[float, float]:
    lo, hi = scene.bounds[0, :2], scene.bounds[1, :2]
    return (round(float(lo[0] + hi[0]) / 2, 3), round(float(lo[1] + hi[1]) / 2, 3))


def mission_specs(bench: Path, district: District, scene, preset: Preset) -> list[tuple[str, Agent, Any]]:
    """``(sequence name, agent, MissionSpec)`` of every agent the district can host.

    Rovers need a road graph (PLATEAU building tiles have none).  A waypoint mission is a seeded
    drone patrol written as a QGC WPL file under ``missions/`` and flown from that file.
    """
    from vlwm.sim.jobs import build_mission
    from vlwm.sim.planning_errors import PlanningError
    from vlwm.sim.vehicles import vehicle_for_mission

    has_roads = len(scene.roads.nodes) > 0
    out = []
    for k, agent in enumerate(preset.agents):
        if agent.vehicle == "rover" and not has_roads:
            continue
        seed = 1000 * district.seed + k
        name = f"{district.name}_{agent.label}"
        for centre in candidate_centres(scene, district, seed):
            try:
                spec = _spec(bench, name, agent, seed, centre, district, scene, preset)
                vehicle_for_mission(build_mission(scene, spec), scene)   # plans it: a tower in the way raises
                break
            except PlanningError:
                continue
        else:
            raise ValueError(f"district {district.name}: no flyable {agent.label} mission around "
                             f"{CANDIDATE_CENTRES} candidate centres (towers in the way): change the preset")
        out.append((name, agent, spec))
    return out


def candidate_centres(scene, district: District, seed: int) -> list[tuple[float, float]]:
    """Mission centres to try, in order: the district centre, then seeded points in its middle half."""
    first = (0.0, 0.0) if district.source == "procedural" else _centre(scene)
    lo, hi = scene.bounds[0, :2], scene.bounds[1, :2]
    mid, half = (lo + hi) / 2, (hi - lo) / 4
    pts = np.random.default_rng(seed).uniform(mid - half, mid + half, size=(CANDIDATE_CENTRES - 1, 2))
    return [first] + [(round(float(x), 3), round(float(y), 3)) for x, y in pts]


def _spec(bench, name, agent, seed, centre, district, scene, preset):
    """The MissionSpec of one agent around ``centre`` (waypoint missions write their WPL file)."""
    from vlwm.sim.mission_spec import MissionSpec
    from vlwm.sim.missions import patrol_mission
    from vlwm.sim.qgc_wpl import write_qgc_wpl

    if agent.pattern == "survey":
        spec = MissionSpec("drone", "survey", size=preset.survey_size, spacing=SURVEY_SPACING_M,
                           altitude=agent.altitude, center=centre, seed=seed)
    elif agent.pattern == "orbit":
        spec = MissionSpec("drone", "orbit", radius=preset.orbit_radius, altitude=agent.altitude,
                           center=None if district.orbit_target else centre, target=district.orbit_target or None,
                           laps=2.0, seed=seed)
    elif agent.pattern == "waypoints":
        mission = patrol_mission(scene, "drone", preset.waypoint_goals, seed, altitude=agent.altitude,
                                 home_xy=centre, name=name)
        wpl = write_qgc_wpl(mission, bench / MISSIONS_DIR / f"{name}.waypoints", scene.geo)
        spec = MissionSpec("drone", "waypoints", waypoints_file=str(wpl), seed=seed)
    elif agent.pattern == "route":
        spec = MissionSpec("rover", "route", seed=seed)
    elif agent.pattern == "patrol":
        spec = MissionSpec("rover", "patrol", goals=preset.patrol_goals, seed=seed)
    else:
        raise ValueError(f"preset {preset.name}: unknown agent pattern {agent.pattern!r}")
    return spec


def build_benchmark(preset: Preset, out: Path, plateau_dir: Path | None = None, workers: int = 2,
                    log=print) -> dict[str, Any]:
    """Build ``preset`` into the empty (or new) folder ``out``; returns ``benchmark.json``'s content.

    Raises ``FileExistsError`` for a non-empty ``out`` and ``FileNotFoundError`` for missing PLATEAU tiles.
    """
    from vlwm.gt.frame_gt import GTConfig
    from vlwm.gt.grid import GridSpec
    from vlwm.gt.recording import generate
    from vlwm.sim.jobs import run_jobs
    from vlwm.sim.simulator import SimConfig
    from vlwm.sim.traffic import TrafficConfig

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: build into a new folder (a benchmark is never updated in place)")
    plateau_dir = Path(plateau_dir) if plateau_dir is not None else default_plateau_dir()
    if preset.needs_plateau:
        check_plateau(preset, plateau_dir)
    out.mkdir(parents=True, exist_ok=True)
    grid = GridSpec(preset.point_cloud_range, preset.voxel_size)
    epoch = datetime.datetime.fromisoformat(RECORDING_EPOCH)
    timings: dict[str, float] = {"world": 0.0, "simulate": 0.0, "ground truth": 0.0}
    districts, sequences = [], []
    for district in preset.districts:
        t0 = time.perf_counter()
        scene = build_scene(district, plateau_dir)
        scene_path = scene.save(out / SCENES_DIR / f"{district.name}.npz")
        info = scene.info()
        districts.append({"name": district.name, "split": district.split, "source": district.source,
                          "buildings": info["buildings"], "triangles": info["triangles"],
                          "road_nodes": info["road_graph"]["nodes"], "scene": f"{SCENES_DIR}/{scene_path.name}",
                          **({"gml": district.gml} if district.gml else
                             {"seed": district.seed, "size_m": district.size, "style": district.style})})
        specs = mission_specs(out, district, scene, preset)
        timings["world"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        traffic = TrafficConfig(seed=district.seed, cars=preset.traffic_cars, **preset.traffic_speeds) \
            if district.source == "procedural" \
            else TrafficConfig(seed=district.seed, **PLATEAU_TRAFFIC)
        root = split_root(out, district.split)
        for seconds in sorted({recorded_seconds(preset, a) for _, a, _ in specs}):     # one run per length
            batch = [(n, s) for n, a, s in specs if recorded_seconds(preset, a) == seconds]
            sim = SimConfig(frame_rate_hz=preset.frame_rate_hz, duration_s=seconds, seed=district.seed,
                            record_cameras=False, record_lidar=True, traffic=traffic)
            run_jobs(scene_path, [s for _, s in batch], root, sim, workers=workers, progress=False,
                     names=[n for n, _ in batch], start=epoch)
        paths = [root / n for n, _, _ in specs]
        timings["simulate"] += time.perf_counter() - t0
        log(f"  {district.name} ({district.split}): {info['buildings']} buildings, {len(paths)} recordings")

        t0 = time.perf_counter()
        reports = generate([str(p) for p in paths], grid="config", config=GTConfig(grid=grid, camera_mask=False),
                           workers=workers)
        for r in reports:
            if r.error is not None or r.failed:
                raise RuntimeError(f"ground truth failed: {r.summary()}")
        for (name, agent, spec), path in zip(specs, paths):
            if not preset.keep_lidar:
                shutil.rmtree(path / "lidar", ignore_errors=True)
            for empty in ("images", "lidar"):
                if (path / empty).is_dir() and not any((path / empty).iterdir()):
                    (path / empty).rmdir()
            sequences.append({"name": name, "district": district.name, "split": district.split,
                              "agent": agent.vehicle, "pattern": agent.pattern,
                              "altitude_m": agent.altitude if agent.vehicle == "drone" else None,
                              "band": altitude_band(agent.altitude) if agent.vehicle == "drone" else None,
                              "seed": spec.seed})
        timings["ground truth"] += time.perf_counter() - t0

    bench_info = {"benchmark": BENCHMARK_ID, "preset": preset.name,
                  "grid": {"point_cloud_range": list(grid.point_cloud_range), "voxel_size": list(grid.voxel_size),
                           "shape": list(grid.shape)},
                  "history_frames": preset.history_frames, "future_frames": preset.future_frames,
                  "frame_rate_hz": preset.frame_rate_hz, "eval_window_stride": preset.eval_window_stride,
                  "districts": districts, "sequences": sequences}
    write_json(out / INFO_FILE, bench_info)
    (out / ATTRIBUTION_FILE).write_text(attribution(preset))
    windows = build_window_index(out, bench_info)
    write_json(out / WINDOWS_FILE, {"benchmark": BENCHMARK_ID, "split": "test", "windows": windows})
    params = {"survey_spacing_m": SURVEY_SPACING_M, "residential": RESIDENTIAL, "plateau_traffic": PLATEAU_TRAFFIC,
              "recording_epoch": RECORDING_EPOCH, "gt": {"source": "scene", "camera_mask": False},
              "seeds": "agent k of a district with seed s: 1000 * s + k; traffic: s"}
    write_manifest(out, BENCHMARK_ID, preset.to_dict(), params)
    log("  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"; {len(windows)} test windows")
    return bench_info


def attribution(preset: Preset) -> str:
    """``ATTRIBUTION.md``: the licence notice of the real data in a build."""
    tiles = [d for d in preset.districts if d.source == "plateau"]
    lines = [f"# {BENCHMARK_ID} ({preset.name}): data sources", "",
             "Procedural districts: generated by vlwm (`vlwm.world.procedural`), no third-party data.", ""]
    if tiles:
        lines += ["Real PLATEAU CityGML tiles: " + ", ".join(f"`{d.gml}` ({d.split})" for d in tiles) + ".", "",
                  PLATEAU_ATTRIBUTION, ""]
    return "\n".join(lines)

