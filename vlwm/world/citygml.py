"""PLATEAU CityGML 2.0 (i-UR) import: buildings, roads, vegetation and relief into one :class:`Scene`.

What :func:`load_plateau` does with a list of files:

1. **Header pass** over each file (it stops at the first city object): the root must be a
   CityGML 2.0 ``core:CityModel``; its ``gml:Envelope`` gives the CRS (``srsName``; only
   EPSG:6697 — JGD2011 latitude, longitude, orthometric height — is read) and the bounds.  The
   union of all envelopes picks the plane-rectangular zone and the local origin, one for all files.
2. **Streaming pass** (``lxml.etree.iterparse`` on the end of each ``core:cityObjectMember``,
   cleared once read, so a tile never sits whole in memory): the polygons of each city object are
   read, projected with one pyproj call per object, and ear-cut on their own plane, holes included.
   A degenerate polygon is skipped and counted; an object left without triangles is skipped,
   counted and logged, never fatal for the tile.
3. **Ground**: the relief (``dem:TINRelief``) rasterised by vertical rays, or else a height field
   interpolated from building bases (and road surfaces) and added as TERRAIN triangles.  The
   origin height is the median building ground, so the local ground lies near z = 0 even where it
   is 670-690 m above the datum (Nagano).

Memory: one city object at a time — except a relief, whose TIN is one object (one
``dem:ReliefFeature``) and so is held whole while it is read.

Frames: sources are geographic (lat, lon degrees; h metres above TP); after step 2 everything is
local ENU = projected CRS minus the origin (x east, y north, z up, metres; see
``docs/conventions.md``).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from lxml import etree

from vlwm.labels import CityClass
from vlwm.world.builder import SceneBuilder, add_prism
from vlwm.world.geo import (EPSG_JGD2011_GEOGRAPHIC, GeoOrigin, geographic_to_projected,
                            plane_rectangular_zone)
from vlwm.world.scene import NO_INSTANCE, Scene
from vlwm.world.terrain import Terrain
from vlwm.world.triangulate import DegeneratePolygon, triangulate_3d

logger = logging.getLogger(__name__)

#: Namespaces as PLATEAU writes them (CityGML 2.0 on GML 3.1.1).
CORE = "http://www.opengis.net/citygml/2.0"
GML = "http://www.opengis.net/gml"
BLDG = "http://www.opengis.net/citygml/building/2.0"
TRAN = "http://www.opengis.net/citygml/transportation/2.0"
VEG = "http://www.opengis.net/citygml/vegetation/2.0"
DEM = "http://www.opengis.net/citygml/relief/2.0"
APP = "http://www.opengis.net/citygml/appearance/2.0"
XLINK = "http://www.w3.org/1999/xlink"
NS = {"core": CORE, "gml": GML, "bldg": BLDG, "tran": TRAN, "veg": VEG, "dem": DEM}

#: Source CRSs the importer reads (posList order latitude, longitude, height).
SUPPORTED_SOURCE_EPSG = (EPSG_JGD2011_GEOGRAPHIC,)
#: CityGML levels of detail.
CITYGML_LODS = (0, 1, 2, 3, 4)
#: Vertices within this many metres of a building's lowest point sample the ground under it.
BUILDING_BASE_TOLERANCE = 0.5
#: Vertical rays that rasterise the relief start this many metres above its highest vertex.
DEM_RAY_HEADROOM = 10.0
#: Hole-free polygons of up to this many vertices are checked for convexity and fan-triangulated in bulk.
MAX_FAN_VERTICES = 32
#: Relative tolerance of that convexity test (sine of the turn at a vertex; total turning vs 2π).
CONVEX_TOLERANCE = 1e-9
#: Fan triangles at most this large (m²) — collinear vertices — are dropped.
MIN_FAN_TRIANGLE_AREA = 1e-12

#: PLATEAU codes (``TrafficArea_function.xml``, ``AuxiliaryTrafficArea_function.xml``, i-UR 3.x)
#: of traffic-area ``tran:function``/``tran:usage``: carriageway, lane, junction, sidewalk, traffic
#: island, planting strip.
TRAFFIC_AREA_CODES: dict[str, CityClass] = {
    "1000": CityClass.ROAD, "1010": CityClass.ROAD, "1020": CityClass.ROAD,
    "2000": CityClass.SIDEWALK, "3000": CityClass.SIDEWALK, "5000": CityClass.GRASS,
}
#: Words in textual function/usage values (checked in order, case-insensitive).
TRAFFIC_AREA_KEYWORDS: tuple[tuple[str, CityClass], ...] = (
    ("横断歩道", CityClass.CROSSWALK), ("crosswalk", CityClass.CROSSWALK),
    ("歩道", CityClass.SIDEWALK), ("sidewalk", CityClass.SIDEWALK), ("footpath", CityClass.SIDEWALK),
    ("footway", CityClass.SIDEWALK), ("pedestrian", CityClass.SIDEWALK),
    ("駐車", CityClass.PARKING), ("parking", CityClass.PARKING),
    ("車道", CityClass.ROAD), ("driving", CityClass.ROAD), ("carriageway", CityClass.ROAD),
)
#: Class of a transportation object's surfaces when no function/usage says otherwise.  PLATEAU's
#: ``tran:Track`` is a footpath (徒歩道) and ``tran:Square`` a plaza.
TRANSPORT_DEFAULT_CLASS: dict[str, CityClass] = {
    "Road": CityClass.ROAD, "Track": CityClass.SIDEWALK, "Square": CityClass.SIDEWALK,
    "Railway": CityClass.RAILWAY,
}
VEGETATION_TYPES = ("PlantCover", "SolitaryVegetationObject")

_POLYGON = f"{{{GML}}}Polygon"
_TRIANGLE = f"{{{GML}}}Triangle"
_SURFACE_MEMBER = f"{{{GML}}}surfaceMember"
_POS_LIST = f"{{{GML}}}posList"
_POS = f"{{{GML}}}pos"
_EXTERIOR_RING = f"{{{GML}}}exterior/{{{GML}}}LinearRing"
_INTERIOR_RING = f"{{{GML}}}interior/{{{GML}}}LinearRing"
_GML_ID = f"{{{GML}}}id"
_HREF = f"{{{XLINK}}}href"
_MEMBER = f"{{{CORE}}}cityObjectMember"
_EPSG_CODE = re.compile(r"EPSG(?:/\d+/|::|:)(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class PlateauImportConfig:
    """How PLATEAU files become a scene."""

    lod_preference: tuple[int, ...] = (2, 1, 0)
    """Levels of detail to try, best first, for each building (part), road and plant: the first one
    that yields triangles is used.  LOD0 extrudes the footprint (or roof edge) by measuredHeight."""
    epsg: int | None = None
    """Target projected CRS of the local frame; None = the plane-rectangular zone covering the
    centre of the data (EPSG:6677, zone IX, for Tokyo; 6676, zone VIII, for Nagano)."""
    origin: tuple[float, float] | None = None
    """Local origin (easting, northing) in metres in that CRS; None = centre of the files' bounds."""
    origin_height: float | None = None
    """Orthometric height (m) of local z = 0; None = median building ground height, so local z ≈ 0
    is the ground (else the median height of all imported vertices)."""
    ground_resolution: float = 10.0
    """Sample spacing (m) of the ground height field interpolated from building bases (no DEM)."""
    dem_resolution: float = 2.0
    """Sample spacing (m) of the ground height field rasterised from relief (DEM) triangles."""
    ground_margin: float = 50.0
    """How far (m) the ground height field extends beyond the imported geometry on each side."""
    ground_mesh: bool = True
    """Add the interpolated ground as TERRAIN triangles when the files hold no relief (DEM)."""
    road_ground_clearance: float = 0.05
    """When roads come without a DEM, the ground *mesh* sits this many metres lower so road surfaces
    lying on it win ray hits; the height field (``scene.ground_height``) is not lowered."""
    min_polygon_area: float = 1e-6
    """Polygons smaller than this (m²) are degenerate: skipped and counted."""
    max_ground_samples: int = 4_000_000
    """Cap on the ground height field's samples: wider areas get a coarser spacing (logged)."""

    def __post_init__(self):
        prefs = tuple(int(v) for v in self.lod_preference)
        if not prefs or len(set(prefs)) != len(prefs) or not set(prefs) <= set(CITYGML_LODS):
            raise ValueError(f"lod_preference must list distinct LODs from {CITYGML_LODS}, got {self.lod_preference}")
        object.__setattr__(self, "lod_preference", prefs)
        for name in ("ground_resolution", "dem_resolution"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_ground_samples < 4:
            raise ValueError(f"max_ground_samples must be at least 4, got {self.max_ground_samples}")
        if self.ground_margin < 0 or self.road_ground_clearance < 0 or self.min_polygon_area < 0:
            raise ValueError("ground_margin, road_ground_clearance and min_polygon_area must be >= 0")
        if self.origin is not None and len(self.origin) != 2:
            raise ValueError(f"origin must be (easting, northing), got {self.origin}")


@dataclass
class ImportReport:
    """What an import read, kept and skipped (stored in ``scene.meta['import']``)."""

    files: list[str]
    """Source files, in the order read."""
    buildings: int = 0
    """Buildings imported (one instance each)."""
    buildings_per_lod: dict[int, int] = field(default_factory=dict)
    """Imported buildings by the LOD used (the best one where its parts differ)."""
    roads: int = 0
    """Transportation objects (roads, tracks, squares, railways) imported."""
    vegetation: int = 0
    """Plant covers and solitary vegetation objects imported."""
    dem_triangles: int = 0
    """Relief (TIN) triangles imported."""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(file, gml:id, reason) of every city object left out."""
    degenerate_polygons: int = 0
    """Degenerate polygons dropped from objects that were kept."""
    ignored: dict[str, int] = field(default_factory=dict)
    """City objects of types this importer does not read, by element name."""
    triangles: dict[str, int] = field(default_factory=dict)
    """Scene triangles by city class name."""
    terrain_source: str = ""
    """Where the ground height field came from: 'dem', 'buildings' or 'flat'."""
    seconds: float = 0.0
    """Wall time of the import."""

    def skip(self, path: Path, gml_id: str, reason: str) -> None:
        self.skipped.append((str(path), gml_id, reason))
        logger.warning("%s: %s skipped: %s", path, gml_id, reason)

    def to_dict(self) -> dict:
        return {
            "files": list(self.files), "buildings": self.buildings,
            "buildings_per_lod": {str(k): v for k, v in sorted(self.buildings_per_lod.items())},
            "roads": self.roads, "vegetation": self.vegetation, "dem_triangles": self.dem_triangles,
            "skipped": [{"file": f, "gml_id": g, "reason": r} for f, g, r in self.skipped],
            "degenerate_polygons": self.degenerate_polygons, "ignored": dict(self.ignored),
            "triangles": dict(self.triangles), "terrain_source": self.terrain_source,
            "seconds": round(self.seconds, 3),
        }


def load_plateau(paths: Sequence[str | Path], config: PlateauImportConfig = PlateauImportConfig()) -> Scene:
    """Import PLATEAU CityGML files into one scene sharing one geo-origin.

    Raises ``ValueError`` naming the file for malformed XML (with its line), a root that is not a
    CityGML 2.0 CityModel, or an unsupported CRS.  Objects with unusable geometry are skipped and
    listed in ``scene.meta['import']['skipped']``.
    """
    start = time.perf_counter()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("load_plateau: no CityGML files given")
    headers = [_read_header(p) for p in paths]
    frame = _choose_frame(paths, headers, config)
    report = ImportReport(files=[str(p) for p in paths])
    parts: list[_Part] = []
    for path, header in zip(paths, headers):
        reader = _ObjectReader(path, header.srs_dimension, frame, config, report)
        _stream_city_objects(path, reader, parts)

    bases = [p.vertices[:, 2].min() for p in parts if p.kind == "building"]
    if config.origin_height is not None:
        h0 = float(config.origin_height)
    elif bases:
        h0 = float(np.median(bases))
    elif parts:
        h0 = float(np.median(np.concatenate([p.vertices[:, 2] for p in parts])))
    else:
        h0 = float(np.median([h.lower[2] for h in headers]))
    geo = GeoOrigin(epsg=frame.epsg, origin=(frame.east, frame.north, h0), source_epsg=EPSG_JGD2011_GEOGRAPHIC)
    for p in parts:
        p.vertices[:, 2] -= h0

    terrain, terrain_mesh = _build_ground(parts, frame, config, report)
    builder = SceneBuilder()
    for p in parts:
        inst = builder.new_instance(p.name, p.semantic) if p.name is not None else NO_INSTANCE
        builder.add_mesh(p.vertices, p.faces, p.face_semantics, inst)
    if terrain_mesh is not None:
        builder.add_mesh(*terrain_mesh, CityClass.TERRAIN)
    scene = builder.build(terrain, geo, meta={})
    counts = np.bincount(scene.semantics, minlength=len(CityClass))
    report.triangles = {c.name.lower(): int(counts[c]) for c in CityClass if counts[c]}
    report.seconds = time.perf_counter() - start
    scene.meta = {"source": "plateau", "files": report.files, "import": report.to_dict()}
    return scene


# ------------------------------------------------------------------------------ headers and frame


@dataclass(frozen=True)
class _Header:
    """A file's CRS and envelope: ``lower``/``upper`` are (lat, lon, h) degrees/metres."""

    srs_dimension: int
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]


@dataclass(frozen=True)
class _Frame:
    """Target CRS and the origin's (easting, northing) metres; ``bounds`` = projected envelope union."""

    epsg: int
    east: float
    north: float
    bounds: tuple[float, float, float, float]


def _read_header(path: Path) -> _Header:
    """Check the root and read the CRS and envelope; a missing envelope costs a pass over all coordinates."""
    root = envelope = None
    first_srs = None
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    try:
        with open(path, "rb") as fh:
            for event, el in etree.iterparse(fh, events=("start", "end"), resolve_entities=False, huge_tree=True):
                if event == "start":
                    if root is None:
                        root = el
                        _check_root(path, el)
                    first_srs = first_srs or el.get("srsName")
                    continue
                if el.tag == f"{{{GML}}}Envelope" and el.getparent() is not None and el.getparent().getparent() is root:
                    envelope = el
                    break
                if el.tag in (_POS_LIST, _POS):  # no root envelope (it precedes all members): scan coordinates
                    xyz = _header_coordinates(path, el)
                    if len(xyz):
                        lo[:xyz.shape[1]] = np.minimum(lo[:xyz.shape[1]], xyz.min(0))
                        hi[:xyz.shape[1]] = np.maximum(hi[:xyz.shape[1]], xyz.max(0))
                elif el.tag == _MEMBER:
                    el.clear()
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(path, exc) from None
    if envelope is not None:
        srs, dim = envelope.get("srsName"), int(envelope.get("srsDimension") or 3)
        lower = _floats(envelope.findtext(f"{{{GML}}}lowerCorner"))
        upper = _floats(envelope.findtext(f"{{{GML}}}upperCorner"))
        if len(lower) < 2 or len(upper) < 2:
            raise ValueError(f"{path}: gml:Envelope lacks lowerCorner/upperCorner coordinates")
        lower, upper = np.r_[lower, 0.0][:3], np.r_[upper, 0.0][:3]
    else:
        if not np.all(np.isfinite(lo[:2])):
            raise ValueError(f"{path}: no gml:Envelope and no coordinates: not a CityGML file with geometry")
        srs, dim = first_srs, 3
        lower, upper = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
    _check_srs(path, srs)
    if not (-90 <= lower[0] <= upper[0] <= 90 and -180 <= lower[1] <= upper[1] <= 180):
        raise ValueError(f"{path}: bounds {lower.tolist()} .. {upper.tolist()} are not (latitude, longitude, "
                         f"height) degrees: EPSG:{EPSG_JGD2011_GEOGRAPHIC} coordinates are ordered lat lon h")
    return _Header(dim, tuple(float(v) for v in lower), tuple(float(v) for v in upper))


def _header_coordinates(path: Path, el) -> np.ndarray:
    """(n, dim) float64 coordinates of a posList/pos met while scanning for the bounds."""
    dim = int(el.get("srsDimension") or 3)
    try:
        return _floats(el.text).reshape(-1, dim)
    except ValueError as exc:
        raise ValueError(f"{path}: unreadable coordinates at line {el.sourceline} ({exc})") from None


def _check_root(path: Path, root) -> None:
    if root.tag != f"{{{CORE}}}CityModel":
        q = etree.QName(root.tag)
        hint = " (CityGML 1.0/3.0 are not supported)" if "citygml" in (q.namespace or "") else ""
        raise ValueError(f"{path}: root element is {root.tag}, not a CityGML 2.0 core:CityModel{hint}")


def _check_srs(path: Path, srs: str | None) -> None:
    if not srs:
        raise ValueError(f"{path}: no srsName on gml:Envelope: cannot tell the CRS; PLATEAU files declare "
                         f"EPSG:{EPSG_JGD2011_GEOGRAPHIC}")
    m = _EPSG_CODE.search(srs)
    if m is None or int(m.group(1)) not in SUPPORTED_SOURCE_EPSG:
        raise ValueError(f"{path}: unsupported CRS {srs!r}; the PLATEAU importer reads EPSG:"
                         f"{EPSG_JGD2011_GEOGRAPHIC} (JGD2011 latitude, longitude, height) only — "
                         f"reproject the file to it")


def _choose_frame(paths: list[Path], headers: list[_Header], config: PlateauImportConfig) -> _Frame:
    """Target CRS and origin from the union of the files' envelopes (or ``config``)."""
    lat = (min(h.lower[0] for h in headers), max(h.upper[0] for h in headers))
    lon = (min(h.lower[1] for h in headers), max(h.upper[1] for h in headers))
    try:
        epsg = config.epsg if config.epsg is not None else plane_rectangular_zone(sum(lat) / 2, sum(lon) / 2)
    except ValueError as exc:
        raise ValueError(f"{', '.join(map(str, paths))}: {exc}; pass PlateauImportConfig(epsg=...)") from None
    east, north = geographic_to_projected(np.repeat(lat, 2), np.tile(lon, 2), epsg)
    bounds = (float(east.min()), float(north.min()), float(east.max()), float(north.max()))
    if config.origin is not None:
        e0, n0 = (float(v) for v in config.origin)
    else:
        e0, n0 = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    return _Frame(int(epsg), e0, n0, bounds)


def _syntax_error(path: Path, exc: etree.XMLSyntaxError) -> ValueError:
    line, col = exc.position if exc.position else (exc.lineno, 0)
    return ValueError(f"{path}: malformed XML at line {line}, column {col}: {exc.msg} "
                      f"(damaged or truncated file? download it again)")


# ------------------------------------------------------------------------------ streaming pass


@dataclass
class _Part:
    """One city object's triangles: vertices (v, 3) float64 local x, y and orthometric z (m) until
    the origin height is known; faces (f, 3) int; face_semantics (f,) uint8; ``kind`` one of
    'building', 'transport', 'vegetation', 'relief'; ``name`` = instance name (None for surfaces
    without an instance: roads, relief)."""

    kind: str
    name: str | None
    semantic: CityClass
    vertices: np.ndarray
    faces: np.ndarray
    face_semantics: np.ndarray


def _stream_city_objects(path: Path, reader: "_ObjectReader", parts: list[_Part]) -> None:
    """Read each ``core:cityObjectMember`` when it ends, then free it and everything before it."""
    try:
        with open(path, "rb") as fh:
            for _, member in etree.iterparse(fh, events=("end",), tag=(_MEMBER, f"{{{APP}}}appearanceMember"),
                                             huge_tree=True, remove_comments=True, resolve_entities=False):
                if member.tag == _MEMBER:
                    for obj in member:
                        if isinstance(obj.tag, str):
                            part = reader.read(obj)
                            if part is not None:
                                parts.append(part)
                member.clear()
                while member.getprevious() is not None:
                    del member.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(path, exc) from None


class _ObjectReader:
    """Turns one top-level city object element into a :class:`_Part` (or skips it, reporting why)."""

    def __init__(self, path: Path, srs_dimension: int, frame: _Frame, config: PlateauImportConfig,
                 report: ImportReport):
        self.path, self.srs_dimension, self.frame = path, srs_dimension, frame
        self.config, self.report = config, report
        self._handlers: dict[str, Callable] = {f"{{{BLDG}}}Building": self._building,
                                               f"{{{DEM}}}ReliefFeature": self._relief}
        self._handlers.update({f"{{{TRAN}}}{t}": self._transport for t in TRANSPORT_DEFAULT_CLASS})
        self._handlers.update({f"{{{VEG}}}{t}": self._vegetation for t in VEGETATION_TYPES})

    def read(self, obj) -> _Part | None:
        handler = self._handlers.get(obj.tag)
        kind = etree.QName(obj.tag).localname
        if handler is None:
            self.report.ignored[kind] = self.report.ignored.get(kind, 0) + 1
            return None
        return handler(obj, obj.get(_GML_ID) or f"{kind} at line {obj.sourceline}")

    # -------------------------------------------------------------- object types

    def _building(self, obj, gml_id: str) -> _Part | None:
        holders = [obj] + list(obj.iter(f"{{{BLDG}}}BuildingPart"))
        default_height = _measured_height(obj)
        meshes, lods, failures, bad = [], [], [], 0
        for holder in holders:
            height = _measured_height(holder) if holder is not obj else None
            broken = []  # LODs present but unusable for this holder
            for lod in self.config.lod_preference:
                if lod == 0:
                    mesh = self._footprint_prism(holder, height if height is not None else default_height)
                else:
                    mesh = self._surfaces([(CityClass.BUILDING, _building_lod_geometry(holder, lod))])
                if mesh.num_faces:
                    meshes.append(mesh)
                    lods.append(lod)
                    bad += mesh.bad
                    if broken:
                        logger.warning("%s: %s: fell back to LOD%d (%s)", self.path, gml_id, lod, "; ".join(broken))
                    break
                failures.append(f"LOD{lod}: {mesh.reason}")
                if mesh.bad:
                    broken.append(f"LOD{lod}: {mesh.bad} unusable polygon(s), {mesh.reason}")
        if not meshes:
            why = "; ".join(failures) or "no geometry"
            self.report.skip(self.path, gml_id, f"no usable geometry at LOD {self.config.lod_preference} ({why})")
            return None
        lod = min(lods, key=self.config.lod_preference.index)
        self.report.buildings += 1
        self.report.buildings_per_lod[lod] = self.report.buildings_per_lod.get(lod, 0) + 1
        self._count_degenerate(gml_id, bad, meshes)
        return SurfaceMesh.concat(meshes).part("building", gml_id, CityClass.BUILDING)

    def _transport(self, obj, gml_id: str) -> _Part | None:
        kind = etree.QName(obj.tag).localname
        own = _function_class(obj, TRANSPORT_DEFAULT_CLASS[kind], codes=False)
        failures = []
        for lod in self.config.lod_preference:
            groups = [(own, obj.findall(f"tran:lod{lod}MultiSurface", NS))]
            if lod >= 2:
                for path, default in (("tran:trafficArea/tran:TrafficArea", own),
                                      ("tran:auxiliaryTrafficArea/tran:AuxiliaryTrafficArea", CityClass.SIDEWALK)):
                    for area in obj.iterfind(path, NS):
                        groups.append((_function_class(area, default, codes=True),
                                       area.findall(f"tran:lod{lod}MultiSurface", NS)))
            mesh = self._surfaces(groups)
            if mesh.num_faces:
                self.report.roads += 1
                self._count_degenerate(gml_id, mesh.bad, [mesh])
                return mesh.part("transport", None, own)
            failures.append(f"LOD{lod}: {mesh.reason or 'no surfaces (LOD0 networks are curves)'}")
        self.report.skip(self.path, gml_id, f"no usable {kind} surfaces ({'; '.join(failures)})")
        return None

    def _vegetation(self, obj, gml_id: str) -> _Part | None:
        failures = []
        for lod in self.config.lod_preference:
            geometry = [el for name in ("MultiSurface", "MultiSolid", "Geometry")
                        for el in obj.findall(f"veg:lod{lod}{name}", NS)]
            mesh = self._surfaces([(CityClass.VEGETATION, geometry)])
            if mesh.num_faces:
                self.report.vegetation += 1
                self._count_degenerate(gml_id, mesh.bad, [mesh])
                return mesh.part("vegetation", gml_id, CityClass.VEGETATION)
            implicit = obj.find(f"veg:lod{lod}ImplicitRepresentation", NS) is not None
            failures.append(f"LOD{lod}: " + ("only an implicit (prototype) geometry, which is not supported"
                                             if implicit else mesh.reason or "no geometry"))
        self.report.skip(self.path, gml_id, f"no usable vegetation geometry ({'; '.join(failures)})")
        return None

    def _relief(self, obj, gml_id: str) -> _Part | None:
        surfaces = list(obj.iterfind("dem:reliefComponent/dem:TINRelief/dem:tin", NS))
        for comp in obj.iterfind("dem:reliefComponent/*", NS):
            name = etree.QName(comp.tag).localname
            if name != "TINRelief":
                self.report.ignored[name] = self.report.ignored.get(name, 0) + 1
        mesh = self._surfaces([(CityClass.TERRAIN, surfaces)])
        if not mesh.num_faces:
            self.report.skip(self.path, gml_id, f"no relief triangles ({mesh.reason or 'no dem:TINRelief/dem:tin'})")
            return None
        self.report.dem_triangles += mesh.num_faces
        self._count_degenerate(gml_id, mesh.bad, [mesh])
        return mesh.part("relief", None, CityClass.TERRAIN)

    # -------------------------------------------------------------- geometry

    def _surfaces(self, groups: list[tuple[CityClass, list]]) -> "SurfaceMesh":
        """Triangulate every polygon/triangle under the given geometry property elements.

        ``groups``: (class, property elements).  ``xlink:href`` surface members (a ``lod2Solid``
        pointing at the ``boundedBy`` polygons) resolve within the object; each polygon counts once.
        """
        polygons, classes, seen = [], [], set()
        for semantic, elements in groups:
            for el in elements:
                for poly in chain(el.iter(_POLYGON, _TRIANGLE), _linked_polygons(el)):
                    if poly not in seen:
                        seen.add(poly)
                        polygons.append(poly)
                        classes.append(semantic)
        if not polygons:
            return SurfaceMesh.empty("no polygons")
        rings, problems = self._rings(polygons)
        keep = [i for i in range(len(polygons)) if i not in problems]
        if not keep:
            return SurfaceMesh.empty(next(iter(problems.values())), bad=len(problems))
        mesh = triangulate_polygons([rings[i] for i in keep], np.asarray(classes, np.uint8)[keep],
                                    self.config.min_polygon_area)
        if problems:
            mesh.bad += len(problems)
            mesh.reason = mesh.reason or next(iter(problems.values()))
        return mesh

    def _footprint_prism(self, holder, height: float | None) -> "SurfaceMesh":
        """LOD0: extrude ``lod0FootPrint`` (z = ground) up, or ``lod0RoofEdge`` (z = roof) down, by measuredHeight."""
        for prop, is_roof in (("bldg:lod0FootPrint", False), ("bldg:lod0RoofEdge", True)):
            polygons = [p for el in holder.findall(prop, NS) for p in el.iter(_POLYGON)]
            if polygons:
                break
        else:
            return SurfaceMesh.empty("no lod0FootPrint or lod0RoofEdge")
        if height is None or not height > 0:
            return SurfaceMesh.empty("no positive bldg:measuredHeight to extrude the LOD0 outline")
        all_rings, problems = self._rings(polygons)
        collector, bad, reason = _MeshCollector(), len(problems), next(iter(problems.values()), "")
        for rings in (r for i, r in enumerate(all_rings) if i not in problems):
            z = np.concatenate([r[:, 2] for r in rings])
            z0, z1 = (z.max() - height, z.max()) if is_roof else (z.min(), z.min() + height)
            try:
                add_prism(collector, rings[0][:, :2], z0, z1, CityClass.BUILDING, holes=[r[:, :2] for r in rings[1:]])
            except DegeneratePolygon as exc:
                bad, reason = bad + 1, f"degenerate outline ({exc})"
        return collector.mesh(bad, reason)

    def _rings(self, polygons: list) -> tuple[list[list[np.ndarray]], dict[int, str]]:
        """Rings of each polygon (exterior first) as (k, 3) float64 local x, y, orthometric z, in one pyproj call.

        Returns the rings and ``{polygon index: why}`` for polygons whose coordinates cannot be read
        (their ring list is empty).
        """
        tokens, owner, problems = [], [], {}
        for i, poly in enumerate(polygons):
            for ring in poly.findall(_EXTERIOR_RING)[:1] + poly.findall(_INTERIOR_RING):
                pos_list = ring.find(_POS_LIST)
                if pos_list is not None:
                    dim = int(pos_list.get("srsDimension") or self.srs_dimension)
                    words = (pos_list.text or "").split()
                else:
                    dim, words = 3, list(chain.from_iterable((p.text or "").split() for p in ring.iter(_POS)))
                if dim != 3 or len(words) % 3:
                    problems[i] = (f"ring at line {ring.sourceline} has {len(words)} numbers in dimension {dim}; "
                                   f"(lat, lon, h) triples are required")
                tokens.append(words)
                owner.append(i)
        values = []
        for words, i in zip(tokens, owner):
            try:
                values.append(np.array(words, dtype=np.float64))
            except ValueError as exc:
                problems.setdefault(i, f"polygon at line {polygons[i].sourceline}: non-numeric coordinates ({exc})")
                values.append(None)
        values = [np.zeros(0) if i in problems else v for v, i in zip(values, owner)]  # unreadable polygons: no rings
        flat = np.concatenate(values).reshape(-1, 3) if values else np.zeros((0, 3))
        east, north = geographic_to_projected(flat[:, 0], flat[:, 1], self.frame.epsg)
        local = np.column_stack([east - self.frame.east, north - self.frame.north, flat[:, 2]])
        pieces = np.split(local, np.cumsum([len(v) // 3 for v in values])[:-1]) if values else []
        rings: list[list[np.ndarray]] = [[] for _ in polygons]
        for piece, i in zip(pieces, owner):
            if i not in problems:
                rings[i].append(piece)
        for i, poly in enumerate(polygons):
            if not rings[i] and i not in problems:
                problems[i] = f"polygon at line {poly.sourceline} has no gml:exterior/gml:LinearRing"
        return rings, problems

    def _count_degenerate(self, gml_id: str, bad: int, meshes: list["SurfaceMesh"]) -> None:
        if bad:
            self.report.degenerate_polygons += bad
            reason = next((m.reason for m in meshes if m.reason), "")
            logger.warning("%s: %s: %d degenerate polygon(s) skipped (%s)", self.path, gml_id, bad, reason)


def _building_lod_geometry(holder, lod: int) -> list:
    """Geometry property elements of LOD ``lod`` (1..4) that belong to ``holder`` itself (not its parts)."""
    names = [f"bldg:lod{lod}Solid", f"bldg:lod{lod}MultiSurface"]
    if lod >= 2:
        names += [f"bldg:boundedBy/*/bldg:lod{lod}MultiSurface",
                  f"bldg:outerBuildingInstallation/bldg:BuildingInstallation/bldg:lod{lod}Geometry"]
    if lod >= 3:
        names.append(f"bldg:boundedBy/*/bldg:opening/*/bldg:lod{lod}MultiSurface")
    return [el for name in names for el in holder.iterfind(name, NS)]


def _linked_polygons(el):
    """Polygons that ``xlink:href`` surface members under ``el`` point to, found within the same object."""
    hrefs = [m.get(_HREF) for m in el.iter(_SURFACE_MEMBER) if m.get(_HREF)]
    if not hrefs:
        return []
    top = el
    while top.getparent() is not None and top.getparent().tag != _MEMBER:
        top = top.getparent()
    by_id = {p.get(_GML_ID): p for p in top.iter(_POLYGON) if p.get(_GML_ID)}
    return [by_id[h.lstrip("#")] for h in hrefs if h.lstrip("#") in by_id]


def _measured_height(el) -> float | None:
    text = el.findtext(f"{{{BLDG}}}measuredHeight")
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _function_class(el, default: CityClass, codes: bool) -> CityClass:
    """Class from ``tran:function``/``tran:usage`` (PLATEAU codes when ``codes``, then keywords), else ``default``."""
    values = [(v.text or "").strip() for v in chain(el.iterfind("tran:function", NS), el.iterfind("tran:usage", NS))]
    for value in values:
        if codes and value in TRAFFIC_AREA_CODES:
            return TRAFFIC_AREA_CODES[value]
        low = value.lower()
        for word, cls in TRAFFIC_AREA_KEYWORDS:
            if word in low:
                return cls
    return default


def _floats(text: str | None) -> np.ndarray:
    return np.array((text or "").split(), dtype=np.float64)


# ------------------------------------------------------------------------------ triangulation


@dataclass
class SurfaceMesh:
    """Triangulated surfaces of one city object.

    Attributes
    ----------
    vertices : (v, 3) float64
        Local x, y and orthometric z, metres (z shifted to local only when the scene is assembled).
    faces : (f, 3) int64
        Vertex indices, wound like the source polygons.
    semantics : (f,) uint8
        :class:`CityClass` of each triangle.
    bad : int
        Polygons dropped as degenerate or unreadable.
    reason : str
        Why the (last) dropped polygon, or the whole surface, was unusable.
    """

    vertices: np.ndarray
    faces: np.ndarray
    semantics: np.ndarray
    bad: int = 0
    reason: str = ""

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @classmethod
    def empty(cls, reason: str = "", bad: int = 0) -> "SurfaceMesh":
        return cls(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.uint8), bad, reason)

    @classmethod
    def concat(cls, meshes: list["SurfaceMesh"]) -> "SurfaceMesh":
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])[:-1]
        return cls(np.concatenate([m.vertices for m in meshes]),
                   np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
                   np.concatenate([m.semantics for m in meshes]),
                   sum(m.bad for m in meshes), next((m.reason for m in meshes if m.reason), ""))

    def part(self, kind: str, name: str | None, semantic: CityClass) -> _Part:
        return _Part(kind, name, semantic, self.vertices, self.faces, self.semantics)


class _MeshCollector:
    """Stands in for a :class:`SceneBuilder` to catch what :func:`add_prism` emits."""

    def __init__(self):
        self.vertices, self.faces, self.semantics, self._n = [], [], [], 0

    def add_mesh(self, vertices, faces, semantic, instance=NO_INSTANCE) -> None:
        self.vertices.append(np.asarray(vertices, np.float64))
        self.faces.append(np.asarray(faces, np.int64) + self._n)
        self.semantics.append(np.broadcast_to(np.asarray(semantic, np.uint8), (len(faces),)))
        self._n += len(vertices)

    def mesh(self, bad: int, reason: str) -> SurfaceMesh:
        if not self.faces:
            return SurfaceMesh.empty(reason, bad)
        return SurfaceMesh(np.concatenate(self.vertices), np.concatenate(self.faces), np.concatenate(self.semantics),
                     bad, reason)


def triangulate_polygons(rings: list[list[np.ndarray]], classes: np.ndarray, min_area: float = 1e-6,
                          fast: bool = True) -> SurfaceMesh:
    """Triangulate polygons, one class each; degenerate ones are dropped and counted, not fatal.

    Parameters
    ----------
    rings : list of list of (k, 3) float64
        Per polygon its rings, exterior first (open or closed), local metres.
    classes : (P,) uint8
        :class:`CityClass` of each polygon.
    min_area : float
        Polygons below this area (m²) are degenerate.
    fast : bool
        Fan-triangulate convex hole-free polygons in bulk (:func:`_convex_fans`: most LOD1 walls,
        rectangular roofs, every TIN triangle); everything else, and everything when False, is
        ear-cut one by one on its own plane by :func:`triangulate_3d` (the reference).

    Returns
    -------
    SurfaceMesh with triangles wound like each polygon's exterior ring.
    """
    verts, faces, sems, bad, reason, n = [], [], [], 0, "", 0
    slow = np.ones(len(rings), bool)
    if fast:
        for k, idx in _simple_polygons_by_size(rings).items():
            ring = np.stack([rings[i][0][:k] for i in idx])                    # (m, k, 3)
            ok, tri = _convex_fans(ring, min_area)                              # (m,), (m, k-2, 3, 3)
            slow[np.asarray(idx)[ok]] = False
            tri = tri[ok]
            keep = _triangle_areas(tri) > MIN_FAN_TRIANGLE_AREA                # (m', k-2)
            verts.append(tri[keep].reshape(-1, 3))
            faces.append(n + np.arange(3 * int(keep.sum())).reshape(-1, 3))
            sems.append(np.repeat(classes[np.asarray(idx)[ok]], keep.sum(1)))
            n += 3 * int(keep.sum())
    for i in np.flatnonzero(slow):
        try:
            pts, f = triangulate_3d(rings[i][0], rings[i][1:], min_area=min_area)
        except DegeneratePolygon as exc:
            bad, reason = bad + 1, str(exc)
            continue
        verts.append(pts)
        faces.append(f.astype(np.int64) + n)
        sems.append(np.full(len(f), classes[i], np.uint8))
        n += len(pts)
    if not n:
        return SurfaceMesh.empty(reason or "no polygons", bad)
    return SurfaceMesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(sems).astype(np.uint8), bad, reason)


def _simple_polygons_by_size(rings: list[list[np.ndarray]]) -> dict[int, list[int]]:
    """Indices of hole-free polygons by distinct-vertex count k (closing vertex not counted), 3 <= k <= MAX_FAN_VERTICES."""
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rings):
        if len(r) != 1:
            continue
        ext = r[0]
        k = len(ext) - 1 if len(ext) > 3 and np.array_equal(ext[0], ext[-1]) else len(ext)
        if 3 <= k <= MAX_FAN_VERTICES:
            groups.setdefault(k, []).append(i)
    return groups


def _convex_fans(ring: np.ndarray, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangles of convex polygons.

    ``ring``: (m, k, 3) float64, m polygons of k vertices.  Returns ``ok`` (m,) bool — finite,
    at least ``min_area``, and convex on the plane of its Newell normal (every turn the same way,
    once round) — and ``tri`` (m, k-2, 3, 3): triangles (v0, vj, vj+1), wound like the ring.
    """
    k = ring.shape[1]
    nxt = ring[:, np.r_[1:k, 0]]
    normal = np.stack([np.sum((ring[..., 1] - nxt[..., 1]) * (ring[..., 2] + nxt[..., 2]), 1),
                       np.sum((ring[..., 2] - nxt[..., 2]) * (ring[..., 0] + nxt[..., 0]), 1),
                       np.sum((ring[..., 0] - nxt[..., 0]) * (ring[..., 1] + nxt[..., 1]), 1)], 1)   # (m, 3)
    area2 = np.linalg.norm(normal, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = normal / area2[:, None]
        edge = nxt - ring                                                          # (m, k, 3)
        after = edge[:, np.r_[1:k, 0]]
        sin = np.einsum("mkc,mc->mk", _cross(edge, after), unit)                  # turn at each vertex
        cos = np.einsum("mkc,mkc->mk", edge, after)
        scale = np.linalg.norm(edge, axis=2) * np.linalg.norm(after, axis=2)
        turning = np.arctan2(sin, cos).sum(1)
    ok = (np.isfinite(ring).all((1, 2)) & (area2 / 2 > min_area) & (sin >= -CONVEX_TOLERANCE * scale).all(1)
          & (np.abs(turning - 2 * np.pi) < CONVEX_TOLERANCE))
    j = np.arange(1, ring.shape[1] - 1)
    tri = np.stack([np.broadcast_to(ring[:, :1], (len(ring), len(j), 3)), ring[:, j], ring[:, j + 1]], axis=2)
    return ok, tri


def _triangle_areas(tri: np.ndarray) -> np.ndarray:
    """Areas (m²) of triangles (..., 3, 3)."""
    return 0.5 * np.linalg.norm(_cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :]), axis=-1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (np.cross without its per-call overhead on small arrays)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


# ------------------------------------------------------------------------------ ground


def _build_ground(parts: list[_Part], frame: _Frame, config: PlateauImportConfig,
                  report: ImportReport) -> tuple[Terrain, tuple[np.ndarray, np.ndarray] | None]:
    """The terrain height field (local z) and, without a DEM, its mesh to add as TERRAIN triangles."""
    if parts:
        allv = np.concatenate([p.vertices[:, :2] for p in parts])
        lo, hi = allv.min(0), allv.max(0)
    else:
        lo = np.array([frame.bounds[0] - frame.east, frame.bounds[1] - frame.north])
        hi = np.array([frame.bounds[2] - frame.east, frame.bounds[3] - frame.north])
    bounds = (lo[0] - config.ground_margin, lo[1] - config.ground_margin,
              hi[0] + config.ground_margin, hi[1] + config.ground_margin)
    dem = [p for p in parts if p.kind == "relief"]
    area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
    resolution = config.dem_resolution if dem else config.ground_resolution
    if area / resolution ** 2 > config.max_ground_samples:
        coarse = float(np.sqrt(area / config.max_ground_samples))
        logger.warning("ground over %.0f x %.0f m: spacing %.2f m instead of %.2f m (max_ground_samples=%d)",
                       bounds[2] - bounds[0], bounds[3] - bounds[1], coarse, resolution, config.max_ground_samples)
        resolution = coarse
    if dem:
        report.terrain_source = "dem"
        return _ground_from_dem(SurfaceMesh.concat([SurfaceMesh(p.vertices, p.faces, p.face_semantics) for p in dem]),
                                bounds, resolution), None
    samples = [_building_base(p) for p in parts if p.kind == "building"]
    roads = [p.vertices for p in parts if p.kind == "transport"]
    samples += roads
    if samples:
        report.terrain_source = "buildings"
        terrain = _ground_from_samples(np.concatenate(samples), bounds, resolution)
    else:
        report.terrain_source = "flat"
        terrain = Terrain.flat(0.0, bounds)
    if not config.ground_mesh:
        return terrain, None
    vertices, faces = terrain.mesh()
    if roads:
        vertices[:, 2] -= config.road_ground_clearance
    return terrain, (vertices, faces)


def _building_base(part: _Part) -> np.ndarray:
    """Ground samples (n, 3) of a building: its vertices within :data:`BUILDING_BASE_TOLERANCE` of its lowest."""
    v = part.vertices
    return v[v[:, 2] <= v[:, 2].min() + BUILDING_BASE_TOLERANCE]


def _grid(bounds: tuple[float, float, float, float], resolution: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Sample grid over ``bounds``: origin (x0, y0) and coordinates gx, gy of shape (ny, nx)."""
    x0 = np.floor(bounds[0] / resolution) * resolution
    y0 = np.floor(bounds[1] / resolution) * resolution
    nx = int(np.ceil((bounds[2] - x0) / resolution)) + 1
    ny = int(np.ceil((bounds[3] - y0) / resolution)) + 1
    gx, gy = np.meshgrid(x0 + resolution * np.arange(max(nx, 2)), y0 + resolution * np.arange(max(ny, 2)))
    return float(x0), float(y0), gx, gy


def _ground_from_samples(points: np.ndarray, bounds, resolution: float) -> Terrain:
    """Height field from ground samples (n, 3) local metres: linear inside their hull, nearest outside."""
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    pts = np.unique(np.round(points, 2), axis=0)
    x0, y0, gx, gy = _grid(bounds, resolution)
    heights = np.full(gx.shape, np.nan)
    if len(pts) >= 3:
        try:
            heights = griddata(pts[:, :2], pts[:, 2], (gx, gy), method="linear")
        except QhullError:  # collinear samples: nearest only
            pass
    hole = ~np.isfinite(heights)
    if hole.any():
        heights[hole] = griddata(pts[:, :2], pts[:, 2], (gx[hole], gy[hole]), method="nearest")
    return Terrain(x0, y0, resolution, heights)


def _ground_from_dem(mesh: SurfaceMesh, bounds, resolution: float) -> Terrain:
    """Height field from relief triangles: vertical rays down onto them at every sample; nearest hit outside."""
    from scipy.interpolate import griddata

    from vlwm.world.raycast import EmbreeTracer

    x0, y0, gx, gy = _grid(bounds, resolution)
    top = mesh.vertices[:, 2].max() + DEM_RAY_HEADROOM
    origins = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, top)])
    down = np.tile([0.0, 0.0, -1.0], (gx.size, 1))
    distance, _ = EmbreeTracer(mesh.vertices, mesh.faces).intersect(origins, down)
    heights = (top - distance.astype(np.float64)).reshape(gx.shape)
    hit = np.isfinite(heights)
    if not hit.any():  # relief smaller than one sample spacing: use its vertices
        return _ground_from_samples(mesh.vertices, bounds, resolution)
    if not hit.all():
        heights[~hit] = griddata(np.column_stack([gx[hit], gy[hit]]), heights[hit], (gx[~hit], gy[~hit]),
                                 method="nearest")
    return Terrain(x0, y0, resolution, heights)
