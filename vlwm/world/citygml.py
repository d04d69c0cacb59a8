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

Modules: this one holds the two file passes, the frame and the scene assembly;
:mod:`vlwm.world.citygml_objects` reads one city object (types, LOD choice, classes),
:mod:`vlwm.world.gml_geometry` its GML polygons, :mod:`vlwm.world.triangulate` triangulates them
and :class:`~vlwm.world.terrain.Terrain` builds the ground.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from lxml import etree

from vlwm.labels import CityClass
from vlwm.world.builder import SceneBuilder
from vlwm.world.citygml_objects import CityObjectMesh, CityObjectReader
from vlwm.world.citygml_report import ImportReport
from vlwm.world.geo import (EPSG_JGD2011_GEOGRAPHIC, GeoOrigin, geographic_to_projected,
                            plane_rectangular_zone)
from vlwm.world.gml_geometry import APP, CORE, GML, MEMBER, POS, POS_LIST, GeometryReader, LocalFrame
from vlwm.world.scene import NO_INSTANCE, Scene
from vlwm.world.terrain import Terrain
from vlwm.world.triangulate import SurfaceMesh

logger = logging.getLogger(__name__)

#: Source CRSs the importer reads (posList order latitude, longitude, height).
SUPPORTED_SOURCE_EPSG = (EPSG_JGD2011_GEOGRAPHIC,)
#: CityGML levels of detail.
CITYGML_LODS = (0, 1, 2, 3, 4)
#: Vertices within this many metres of a building's lowest point sample the ground under it.
BUILDING_BASE_TOLERANCE = 0.5

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
    parts: list[CityObjectMesh] = []
    for path, header in zip(paths, headers):
        geometry = GeometryReader(header.srs_dimension, frame, config.min_polygon_area)
        reader = CityObjectReader(path, geometry, config.lod_preference, report)
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


# ------------------------------------------------------------------------------ header pass and frame


@dataclass(frozen=True)
class _Header:
    """A file's CRS and envelope: ``lower``/``upper`` are (lat, lon, h) degrees/metres."""

    srs_dimension: int
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]


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
                if el.tag in (POS_LIST, POS):  # no root envelope (it precedes all members): scan coordinates
                    xyz = _header_coordinates(path, el)
                    if len(xyz):
                        lo[:xyz.shape[1]] = np.minimum(lo[:xyz.shape[1]], xyz.min(0))
                        hi[:xyz.shape[1]] = np.maximum(hi[:xyz.shape[1]], xyz.max(0))
                elif el.tag == MEMBER:
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


def _floats(text: str | None) -> np.ndarray:
    """Whitespace-separated numbers as (n,) float64."""
    return np.array((text or "").split(), dtype=np.float64)


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


def _choose_frame(paths: list[Path], headers: list[_Header], config: PlateauImportConfig) -> LocalFrame:
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
    return LocalFrame(int(epsg), e0, n0, bounds)


def _syntax_error(path: Path, exc: etree.XMLSyntaxError) -> ValueError:
    line, col = exc.position if exc.position else (exc.lineno, 0)
    return ValueError(f"{path}: malformed XML at line {line}, column {col}: {exc.msg} "
                      f"(damaged or truncated file? download it again)")


# ------------------------------------------------------------------------------ streaming pass


def _stream_city_objects(path: Path, reader: CityObjectReader, parts: list[CityObjectMesh]) -> None:
    """Read each ``core:cityObjectMember`` when it ends, then free it and everything before it."""
    try:
        with open(path, "rb") as fh:
            for _, member in etree.iterparse(fh, events=("end",), tag=(MEMBER, f"{{{APP}}}appearanceMember"),
                                             huge_tree=True, remove_comments=True, resolve_entities=False):
                if member.tag == MEMBER:
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


# ------------------------------------------------------------------------------ ground


def _build_ground(parts: list[CityObjectMesh], frame: LocalFrame, config: PlateauImportConfig,
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
        relief = SurfaceMesh.concat([SurfaceMesh(p.vertices, p.faces, p.face_semantics) for p in dem])
        return Terrain.from_mesh(relief.vertices, relief.faces, bounds, resolution), None
    samples = [_building_base(p) for p in parts if p.kind == "building"]
    roads = [p.vertices for p in parts if p.kind == "transport"]
    samples += roads
    if samples:
        report.terrain_source = "buildings"
        terrain = Terrain.from_samples(np.concatenate(samples), bounds, resolution)
    else:
        report.terrain_source = "flat"
        terrain = Terrain.flat(0.0, bounds)
    if not config.ground_mesh:
        return terrain, None
    vertices, faces = terrain.mesh()
    if roads:
        vertices[:, 2] -= config.road_ground_clearance
    return terrain, (vertices, faces)


def _building_base(part: CityObjectMesh) -> np.ndarray:
    """Ground samples (n, 3) of a building: its vertices within :data:`BUILDING_BASE_TOLERANCE` of its lowest."""
    v = part.vertices
    return v[v[:, 2] <= v[:, 2].min() + BUILDING_BASE_TOLERANCE]
