"""The semantic triangle scene every later stage ray-casts and voxelises.

A :class:`Scene` is one triangle soup in the local ENU frame (x east, y north, z up, metres)
with, per triangle, a city semantic class (:class:`vlwm.labels.CityClass`) and an instance id,
plus the terrain height field, the road graph, the geo-origin and the label map that turns city
semantics into occupancy labels.  It is cached as one ``.npz`` file (no pickles) that loads in a
fraction of a second.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numba
import numpy as np

from vlwm.io.atomic import atomic_write
from vlwm.labels import DEFAULT_LABEL_MAP, CityClass, LabelMap
from vlwm.world.geo import GeoOrigin
from vlwm.world.raycast import Tracer, make_tracer, normalize_directions
from vlwm.world.roads import RoadGraph
from vlwm.world.terrain import Terrain

SCENE_FORMAT_VERSION = 1
NO_INSTANCE = -1  #: instance id of triangles that belong to no object (ground, roads)


class RayHits(NamedTuple):
    """Result of :meth:`Scene.cast`, one entry per ray.

    distance : (n,) float32, metres along the ray; ``inf`` where nothing was hit within range.
    triangle : (n,) int64, hit triangle index; -1 for no hit.
    cls : (n,) uint8, occupancy label of the hit triangle; the free label for no hit.
    instance : (n,) int32, instance id of the hit triangle; -1 for no hit or no instance.
    normal : (n, 3) float32, unit geometric normal of the hit triangle, turned to face the ray
        origin (``dot(normal, direction) <= 0``); zeros for no hit.
    semantic : (n,) uint8, :class:`CityClass` of the hit triangle; UNKNOWN for no hit.
    """

    distance: np.ndarray
    triangle: np.ndarray
    cls: np.ndarray
    instance: np.ndarray
    normal: np.ndarray
    semantic: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """(n,) bool, True where the ray hit something."""
        return self.triangle >= 0


#: Anything that answers nearest-hit queries like :meth:`Scene.cast`:
#: ``cast(origins (n, 3), directions (n, 3) unit, max_range float | (n,)) -> RayHits`` in the world
#: frame — a scene, or a dynamic world that adds moving traffic (:mod:`vlwm.sim.dynamic_world`).
Caster = Callable[[np.ndarray, np.ndarray, "float | np.ndarray"], RayHits]


@dataclass
class Scene:
    """A semantic triangle scene.

    Attributes
    ----------
    vertices : (V, 3) float32
        Local ENU positions, metres.
    faces : (F, 3) int32
        Vertex indices, counter-clockwise seen from outside where the source says so.
    semantics : (F,) uint8
        :class:`CityClass` of each triangle.
    instances : (F,) int32
        Instance id of each triangle (index into ``instance_names``), -1 for none.
    instance_names : (I,) str
        Stable name of each instance (``gml:id`` for PLATEAU, ``bldg_000123`` for procedural).
    instance_semantics : (I,) uint8
        :class:`CityClass` of each instance.
    terrain : Terrain
        Ground height field.
    roads : RoadGraph
        Road network (empty when the source has none).
    geo : GeoOrigin
        Where the local frame sits on the Earth.
    label_map : LabelMap
        City semantics -> occupancy labels (Occ3D-nuScenes by default).
    meta : dict
        JSON-serialisable provenance: generator or source files, seed, import statistics.
    """

    vertices: np.ndarray
    faces: np.ndarray
    semantics: np.ndarray
    instances: np.ndarray
    instance_names: np.ndarray
    instance_semantics: np.ndarray
    terrain: Terrain
    geo: GeoOrigin
    roads: RoadGraph = field(default_factory=RoadGraph)
    label_map: LabelMap = DEFAULT_LABEL_MAP
    meta: dict = field(default_factory=dict)
    _tracers: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _normals: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _tables: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        self.semantics = np.asarray(self.semantics, dtype=np.uint8)
        self.instances = np.asarray(self.instances, dtype=np.int32)
        self.instance_names = np.asarray(self.instance_names, dtype=str).reshape(-1)
        self.instance_semantics = np.asarray(self.instance_semantics, dtype=np.uint8).reshape(-1)
        f = len(self.faces)
        if self.semantics.shape != (f,) or self.instances.shape != (f,):
            raise ValueError(f"semantics {self.semantics.shape} and instances {self.instances.shape} "
                             f"must have one entry per face ({f})")
        if f and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces reference vertices that do not exist")
        if self.semantics.size and self.semantics.max() >= len(CityClass):
            raise ValueError(f"semantic id {int(self.semantics.max())} is not a CityClass")
        if len(self.instance_names) != len(self.instance_semantics):
            raise ValueError("instance_names and instance_semantics differ in length")
        if self.instances.size and self.instances.max() >= len(self.instance_names):
            raise ValueError("instances reference ids beyond instance_names")

    # ------------------------------------------------------------------ derived quantities

    @property
    def classes(self) -> np.ndarray:
        """(F,) uint8 occupancy label of each triangle (through ``label_map``)."""
        return self.label_map(self.semantics)

    @property
    def num_triangles(self) -> int:
        return len(self.faces)

    @property
    def num_buildings(self) -> int:
        return int(np.count_nonzero(self.instance_semantics == CityClass.BUILDING))

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) float64 min and max corner of the geometry, metres."""
        if not len(self.faces):
            return np.zeros((2, 3))
        used = self.vertices[np.unique(self.faces)]
        return np.stack([used.min(0), used.max(0)]).astype(np.float64)

    @property
    def face_normals(self) -> np.ndarray:
        """(F, 3) float32 unit normals, right-handed from the vertex order (zero for degenerate faces)."""
        if self._normals is None:
            tri = self.vertices[self.faces].astype(np.float64)
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            norm = np.linalg.norm(n, axis=1, keepdims=True)
            self._normals = np.where(norm > 0, n / np.where(norm > 0, norm, 1), 0).astype(np.float32)
        return self._normals

    def ground_height(self, x, y) -> np.ndarray:
        """Terrain height (m, local z) under local ``x``, ``y`` (any broadcastable shape)."""
        return self.terrain.height(x, y)

    # ------------------------------------------------------------------ ray casting

    def tracer(self, backend: str = "embree") -> Tracer:
        """The (cached) tracer of this scene's geometry for ``backend`` ('embree' or 'numpy')."""
        if backend not in self._tracers:
            self._tracers[backend] = make_tracer(self.vertices, self.faces, backend)
        return self._tracers[backend]

    def cast(self, origins: np.ndarray, directions: np.ndarray, max_range: float | np.ndarray = np.inf,
             backend: str = "embree") -> RayHits:
        """Nearest hit of each ray.

        Parameters
        ----------
        origins : (n, 3) float
            Ray origins, local ENU metres.
        directions : (n, 3) float
            Ray directions (normalised here; zero vectors are an error).
        max_range : float or (n,) float
            Hits farther than this many metres count as misses.
        backend : {'embree', 'numpy'}
            Embree (fast) or the brute-force numpy reference (tests, tiny scenes).
        """
        o = np.ascontiguousarray(origins, dtype=np.float32).reshape(-1, 3)
        d = normalize_directions(np.asarray(directions).reshape(-1, 3))
        if len(o) != len(d):
            raise ValueError(f"{len(o)} origins but {len(d)} directions")
        distance, tri = self.tracer(backend).intersect(o, d, max_range)
        return self.describe_hits(distance, tri, d)

    def describe_hits(self, distance: np.ndarray, triangle: np.ndarray, directions: np.ndarray) -> RayHits:
        """Attach class, instance and normal to raw ``(distance, triangle)`` hits of unit ``directions``."""
        tables = self._hit_tables()
        triangle = np.ascontiguousarray(triangle, dtype=np.int64)
        directions = np.ascontiguousarray(directions, dtype=np.float32)
        sem, cls, inst, normal = _gather_hits(triangle, directions, *tables)
        return RayHits(distance.astype(np.float32, copy=False), triangle, cls, inst, normal, sem)

    def _hit_tables(self):
        """Per-triangle semantic, label, instance and normal, each with a 'no hit' row appended."""
        key = id(self.label_map)
        if self._tables is None or self._tables[0] != key:
            sem = np.r_[self.semantics, np.uint8(CityClass.UNKNOWN)].astype(np.uint8)
            cls = self.label_map.table[sem].astype(np.uint8)
            cls[-1] = self.label_map.free
            inst = np.r_[self.instances, NO_INSTANCE].astype(np.int32)
            normal = np.concatenate([self.face_normals, np.zeros((1, 3), np.float32)])
            self._tables = (key, (sem, cls, inst, normal))
        return self._tables[1]

    # ------------------------------------------------------------------ summary

    def info(self) -> dict:
        """Building count, bounds, height range, triangle count and class histograms (JSON-ready)."""
        b = self.bounds
        bldg = self.semantics == CityClass.BUILDING
        heights = self.vertices[self.faces[bldg]].reshape(-1, 3)[:, 2] if bldg.any() else np.zeros(0)
        tri_area = self.triangle_areas()
        city_hist = {c.name.lower(): int(np.count_nonzero(self.semantics == c)) for c in CityClass}
        classes = self.classes
        label_hist = {name: int(np.count_nonzero(classes == i)) for i, name in enumerate(self.label_map.names)}
        return {
            "source": self.meta.get("source", "unknown"),
            "buildings": self.num_buildings,
            "instances": int(len(self.instance_names)),
            "triangles": self.num_triangles,
            "vertices": int(len(self.vertices)),
            "bounds_min": b[0].round(3).tolist(),
            "bounds_max": b[1].round(3).tolist(),
            "building_height_range": [round(float(heights.min()), 3), round(float(heights.max()), 3)]
            if heights.size else None,
            "surface_area_m2": round(float(tri_area.sum()), 1),
            "triangles_per_city_class": {k: v for k, v in city_hist.items() if v},
            "triangles_per_label": {k: v for k, v in label_hist.items() if v},
            "road_graph": {"nodes": self.roads.num_nodes, "edges": self.roads.num_edges},
            "geo_origin": self.geo.to_dict(),
        }

    def triangle_areas(self) -> np.ndarray:
        """(F,) float64 triangle areas, m²."""
        tri = self.vertices[self.faces].astype(np.float64)
        return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write the scene to one ``.npz`` file, atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": "vlwm-scene",
            "version": SCENE_FORMAT_VERSION,
            "geo": self.geo.to_dict(),
            "label_names": list(self.label_map.names),
            "meta": self.meta,
        }
        arrays = {
            "header": np.array(json.dumps(header)),
            "vertices": self.vertices,
            "faces": self.faces,
            "semantics": self.semantics,
            "instances": self.instances,
            "instance_names": self.instance_names,
            "instance_semantics": self.instance_semantics,
            "label_table": self.label_map.table,
            "terrain_heights": self.terrain.heights,
            "terrain_grid": np.array([self.terrain.x0, self.terrain.y0, self.terrain.resolution]),
            **self.roads.to_arrays(),
        }
        return atomic_write(path, lambda fh: _write_npz(fh, arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Scene":
        """Read a scene written by :meth:`save`; a wrong or damaged file is an error naming it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such scene file (build one with `vlwm city ... --out {path}`)") from None
        except Exception as exc:
            raise ValueError(f"{path}: not a readable scene file ({exc})") from exc
        try:
            header = json.loads(str(arrays["header"]))
            if header.get("format") != "vlwm-scene":
                raise ValueError("missing vlwm-scene header")
            if header["version"] > SCENE_FORMAT_VERSION:
                raise ValueError(f"format version {header['version']} is newer than this vlwm reads "
                                 f"({SCENE_FORMAT_VERSION})")
            x0, y0, res = arrays["terrain_grid"].tolist()
            return cls(
                vertices=arrays["vertices"],
                faces=arrays["faces"],
                semantics=arrays["semantics"],
                instances=arrays["instances"],
                instance_names=arrays["instance_names"],
                instance_semantics=arrays["instance_semantics"],
                terrain=Terrain(x0, y0, res, arrays["terrain_heights"]),
                geo=GeoOrigin.from_dict(header["geo"]),
                roads=RoadGraph.from_arrays(arrays),
                label_map=LabelMap(names=tuple(header["label_names"]), table=arrays["label_table"]),
                meta=header.get("meta", {}),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid vlwm scene ({exc})") from exc

    def with_label_map(self, label_map: LabelMap) -> "Scene":
        """The same geometry under another label map."""
        return Scene(self.vertices, self.faces, self.semantics, self.instances, self.instance_names,
                     self.instance_semantics, self.terrain, self.geo, self.roads, label_map, dict(self.meta))


@numba.njit(cache=True, nogil=True)
def _gather_hits(triangle, directions, sem_t, cls_t, inst_t, normal_t):  # pragma: no cover - compiled
    """One pass over the rays: per-hit tables (with a trailing 'no hit' row) -> per-ray attributes,
    normals turned to face the ray origin."""
    n = triangle.shape[0]
    miss = sem_t.shape[0] - 1
    sem = np.empty(n, np.uint8)
    cls = np.empty(n, np.uint8)
    inst = np.empty(n, np.int32)
    normal = np.empty((n, 3), np.float32)
    for i in range(n):
        t = triangle[i]
        if t < 0:
            t = miss
        sem[i] = sem_t[t]
        cls[i] = cls_t[t]
        inst[i] = inst_t[t]
        nx, ny, nz = normal_t[t, 0], normal_t[t, 1], normal_t[t, 2]
        if nx * directions[i, 0] + ny * directions[i, 1] + nz * directions[i, 2] > 0:
            nx, ny, nz = -nx, -ny, -nz
        normal[i, 0] = nx
        normal[i, 1] = ny
        normal[i, 2] = nz
    return sem, cls, inst, normal


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` with fixed member timestamps, so equal scenes give byte-identical files."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def merge_scenes(scenes: Sequence[Scene], terrain: Terrain | None = None, meta: dict | None = None) -> Scene:
    """Concatenate scenes that share one geo-origin into one (instance ids renumbered).

    The first scene's terrain, geo-origin and label map are kept unless ``terrain`` is given;
    road graphs are concatenated.
    """
    if not scenes:
        raise ValueError("nothing to merge")
    geo = scenes[0].geo
    for s in scenes[1:]:
        if s.geo != geo:
            raise ValueError(f"cannot merge scenes with different geo-origins: {geo} vs {s.geo}")
    v_off = np.cumsum([0] + [len(s.vertices) for s in scenes])[:-1]
    i_off = np.cumsum([0] + [len(s.instance_names) for s in scenes])[:-1]
    n_off = np.cumsum([0] + [s.roads.num_nodes for s in scenes])[:-1]
    instances = [np.where(s.instances >= 0, s.instances + o, NO_INSTANCE) for s, o in zip(scenes, i_off)]
    roads = RoadGraph(
        nodes=np.concatenate([s.roads.nodes for s in scenes]),
        edges=np.concatenate([s.roads.edges + o for s, o in zip(scenes, n_off)]),
        width=np.concatenate([s.roads.width for s in scenes]),
        lanes=np.concatenate([s.roads.lanes for s in scenes]),
        sidewalk=np.concatenate([s.roads.sidewalk for s in scenes]),
    )
    return Scene(
        vertices=np.concatenate([s.vertices for s in scenes]),
        faces=np.concatenate([s.faces + o for s, o in zip(scenes, v_off)]),
        semantics=np.concatenate([s.semantics for s in scenes]),
        instances=np.concatenate(instances),
        instance_names=np.concatenate([s.instance_names for s in scenes]),
        instance_semantics=np.concatenate([s.instance_semantics for s in scenes]),
        terrain=terrain if terrain is not None else scenes[0].terrain,
        geo=geo,
        roads=roads,
        label_map=scenes[0].label_map,
        meta=meta if meta is not None else {"source": "merged", "parts": [s.meta for s in scenes]},
    )
