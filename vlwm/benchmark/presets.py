"""What ``vlwm-tokyo-v1`` is made of: districts, agents, grid and windows of each preset.

A preset is plain data (frozen dataclasses with literal values, no registry): the build
(:mod:`vlwm.benchmark.build`) turns it into scenes, recordings and ground truth, and the manifest
records it verbatim, so a preset and the software version fix every byte of a build.

* **Districts** — procedural cities (different seeds, sizes and styles: a dense centre with
  towers, a residential ward of houses) and real PLATEAU CityGML tiles.  Every district belongs
  to exactly one split (held out by district): no test district or tile is seen in training or
  validation.
* **Agents** — per district, drone missions (survey, orbit, waypoints at about 30, 60 and 120 m)
  and rover missions (road routes and patrols) among traffic with instance ids.  PLATEAU tiles have
  no road graph: only drones fly there, among drone traffic.
* **Windows** — 4 history + 6 future frames at 2 Hz (OccWorld's protocol: 1 s / 2 s / 3 s are
  future steps 1, 3, 5), on one grid per preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BENCHMARK_NAME = "vlwm-tokyo"
BENCHMARK_VERSION = "v1"
#: Full benchmark id, written into every manifest and results file.
BENCHMARK_ID = f"{BENCHMARK_NAME}-{BENCHMARK_VERSION}"
#: ``created`` time of every recording's ``sequence.json``: fixed, so builds are byte-identical.
RECORDING_EPOCH = "2025-01-01T00:00:00"
#: Frame rate of every recording and window (Hz), OccWorld's keyframe rate.
FRAME_RATE_HZ = 2.0
HISTORY_FRAMES = 4
FUTURE_FRAMES = 6
#: A drone's test windows start once it is this close to its mission altitude (fraction): the
#: takeoff (a vertical climb at 2 m/s, a minute for 120 m) is recorded and trained on, not scored.
CRUISE_FRACTION = 0.9
#: Drone altitude bands of the per-band breakdown: name -> [low, high) mission altitude (m).
ALTITUDE_BANDS: dict[str, tuple[float, float]] = {"low": (0.0, 45.0), "mid": (45.0, 90.0), "high": (90.0, 1e9)}
#: Where the build looks for the PLATEAU tiles, relative to the repository root.
PLATEAU_DIR_IN_REPO = "../shared/data/plateau"
PLATEAU_ATTRIBUTION = ("3D city model data provided by Ministry of Land, Infrastructure, Transport and Tourism "
                       "(MLIT), Japan - Project PLATEAU. Licensed under CC BY 4.0. The copies used come from the "
                       "test resources of the public repository yuuhayashi/citygml-osm (MIT licence).")
SPLIT_NAMES = ("train", "val", "test")
#: Traffic speed ranges (m/s) of the benchmark: the generator's, but with slow walkers and buses
#: pulling in and out of stops.  With every actor faster than half its length per second, no
#: object overlaps itself 1 s later, so even the true-ego-motion oracle, which leaves the world
#: where it was, would score VPQ 0 at 1 s whatever the voxel size.
SLOW_TRAFFIC = {"pedestrian_speed": (0.3, 1.5), "bus_speed": (2.0, 9.0)}


def altitude_band(altitude_m: float) -> str:
    """Band name of a drone mission altitude (m above home ground), :data:`ALTITUDE_BANDS`."""
    for name, (lo, hi) in ALTITUDE_BANDS.items():
        if lo <= altitude_m < hi:
            return name
    raise ValueError(f"altitude {altitude_m} m is in no band of {ALTITUDE_BANDS}")


@dataclass(frozen=True)
class District:
    """One district (one scene) and the split it belongs to."""

    name: str
    """Short id, used in sequence folder names (``[a-z0-9-]``)."""
    split: str
    """``'train'``, ``'val'`` or ``'test'``."""
    source: str
    """``'procedural'`` or ``'plateau'``."""
    seed: int = 0
    """Procedural: city seed; also the base seed of the district's missions and traffic."""
    size: float = 500.0
    """Procedural: city side (m)."""
    style: str = "centre"
    """Procedural: ``'centre'`` (towers and mid-rises, the generator's defaults) or ``'residential'``
    (houses, a few mid-rises, no towers)."""
    gml: str = ""
    """PLATEAU: file name in the PLATEAU folder."""
    orbit_target: str = ""
    """PLATEAU: building (gml:id) the orbit mission circles; empty = the tile's centre."""

    def __post_init__(self):
        if self.split not in SPLIT_NAMES:
            raise ValueError(f"District {self.name}: split must be one of {SPLIT_NAMES}, got {self.split!r}")
        if self.source not in ("procedural", "plateau"):
            raise ValueError(f"District {self.name}: source must be 'procedural' or 'plateau', got {self.source!r}")
        if self.source == "plateau" and not self.gml:
            raise ValueError(f"District {self.name}: a PLATEAU district needs its gml file name")
        if self.style not in ("centre", "residential"):
            raise ValueError(f"District {self.name}: style must be 'centre' or 'residential', got {self.style!r}")


@dataclass(frozen=True)
class Agent:
    """One mission flown or driven in every district that can host it."""

    vehicle: str
    """``'drone'`` or ``'rover'``."""
    pattern: str
    """Drones: ``'survey'``, ``'orbit'``, ``'waypoints'`` (a QGC WPL file of seeded waypoints);
    rovers: ``'route'``, ``'patrol'``."""
    altitude: float = 0.0
    """Drones: flight height above home ground (m)."""

    @property
    def label(self) -> str:
        """Folder-name part: ``drone-survey-030m`` / ``rover-route``."""
        return f"{self.vehicle}-{self.pattern}" + (f"-{int(self.altitude):03d}m" if self.vehicle == "drone" else "")


@dataclass(frozen=True)
class Preset:
    """Everything a build depends on (with the software version)."""

    name: str
    """``'tiny'``, ``'small'`` or ``'full'``."""
    point_cloud_range: tuple[float, ...]
    """Grid extent [x0, y0, z0, x1, y1, z1] (m, grid frame)."""
    voxel_size: tuple[float, ...]
    """Voxel edges [dx, dy, dz] (m)."""
    districts: tuple[District, ...]
    """Every district, each in one split."""
    agents: tuple[Agent, ...]
    """Missions per district (rovers only where the scene has roads)."""
    duration_s: float
    """Seconds recorded per mission at mission altitude (drones record their takeoff on top)."""
    survey_size: float = 120.0
    """Drone survey square side (m)."""
    orbit_radius: float = 60.0
    """Drone orbit radius (m)."""
    waypoint_goals: int = 4
    """Drone waypoint missions: seeded waypoints."""
    patrol_goals: int = 4
    """Rover patrols: road goals."""
    eval_window_stride: int = 2
    """Test windows start every this many frames (1 s at 2 Hz)."""
    keep_lidar: bool = False
    """Keep the lidar sweeps (GT inputs, 3.5 MB a frame) in the benchmark; off, they are deleted after GT."""
    traffic_cars: int = 20
    """Cars per procedural district (plus the generator's buses, trucks, pedestrians, drones)."""
    traffic_speeds: dict = field(default_factory=lambda: dict(SLOW_TRAFFIC))
    """Speed ranges (m/s) overriding :class:`~vlwm.sim.traffic.TrafficConfig`'s in procedural districts."""
    needs_plateau: bool = True
    """Whether the build requires the PLATEAU tiles."""
    history_frames: int = HISTORY_FRAMES
    future_frames: int = FUTURE_FRAMES
    frame_rate_hz: float = FRAME_RATE_HZ
    extra: dict = field(default_factory=dict)
    """Free-form notes recorded in the manifest (never read by the build)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def districts_of(self, split: str) -> list[District]:
        return [d for d in self.districts if d.split == split]


_DRONES = (Agent("drone", "survey", 30.0), Agent("drone", "orbit", 60.0), Agent("drone", "waypoints", 120.0))
_ROVERS = (Agent("rover", "route"), Agent("rover", "patrol"))

_PLATEAU = (
    District("plateau-53395404", "train", "plateau", seed=41, gml="53395404_bldg_6697_op.gml"),
    District("plateau-53375768", "val", "plateau", seed=42, gml="53375768_bldg_6697_op.gml"),
    District("plateau-chiyoda", "test", "plateau", seed=43, gml="13101_chiyoda_bldg_lod2_single.gml",
             orbit_target="BLD_6388028d-f1d9-4c57-a4e7-a73acd0d7290"),
)

_PROCEDURAL = (
    District("proc-centre-11", "train", "procedural", seed=11, size=600.0, style="centre"),
    District("proc-resid-12", "train", "procedural", seed=12, size=500.0, style="residential"),
    District("proc-centre-13", "train", "procedural", seed=13, size=500.0, style="centre"),
    District("proc-resid-21", "val", "procedural", seed=21, size=500.0, style="residential"),
    District("proc-centre-31", "test", "procedural", seed=31, size=600.0, style="centre"),
    District("proc-resid-32", "test", "procedural", seed=32, size=500.0, style="residential"),
)

TINY = Preset(
    name="tiny",
    point_cloud_range=(-8.0, -8.0, -2.0, 8.0, 8.0, 14.0), voxel_size=(0.5, 0.5, 1.0),
    districts=(District("proc-centre-1", "train", "procedural", seed=1, size=300.0, style="centre"),
               District("proc-resid-2", "val", "procedural", seed=2, size=300.0, style="residential"),
               District("proc-centre-3", "test", "procedural", seed=3, size=300.0, style="centre")),
    agents=(Agent("drone", "survey", 12.0), Agent("rover", "route")),
    duration_s=6.0, survey_size=60.0, eval_window_stride=2, traffic_cars=12, needs_plateau=False,
    extra={"purpose": "CI tests only: three small districts, one drone (12 m: a short takeoff) and one rover each"},
)

SMALL = Preset(
    name="small",
    point_cloud_range=(-16.0, -16.0, -2.0, 16.0, 16.0, 30.0), voxel_size=(0.5, 0.5, 1.0),
    districts=_PROCEDURAL + _PLATEAU, agents=_DRONES + _ROVERS, duration_s=40.0,
    extra={"purpose": "2 CPU cores, <= 10 min; 0.5 m voxels so that cars survive voxelisation"},
)

FULL = Preset(
    name="full",
    point_cloud_range=(-40.0, -40.0, -2.0, 40.0, 40.0, 149.25), voxel_size=(0.4, 0.4, 1.25),
    districts=_PROCEDURAL + _PLATEAU, agents=_DRONES + _ROVERS, duration_s=120.0, survey_size=200.0,
    orbit_radius=80.0, waypoint_goals=6, patrol_goals=6, eval_window_stride=1, keep_lidar=False,
    extra={"purpose": "GPU / cluster users: the aerial grid 200 x 200 x 121"},
)

PRESETS: dict[str, Preset] = {p.name: p for p in (TINY, SMALL, FULL)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown benchmark preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]
