"""CityGML city objects -> one triangle mesh each: object types, LOD selection and classes.

:class:`CityObjectReader` turns one top-level city object element (a child of
``core:cityObjectMember``) into a :class:`CityObjectMesh`, or skips it and says why in the
:class:`~vlwm.world.citygml_report.ImportReport`:

- ``bldg:Building`` (and each of its ``bldg:BuildingPart`` s): the first LOD of the preference
  that yields triangles — solids, multi-surfaces, boundary surfaces, installations and (LOD3+)
  openings; LOD0 extrudes the footprint up, or the roof edge down, by ``bldg:measuredHeight``.
  One BUILDING instance per building.
- ``tran:Road``/``Track``/``Square``/``Railway``: the object's own surfaces and, from LOD2, its
  (auxiliary) traffic areas, classed by their ``tran:function``/``tran:usage``.  No instance.
- ``veg:PlantCover``/``veg:SolitaryVegetationObject``: explicit geometry only.  One VEGETATION
  instance each.
- ``dem:ReliefFeature``: the triangles of its ``dem:TINRelief`` components (TERRAIN, no instance).

Anything else is counted as ignored.  The geometry itself is read by :class:`GeometryReader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable

import numpy as np
from lxml import etree

from vlwm.labels import CityClass
from vlwm.world.gml_geometry import BLDG, DEM, GML_ID, NS, POLYGON, TRAN, VEG, GeometryReader
from vlwm.world.citygml_report import ImportReport
from vlwm.world.triangulate import SurfaceMesh

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


@dataclass
class CityObjectMesh:
    """One city object's triangles.

    Attributes
    ----------
    kind : str
        'building', 'transport', 'vegetation' or 'relief'.
    name : str or None
        Instance name (the ``gml:id``); None for surfaces without an instance (roads, relief).
    semantic : CityClass
        Class of the instance (or of the object, for those without one).
    vertices : (v, 3) float64
        Local x, y and orthometric z (m) until the origin height is known.
    faces : (f, 3) int64
        Triangles into ``vertices``.
    face_semantics : (f,) uint8
        :class:`CityClass` of each triangle.
    """

    kind: str
    name: str | None
    semantic: CityClass
    vertices: np.ndarray
    faces: np.ndarray
    face_semantics: np.ndarray

    @classmethod
    def of(cls, mesh: SurfaceMesh, kind: str, name: str | None, semantic: CityClass) -> "CityObjectMesh":
        return cls(kind, name, semantic, mesh.vertices, mesh.faces, mesh.semantics)


class CityObjectReader:
    """Turns one top-level city object element into a :class:`CityObjectMesh` (or skips it, reporting why).

    ``path`` names the file in messages; ``lod_preference`` lists the LODs to try, best first;
    ``report`` collects counts, skips and degenerate polygons.
    """

    def __init__(self, path: Path, geometry: GeometryReader, lod_preference: tuple[int, ...], report: ImportReport):
        self.path, self.geometry, self.lod_preference, self.report = path, geometry, lod_preference, report
        self._handlers: dict[str, Callable] = {f"{{{BLDG}}}Building": self._building,
                                               f"{{{DEM}}}ReliefFeature": self._relief}
        self._handlers.update({f"{{{TRAN}}}{t}": self._transport for t in TRANSPORT_DEFAULT_CLASS})
        self._handlers.update({f"{{{VEG}}}{t}": self._vegetation for t in VEGETATION_TYPES})

    def read(self, obj) -> CityObjectMesh | None:
        handler = self._handlers.get(obj.tag)
        kind = etree.QName(obj.tag).localname
        if handler is None:
            self.report.ignore(kind)
            return None
        return handler(obj, obj.get(GML_ID) or f"{kind} at line {obj.sourceline}")

    def _building(self, obj, gml_id: str) -> CityObjectMesh | None:
        holders = [obj] + list(obj.iter(f"{{{BLDG}}}BuildingPart"))
        default_height = _measured_height(obj)
        meshes, lods, failures, bad = [], [], [], 0
        for holder in holders:
            height = _measured_height(holder) if holder is not obj else None
            broken = []  # LODs present but unusable for this holder
            for lod in self.lod_preference:
                if lod == 0:
                    mesh = self._footprint_prism(holder, height if height is not None else default_height)
                else:
                    mesh = self.geometry.surfaces([(CityClass.BUILDING, _building_lod_geometry(holder, lod))])
                if mesh.num_faces:
                    meshes.append(mesh)
                    lods.append(lod)
                    bad += mesh.bad
                    if broken:
                        self.report.fell_back(self.path, gml_id, lod, broken)
                    break
                failures.append(f"LOD{lod}: {mesh.reason}")
                if mesh.bad:
                    broken.append(f"LOD{lod}: {mesh.bad} unusable polygon(s), {mesh.reason}")
        if not meshes:
            why = "; ".join(failures) or "no geometry"
            self.report.skip(self.path, gml_id, f"no usable geometry at LOD {self.lod_preference} ({why})")
            return None
        lod = min(lods, key=self.lod_preference.index)
        self.report.buildings += 1
        self.report.buildings_per_lod[lod] = self.report.buildings_per_lod.get(lod, 0) + 1
        self._count_degenerate(gml_id, bad, meshes)
        return CityObjectMesh.of(SurfaceMesh.concat(meshes), "building", gml_id, CityClass.BUILDING)

    def _transport(self, obj, gml_id: str) -> CityObjectMesh | None:
        kind = etree.QName(obj.tag).localname
        own = _function_class(obj, TRANSPORT_DEFAULT_CLASS[kind], codes=False)
        failures = []
        for lod in self.lod_preference:
            groups = [(own, obj.findall(f"tran:lod{lod}MultiSurface", NS))]
            if lod >= 2:
                for path, default in (("tran:trafficArea/tran:TrafficArea", own),
                                      ("tran:auxiliaryTrafficArea/tran:AuxiliaryTrafficArea", CityClass.SIDEWALK)):
                    for area in obj.iterfind(path, NS):
                        groups.append((_function_class(area, default, codes=True),
                                       area.findall(f"tran:lod{lod}MultiSurface", NS)))
            mesh = self.geometry.surfaces(groups)
            if mesh.num_faces:
                self.report.roads += 1
                self._count_degenerate(gml_id, mesh.bad, [mesh])
                return CityObjectMesh.of(mesh, "transport", None, own)
            failures.append(f"LOD{lod}: {mesh.reason or 'no surfaces (LOD0 networks are curves)'}")
        self.report.skip(self.path, gml_id, f"no usable {kind} surfaces ({'; '.join(failures)})")
        return None

    def _vegetation(self, obj, gml_id: str) -> CityObjectMesh | None:
        failures = []
        for lod in self.lod_preference:
            geometry = [el for name in ("MultiSurface", "MultiSolid", "Geometry")
                        for el in obj.findall(f"veg:lod{lod}{name}", NS)]
            mesh = self.geometry.surfaces([(CityClass.VEGETATION, geometry)])
            if mesh.num_faces:
                self.report.vegetation += 1
                self._count_degenerate(gml_id, mesh.bad, [mesh])
                return CityObjectMesh.of(mesh, "vegetation", gml_id, CityClass.VEGETATION)
            implicit = obj.find(f"veg:lod{lod}ImplicitRepresentation", NS) is not None
            failures.append(f"LOD{lod}: " + ("only an implicit (prototype) geometry, which is not supported"
                                             if implicit else mesh.reason or "no geometry"))
        self.report.skip(self.path, gml_id, f"no usable vegetation geometry ({'; '.join(failures)})")
        return None

    def _relief(self, obj, gml_id: str) -> CityObjectMesh | None:
        surfaces = list(obj.iterfind("dem:reliefComponent/dem:TINRelief/dem:tin", NS))
        for comp in obj.iterfind("dem:reliefComponent/*", NS):
            name = etree.QName(comp.tag).localname
            if name != "TINRelief":
                self.report.ignore(name)
        mesh = self.geometry.surfaces([(CityClass.TERRAIN, surfaces)])
        if not mesh.num_faces:
            self.report.skip(self.path, gml_id, f"no relief triangles ({mesh.reason or 'no dem:TINRelief/dem:tin'})")
            return None
        self.report.dem_triangles += mesh.num_faces
        self._count_degenerate(gml_id, mesh.bad, [mesh])
        return CityObjectMesh.of(mesh, "relief", None, CityClass.TERRAIN)

    def _footprint_prism(self, holder, height: float | None) -> SurfaceMesh:
        """LOD0: extrude ``lod0FootPrint`` (z = ground) up, or ``lod0RoofEdge`` (z = roof) down, by measuredHeight."""
        for prop, is_roof in (("bldg:lod0FootPrint", False), ("bldg:lod0RoofEdge", True)):
            polygons = [p for el in holder.findall(prop, NS) for p in el.iter(POLYGON)]
            if polygons:
                break
        else:
            return SurfaceMesh.empty("no lod0FootPrint or lod0RoofEdge")
        if height is None or not height > 0:
            return SurfaceMesh.empty("no positive bldg:measuredHeight to extrude the LOD0 outline")
        return self.geometry.prisms(polygons, height, from_top=is_roof, semantic=CityClass.BUILDING)

    def _count_degenerate(self, gml_id: str, bad: int, meshes: list[SurfaceMesh]) -> None:
        if bad:
            self.report.degenerate(self.path, gml_id, bad, next((m.reason for m in meshes if m.reason), ""))


def _building_lod_geometry(holder, lod: int) -> list:
    """Geometry property elements of LOD ``lod`` (1..4) that belong to ``holder`` itself (not its parts)."""
    names = [f"bldg:lod{lod}Solid", f"bldg:lod{lod}MultiSurface"]
    if lod >= 2:
        names += [f"bldg:boundedBy/*/bldg:lod{lod}MultiSurface",
                  f"bldg:outerBuildingInstallation/bldg:BuildingInstallation/bldg:lod{lod}Geometry"]
    if lod >= 3:
        names.append(f"bldg:boundedBy/*/bldg:opening/*/bldg:lod{lod}MultiSurface")
    return [el for name in names for el in holder.iterfind(name, NS)]


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
