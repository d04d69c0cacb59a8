"""Street layout of a procedural city: major roads, superblocks, narrow streets, sidewalks and the
road graph.

:class:`StreetLayout` lays major roads (arterials and secondary roads) across the whole square on
both axes, emits their carriageways, crossings and sidewalk corners, and hands each superblock
between them to the :class:`BlockFiller` as a tower site or a park, or cuts it by narrow streets
into lots first.  Narrow streets end in T-junctions on the major roads (the sidewalk is cut where
they come through) and line up across a major road when they come close.  :func:`road_graph`
turns all centrelines into a :class:`RoadGraph`.

Frame: local ENU (x east, y north, z up), metres, over ``[-size/2, size/2]²``; a line ``x = c``
runs along y (axis 0), ``y = c`` along x (axis 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from vlwm.labels import CityClass
from vlwm.world.city_buildings import TOWER_SITE_MIN_M, BlockFiller, centrality
from vlwm.world.city_config import MIN_EDGE_BLOCK_M, CityConfig, RoadSpec
from vlwm.world.city_surfaces import GROUND_Z, CitySurfaces
from vlwm.world.roads import RoadGraph

# Road hierarchy, as frontage ranks: what a lot side faces.
EDGE, NARROW, SECONDARY, ARTERIAL = 0, 1, 2, 3
CUT_JITTER = 0.15             #: street positions move up to this fraction of their spacing
EDGE_NODE_INSET_M = 0.5       #: roads leaving the city end in a graph node this far inside its edge
MIN_SUPERBLOCK_M = 30.0       #: smallest superblock side a secondary road may leave
NARROW_SNAP_M = 8.0           #: narrow streets this close across a major road line up into a crossroads
MIN_CUT_GAP_M = 12.0          #: least distance between neighbouring narrow streets (and to a superblock side)
STREET_TREE_MIN_SIDEWALK_M = 4.0  #: street trees only on sidewalks at least this wide
TOWER_OFF_ARTERIAL = 0.35     #: tower probability factor for superblocks not on an arterial

_ROAD, _WALK, _BLOCK = 0, 1, 2  # band kinds across one axis


@dataclass
class Line:
    """A straight road centreline: ``x = c`` (axis 0) or ``y = c`` (axis 1), from ``lo`` to ``hi``
    along the other axis (m); ``stops`` are the positions along it where graph nodes sit."""

    axis: int
    c: float
    lo: float
    hi: float
    spec: RoadSpec
    rank: int
    stops: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.stops += [self.lo, self.hi]


class StreetLayout:
    """Lays out the streets of the city ``cfg`` on ``surfaces``, drawing from ``rng``, and has
    ``blocks`` fill what lies between them."""

    def __init__(self, cfg: CityConfig, rng: np.random.Generator, surfaces: CitySurfaces, blocks: BlockFiller):
        self.cfg, self.rng, self.surfaces, self.blocks = cfg, rng, surfaces, blocks
        self.half = cfg.size / 2
        self.narrow: list[Line] = []

    def lay_out(self) -> list[Line]:
        """Major roads, then every superblock with what fills it; returns all centrelines (major first)."""
        half = self.half
        reach = half - EDGE_NODE_INSET_M
        xlines = [Line(0, c, -reach, reach, spec, rank) for c, spec, rank in self.major_positions()]
        ylines = [Line(1, c, -reach, reach, spec, rank) for c, spec, rank in self.major_positions()]
        for xl in xlines:
            for yl in ylines:
                xl.stops.append(yl.c)
                yl.stops.append(xl.c)
        xbands, ybands = _bands(xlines, half), _bands(ylines, half)
        for x0, x1, kx in xbands:           # major carriageways, crossings, sidewalk corners
            for y0, y1, ky in ybands:
                if _BLOCK in (kx, ky):
                    if _ROAD in (kx, ky):
                        self.surfaces.add_flat((x0, y0, x1, y1), CityClass.ROAD)
                elif kx == ky == _ROAD:
                    self.surfaces.add_flat((x0, y0, x1, y1), CityClass.ROAD)
                elif kx == ky == _WALK:
                    self.surfaces.add_kerb((x0, y0, x1, y1))
                else:
                    self.surfaces.add_flat((x0, y0, x1, y1), CityClass.CROSSWALK)
        xblocks = [(lo, hi) for lo, hi, k in xbands if k == _BLOCK]
        yblocks = [(lo, hi) for lo, hi, k in ybands if k == _BLOCK]
        for j, (ya, yb) in enumerate(yblocks):
            for i, (xa, xb) in enumerate(xblocks):
                sides = (xlines[i - 1] if i > 0 else None, xlines[i] if i < len(xlines) else None,
                         ylines[j - 1] if j > 0 else None, ylines[j] if j < len(ylines) else None)
                self.superblock((xa, ya, xb, yb), sides)
        return xlines + ylines + self.narrow

    # ---------------------------------------------------------------- major roads

    def major_positions(self) -> list[tuple[float, RoadSpec, int]]:
        """Sorted (centre, spec, rank) of the major roads across one axis."""
        cfg, rng, half = self.cfg, self.rng, self.half
        art, sec = cfg.arterial, cfg.secondary
        art_half = art.width / 2 + art.sidewalk
        limit = half - art_half - MIN_EDGE_BLOCK_M
        c = float(np.clip(rng.uniform(-CUT_JITTER, CUT_JITTER) * cfg.arterial_spacing[0], -limit, limit))
        arterials = [c]
        while (c := c + rng.uniform(*cfg.arterial_spacing)) <= limit:
            arterials.append(c)
        c = arterials[0]
        while (c := c - rng.uniform(*cfg.arterial_spacing)) >= -limit:
            arterials.insert(0, c)
        out = [(a, art, ARTERIAL) for a in arterials]
        room = sec.width / 2 + sec.sidewalk + MIN_SUPERBLOCK_M
        ends = [-half] + [a - art_half for a in arterials] + [half]
        starts = [-half] + [a + art_half for a in arterials]
        for lo, hi in zip(starts, ends[1:]):
            out += [(cut, sec, SECONDARY) for cut in _spread(rng, lo, hi, cfg.secondary_spacing)
                    if lo + room <= cut <= hi - room]
        return sorted(out, key=lambda t: t[0])

    # ---------------------------------------------------------------- superblocks

    def superblock(self, rect, sides: tuple[Line | None, ...]) -> None:
        """Fill a superblock ``rect`` bounded by major lines ``sides`` = (west, east, south, north)."""
        cfg, rng = self.cfg, self.rng
        xa, ya, xb, yb = rect
        r = centrality(rect, self.half)
        on_arterial = any(s is not None and s.rank == ARTERIAL for s in sides)
        p_tower = cfg.tower_fraction * max(0.0, 1 - r / cfg.tower_radius)
        p_tower *= (1.0 if on_arterial else TOWER_OFF_ARTERIAL) * (min(xb - xa, yb - ya) >= TOWER_SITE_MIN_M)
        u = rng.uniform()
        cuts: tuple[list[Line], list[Line]] = ([], [])
        if u < p_tower:
            self.blocks.tower_site(rect)
        elif u < p_tower + cfg.large_park_fraction:
            self.blocks.park(rect, cls=CityClass.GRASS, spacing=cfg.park_tree_spacing, keep=0.75)
        else:
            cuts = self.urban_block(rect, sides)
        self.sidewalks(rect, sides, *cuts)

    def urban_block(self, rect, sides: tuple[Line | None, ...]) -> tuple[list[Line], list[Line]]:
        """Cut a superblock into lots by narrow streets and fill them; returns the x = c and y = c streets."""
        cfg, rng = self.cfg, self.rng
        xa, ya, xb, yb = rect
        west, east, south, north = sides
        long_x = rng.uniform() < 0.5                      # lots long along x, or along y
        xcuts = [Line(0, c, south.c if south else ya + EDGE_NODE_INSET_M,
                      north.c if north else yb - EDGE_NODE_INSET_M, self.narrow_spec(), NARROW)
                 for c in self.narrow_positions(xa, xb, cfg.lot_length if long_x else cfg.lot_depth, (south, north))]
        ycuts = [Line(1, c, west.c if west else xa + EDGE_NODE_INSET_M,
                      east.c if east else xb - EDGE_NODE_INSET_M, self.narrow_spec(), NARROW)
                 for c in self.narrow_positions(ya, yb, cfg.lot_depth if long_x else cfg.lot_length, (west, east))]
        for xl in xcuts:
            xl.stops += [yl.c for yl in ycuts]
        for yl in ycuts:
            yl.stops += [xl.c for xl in xcuts]
        self.narrow += xcuts + ycuts
        xs = _split(xa, xb, [(l.c - l.spec.width / 2, l.c + l.spec.width / 2) for l in xcuts])
        ys = _split(ya, yb, [(l.c - l.spec.width / 2, l.c + l.spec.width / 2) for l in ycuts])
        for j, (y0, y1, yroad) in enumerate(ys):
            for i, (x0, x1, xroad) in enumerate(xs):
                if xroad or yroad:
                    self.surfaces.add_flat((x0, y0, x1, y1), CityClass.ROAD)
                    continue
                # A lot side on the superblock boundary faces the major road there (or the edge).
                ranks = [NARROW if k else (s.rank if s is not None else EDGE)
                         for k, s in zip((i, len(xs) - 1 - i, j, len(ys) - 1 - j), sides)]
                self.blocks.lot((x0, y0, x1, y1), ranks)
        return xcuts, ycuts

    def sidewalks(self, rect, sides: tuple[Line | None, ...], xcuts: list[Line], ycuts: list[Line]) -> None:
        """Sidewalks of the major roads around ``rect``, cut where its narrow streets come through,
        and the T-junctions of those streets on the major roads."""
        xa, ya, xb, yb = rect
        for k, line in enumerate(sides):
            if line is None:
                continue
            cutters = ycuts if k < 2 else xcuts           # narrow streets ending on this side
            line.stops += [l.c for l in cutters]
            s = line.spec.sidewalk
            if s <= 0:
                continue
            along_axis = 0 if k < 2 else 1               # west/east sidewalks run along y
            lo, hi = (ya, yb) if k < 2 else (xa, xb)
            edge = rect[(0, 2, 1, 3)[k]]
            across = (edge - s, edge) if k in (0, 2) else (edge, edge + s)
            for a, b, mouth in _split(lo, hi, [(l.c - l.spec.width / 2, l.c + l.spec.width / 2) for l in cutters]):
                box = _rect(along_axis, (a, b), across)
                if mouth:                                 # the narrow street runs through to the kerb
                    self.surfaces.add_flat(box, CityClass.ROAD)
                    continue
                self.surfaces.add_kerb(box)
                if s >= STREET_TREE_MIN_SIDEWALK_M and self.cfg.street_tree_spacing > 0:
                    self.blocks.street_trees(along_axis, (a, b), sum(across) / 2, s / 2)

    # ---------------------------------------------------------------- narrow streets

    def narrow_positions(self, lo: float, hi: float, spacing: tuple[float, float],
                         ends: tuple[Line | None, Line | None]) -> list[float]:
        """Narrow-street positions across ``[lo, hi]``; one that comes within ``NARROW_SNAP_M`` of a
        street already ending on a bounding major road ``ends`` lines up with it (a crossroads)."""
        taken = np.array(sorted(t for line in ends if line is not None for t in line.stops if lo < t < hi))
        out: list[float] = []
        for c in _spread(self.rng, lo, hi, spacing):
            if len(taken):
                t = taken[np.argmin(np.abs(taken - c))]
                c = float(t) if abs(t - c) < NARROW_SNAP_M else c
            if c - (out[-1] if out else lo) >= MIN_CUT_GAP_M and hi - c >= MIN_CUT_GAP_M:
                out.append(c)
        return out

    def narrow_spec(self) -> RoadSpec:
        w = float(self.rng.uniform(*self.cfg.narrow_width))
        return RoadSpec(w, 2 if w >= self.cfg.narrow_two_lane_width else 1, 0.0)


def road_graph(lines: list[Line]) -> RoadGraph:
    """Nodes at every stop of every centreline (shared where lines meet), edges between consecutive stops."""
    points, edges, width, lanes, walk = [], [], [], [], []
    count = 0
    for line in lines:
        s = np.unique(np.asarray(line.stops, dtype=np.float64))
        c = np.full(len(s), line.c)
        points.append(np.column_stack([c, s] if line.axis == 0 else [s, c]))
        k = np.arange(len(s) - 1) + count
        edges.append(np.stack([k, k + 1], 1))
        count += len(s)
        width += [line.spec.width] * (len(s) - 1)
        lanes += [line.spec.lanes] * (len(s) - 1)
        walk += [line.spec.sidewalk] * (len(s) - 1)
    nodes, inverse = np.unique(np.round(np.concatenate(points), 3), axis=0, return_inverse=True)
    return RoadGraph(
        nodes=np.column_stack([nodes, np.full(len(nodes), GROUND_Z)]),
        edges=inverse.reshape(-1)[np.concatenate(edges)],
        width=np.array(width), lanes=np.array(lanes), sidewalk=np.array(walk),
    )


def _spread(rng: np.random.Generator, lo: float, hi: float, spacing: tuple[float, float]) -> list[float]:
    """Cut positions splitting ``[lo, hi]`` into pieces about ``spacing`` (m) long, jittered."""
    n = int(round((hi - lo) / rng.uniform(*spacing)))
    if n < 2:
        return []
    step = (hi - lo) / n
    return (lo + step * (np.arange(1, n) + rng.uniform(-CUT_JITTER, CUT_JITTER, n - 1))).tolist()


def _bands(lines: list[Line], half: float) -> list[tuple[float, float, int]]:
    """Partition of ``[-half, half]`` across major ``lines``: (lo, hi, kind) with kind road/walk/block."""
    bands, cursor = [], -half
    for line in lines:
        k0, k1, s = line.c - line.spec.width / 2, line.c + line.spec.width / 2, line.spec.sidewalk
        bands.append((cursor, k0 - s, _BLOCK))
        if s > 0:
            bands.append((k0 - s, k0, _WALK))
        bands.append((k0, k1, _ROAD))
        if s > 0:
            bands.append((k1, k1 + s, _WALK))
        cursor = k1 + s
    bands.append((cursor, half, _BLOCK))
    return bands


def _split(lo: float, hi: float, cuts: list[tuple[float, float]]) -> list[tuple[float, float, bool]]:
    """``[lo, hi]`` as consecutive (a, b, is_cut) pieces around the sorted, disjoint ``cuts``."""
    pieces, cursor = [], lo
    for a, b in cuts:
        pieces += [(cursor, a, False), (a, b, True)]
        cursor = b
    return pieces + [(cursor, hi, False)]


def _rect(axis: int, along: tuple[float, float], across: tuple[float, float]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a strip running along y (axis 0) or x (axis 1)."""
    return (across[0], along[0], across[1], along[1]) if axis == 0 else (along[0], across[0], along[1], across[1])
