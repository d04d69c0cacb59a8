"""What a PLATEAU CityGML import read, kept and skipped: :class:`ImportReport`.

A leaf shared by the importer (:mod:`vlwm.world.citygml`, which stores the report in
``scene.meta['import']``) and the city-object reader (:mod:`vlwm.world.citygml_objects`, which
records what it skips).  Its warnings go to the importer's logger, ``vlwm.world.citygml``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("vlwm.world.citygml")


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
        """Record and log that city object ``gml_id`` of ``path`` was left out."""
        self.skipped.append((str(path), gml_id, reason))
        logger.warning("%s: %s skipped: %s", path, gml_id, reason)

    def degenerate(self, path: Path, gml_id: str, count: int, reason: str) -> None:
        """Record and log ``count`` polygons dropped from ``gml_id``, which was kept."""
        self.degenerate_polygons += count
        logger.warning("%s: %s: %d degenerate polygon(s) skipped (%s)", path, gml_id, count, reason)

    def fell_back(self, path: Path, gml_id: str, lod: int, reasons: list[str]) -> None:
        """Log that ``gml_id`` used LOD ``lod`` because better ones were unusable (``reasons``)."""
        logger.warning("%s: %s: fell back to LOD%d (%s)", path, gml_id, lod, "; ".join(reasons))

    def ignore(self, kind: str) -> None:
        """Count an element of a type this importer does not read."""
        self.ignored[kind] = self.ignored.get(kind, 0) + 1

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
