"""GML geometry of CityGML objects -> classed triangles in the local frame.

The layer under the importer (:mod:`vlwm.world.citygml`) that knows GML 3.1.1 and nothing of
buildings or roads: given geometry property elements (``bldg:lod2MultiSurface``,
``dem:tin``, ...) it finds their ``gml:Polygon`` and ``gml:Triangle`` elements — surface members
linked by ``xlink:href`` included — reads their rings from ``gml:posList`` (or ``gml:pos``),
projects them with one pyproj call and triangulates them (:func:`triangulate_polygons`), or
extrudes LOD0 outlines into closed prisms (:func:`add_prism`).  Unreadable or degenerate polygons
are dropped and counted in the returned :class:`SurfaceMesh`, never raised.

Frames: coordinates are read as geographic (lat, lon degrees; h metres above TP, EPSG:6697 order)
and come out as local x, y (projected CRS minus the origin, metres) with the orthometric height
kept as z; the importer shifts z to local once the origin height is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from vlwm.labels import CityClass
from vlwm.world.builder import add_prism
from vlwm.world.geo import geographic_to_projected
from vlwm.world.scene import NO_INSTANCE
from vlwm.world.triangulate import DegeneratePolygon, SurfaceMesh, triangulate_polygons

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

#: Element and attribute names, in lxml's ``{namespace}name`` form.
POLYGON = f"{{{GML}}}Polygon"
POS_LIST = f"{{{GML}}}posList"
POS = f"{{{GML}}}pos"
GML_ID = f"{{{GML}}}id"
MEMBER = f"{{{CORE}}}cityObjectMember"
_TRIANGLE = f"{{{GML}}}Triangle"
_SURFACE_MEMBER = f"{{{GML}}}surfaceMember"
_EXTERIOR_RING = f"{{{GML}}}exterior/{{{GML}}}LinearRing"
_INTERIOR_RING = f"{{{GML}}}interior/{{{GML}}}LinearRing"
_HREF = f"{{{XLINK}}}href"


@dataclass(frozen=True)
class LocalFrame:
    """Target CRS and origin of the local frame.

    Attributes
    ----------
    epsg : int
        Projected CRS (a Japanese plane-rectangular zone).
    east, north : float
        The origin's easting and northing (m) in that CRS.
    bounds : (emin, nmin, emax, nmax) float
        Projected union of the source files' envelopes (m, CRS coordinates, not local).
    """

    epsg: int
    east: float
    north: float
    bounds: tuple[float, float, float, float]


class GeometryReader:
    """Reads the geometry of one file's city objects into :class:`SurfaceMesh` es in the local frame.

    ``srs_dimension`` is the file's default coordinate dimension (a ``posList`` may override it;
    3 is required); polygons smaller than ``min_polygon_area`` (m²) are degenerate.
    """

    def __init__(self, srs_dimension: int, frame: LocalFrame, min_polygon_area: float):
        self.srs_dimension, self.frame, self.min_polygon_area = srs_dimension, frame, min_polygon_area

    def surfaces(self, groups: list[tuple[CityClass, list]]) -> SurfaceMesh:
        """Triangulate every polygon/triangle under the given geometry property elements.

        ``groups``: (class, property elements).  ``xlink:href`` surface members (a ``lod2Solid``
        pointing at the ``boundedBy`` polygons) resolve within the object; each polygon counts once.
        """
        polygons, classes, seen = [], [], set()
        for semantic, elements in groups:
            for el in elements:
                for poly in chain(el.iter(POLYGON, _TRIANGLE), _linked_polygons(el)):
                    if poly not in seen:
                        seen.add(poly)
                        polygons.append(poly)
                        classes.append(semantic)
        if not polygons:
            return SurfaceMesh.empty("no polygons")
        rings, problems = self.rings(polygons)
        keep = [i for i in range(len(polygons)) if i not in problems]
        if not keep:
            return SurfaceMesh.empty(next(iter(problems.values())), bad=len(problems))
        mesh = triangulate_polygons([rings[i] for i in keep], np.asarray(classes, np.uint8)[keep],
                                    self.min_polygon_area)
        if problems:
            mesh.bad += len(problems)
            mesh.reason = mesh.reason or next(iter(problems.values()))
        return mesh

    def prisms(self, polygons: list, height: float, from_top: bool, semantic: CityClass) -> SurfaceMesh:
        """Closed prisms ``height`` m tall on each (horizontal) outline polygon, holes kept.

        An outline at ground level (``from_top`` False, a footprint) is extruded up from its lowest
        vertex; one at roof level (``from_top`` True, a roof edge) down from its highest.
        """
        all_rings, problems = self.rings(polygons)
        collector, bad, reason = _MeshCollector(), len(problems), next(iter(problems.values()), "")
        for rings in (r for i, r in enumerate(all_rings) if i not in problems):
            z = np.concatenate([r[:, 2] for r in rings])
            z0, z1 = (z.max() - height, z.max()) if from_top else (z.min(), z.min() + height)
            try:
                add_prism(collector, rings[0][:, :2], z0, z1, semantic, holes=[r[:, :2] for r in rings[1:]])
            except DegeneratePolygon as exc:
                bad, reason = bad + 1, f"degenerate outline ({exc})"
        return collector.mesh(bad, reason)

    def rings(self, polygons: list) -> tuple[list[list[np.ndarray]], dict[int, str]]:
        """Rings of each polygon (exterior first) as (k, 3) float64 local x, y, orthometric z, in one pyproj call.

        Returns the rings and ``{polygon index: why}`` for polygons whose coordinates cannot be read
        (their ring list is empty).
        """
        tokens, owner, problems = [], [], {}
        for i, poly in enumerate(polygons):
            for ring in poly.findall(_EXTERIOR_RING)[:1] + poly.findall(_INTERIOR_RING):
                pos_list = ring.find(POS_LIST)
                if pos_list is not None:
                    dim = int(pos_list.get("srsDimension") or self.srs_dimension)
                    words = (pos_list.text or "").split()
                else:
                    dim, words = 3, list(chain.from_iterable((p.text or "").split() for p in ring.iter(POS)))
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


def _linked_polygons(el):
    """Polygons that ``xlink:href`` surface members under ``el`` point to, found within the same object."""
    hrefs = [m.get(_HREF) for m in el.iter(_SURFACE_MEMBER) if m.get(_HREF)]
    if not hrefs:
        return []
    top = el
    while top.getparent() is not None and top.getparent().tag != MEMBER:
        top = top.getparent()
    by_id = {p.get(GML_ID): p for p in top.iter(POLYGON) if p.get(GML_ID)}
    return [by_id[h.lstrip("#")] for h in hrefs if h.lstrip("#") in by_id]


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
