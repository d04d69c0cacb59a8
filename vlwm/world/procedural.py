"""Procedural Tokyo-like city: the project's embedded default world (nothing to download).

Layout, in the local ENU frame (x east, y north, z up, metres) over the square
``[-size/2, size/2]²`` with flat ground at ``z = 0``:

1. **Major roads** run across the whole city on both axes: arterials (22 m carriageway, 6 lanes,
   5 m sidewalks) every 350–500 m with one near the centre, and secondary roads (12 m, 4 lanes,
   3 m sidewalks) every 110–170 m between them.  They cut the city into *superblocks*.
2. A superblock becomes a **tower site** (likeliest at the centre and on arterials: one or two
   towers of 60–200 m on podiums, with stepped crowns, in a paved plaza), a **park** (grass,
   trees, a paved square) or — mostly — an **urban block** that narrow streets (4–6 m, 1–2
   lanes, no sidewalk) cut into lots of 28–45 m × 55–100 m.  Narrow streets end in T-junctions
   on the major roads, offset from one superblock to the next as in Tokyo.
3. A lot holds one or two rows of parcels facing its streets; each parcel gets a house (2–3
   storeys of 3 m, small, dense) or a mid-rise (4–10 storeys of 3.5 m, likelier on major roads
   and near the centre), some L-shaped.  A few lots are pocket parks or paved plazas.

Surfaces partition the square exactly, so a ray pointing down anywhere hits something:
carriageways (ROAD at ``z = 0``; CROSSWALK where a major road crosses a sidewalk line),
sidewalks (SIDEWALK, closed slabs raised ``kerb_height`` above the road; where a narrow street
meets a major road the sidewalk is cut and the carriageway runs through), and lot ground flush at
``z = 0`` (TERRAIN; GRASS in parks; SIDEWALK in plazas and tower forecourts) with the building
footprints cut out.  Buildings (``bldg_000123``) and trees (``tree_000045``) are instances made
of closed, outward-wound solids; roads and ground belong to no instance (-1).  The road graph
follows the carriageway centrelines.

Same config -> identical scene: one ``np.random.default_rng(seed)`` makes every draw, in a fixed
order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from vlwm.labels import CityClass
from vlwm.world.builder import SceneBuilder, box_mesh, cylinder_mesh, ellipsoid_mesh
from vlwm.world.geo import TOKYO_STATION_LATLON, GeoOrigin
from vlwm.world.roads import RoadGraph
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain
from vlwm.world.triangulate import triangulate_2d

GENERATOR_VERSION = 1
GROUND_Z = 0.0  #: height (m) of the flat ground, carriageways and lot surfaces

# Road hierarchy, as frontage ranks: what a lot side faces.
EDGE, NARROW, SECONDARY, ARTERIAL = 0, 1, 2, 3
CUT_JITTER = 0.15             #: street positions move up to this fraction of their spacing
EDGE_NODE_INSET_M = 0.5       #: roads leaving the city end in a graph node this far inside its edge
MIN_EDGE_BLOCK_M = 30.0       #: city kept between an arterial's sidewalk and the city edge
MIN_SUPERBLOCK_M = 30.0       #: smallest superblock side a secondary road may leave
NARROW_SNAP_M = 8.0           #: narrow streets this close across a major road line up into a crossroads
MIN_CUT_GAP_M = 12.0          #: least distance between neighbouring narrow streets (and to a superblock side)
STREET_TREE_MIN_SIDEWALK_M = 4.0  #: street trees only on sidewalks at least this wide

# Lots and buildings.
ROW_MIN_DEPTH_M = 9.0         #: a lot splits into two back-to-back rows if its short side is >= 2x this
MIN_BUILDING_SIDE_M = 3.0     #: narrower footprints are left as open ground
BACK_GAP_M = 0.5              #: gap between a building and the back of its row
ROOF_EXTRA_M = (0.3, 1.2)     #: roof / parapet above the top storey (m), uniform
HOUSE_DEPTH_M, MIDRISE_DEPTH_M = (7.0, 12.0), (12.0, 25.0)  #: footprint depth (m), uniform
HOUSE_SIDE_GAP_M, MIDRISE_SIDE_GAP_M = (0.4, 0.8), (0.3, 0.6)  #: gap to each parcel side (m)
HOUSE_SETBACK_M, MIDRISE_SETBACK_M = (0.5, 1.5), (0.3, 1.0)    #: setback from the street (m)
HOUSE_L_SHAPE_P, MIDRISE_L_SHAPE_P = 0.35, 0.2
MIDRISE_STOREY_DECAY = 0.7    #: P(storeys = lo + k) ∝ decay**k: most mid-rises are 4–6 storeys
MIDRISE_FRONTAGE_BOOST = (0.0, 0.0, 0.35, 0.7)  #: added mid-rise probability, by frontage rank
MIDRISE_CENTRE_BOOST = 0.25   #: added mid-rise probability at the centre, falling to 0 at the edge

# Towers.
TOWER_SITE_MIN_M = 45.0       #: a superblock narrower than this is never a tower site
TOWER_PLAZA_MARGIN_M = (4.0, 8.0)
TOWER_GAP_M = (8.0, 15.0)     #: plaza between two towers of one site
TOWER_PODIUM_STOREYS = (3, 6)
TOWER_PODIUM_INSET = (0.0, 0.15)  #: podium inset from its site, as a fraction of the site's short side
TOWER_TIER_INSET_M = (3.0, 6.0)   #: how far each tier steps in from the one below
TOWER_CROWN_P = 0.6           #: probability of a stepped crown tier
TOWER_OFF_ARTERIAL = 0.35     #: tower probability factor for superblocks not on an arterial
TOWER_HEIGHT_FALLOFF = 0.6    #: tower height scale drops by this fraction from centre to edge

# Parks and trees (trunk: cylinder; crown: ellipsoid above it).
PARK_SQUARE_MIN_M = 40.0      #: parks at least this wide get a paved square in the middle
PARK_SQUARE_FRACTION = (0.3, 0.45)  #: side of that square, as a fraction of the park's side
TRUNK_RADIUS_M, TRUNK_HEIGHT_M = (0.15, 0.3), (2.0, 3.5)
CROWN_RADIUS_M = (2.0, 3.0)   #: horizontal crown semi-axis (m); vertical one is 1.0–1.4x this
TREE_JITTER_M = 0.8           #: park trees move up to this far from their grid point
TRUNK_SEGMENTS, CROWN_RINGS, CROWN_SEGMENTS = 6, 4, 8

_ROAD, _WALK, _BLOCK = 0, 1, 2  # band kinds across one axis


@dataclass(frozen=True)
class RoadSpec:
    """Cross-section of one road class."""

    width: float
    """Carriageway width, kerb to kerb (m)."""
    lanes: int
    """Lane count, both directions together."""
    sidewalk: float
    """Sidewalk width on each side (m); 0 for none."""


@dataclass(frozen=True)
class CityConfig:
    """Everything that shapes a procedural city; ``generate_city(cfg)`` is a pure function of it."""

    seed: int = 0
    """Seed of the one random generator every draw comes from."""
    size: float = 1000.0
    """Side of the square city (m), centred on the local origin."""
    latitude: float = TOKYO_STATION_LATLON[0]
    """JGD2011 latitude (deg) of the local origin."""
    longitude: float = TOKYO_STATION_LATLON[1]
    """JGD2011 longitude (deg) of the local origin."""
    arterial: RoadSpec = RoadSpec(22.0, 6, 5.0)
    """Arterial roads (Tokyo's 'dōri')."""
    secondary: RoadSpec = RoadSpec(12.0, 4, 3.0)
    """Secondary roads."""
    narrow_width: tuple[float, float] = (4.0, 6.0)
    """Carriageway width range (m) of narrow streets (no sidewalk), uniform."""
    narrow_two_lane_width: float = 5.5
    """Narrow streets at least this wide (m) have two lanes, the others one."""
    arterial_spacing: tuple[float, float] = (350.0, 500.0)
    """Distance range (m) between neighbouring arterials."""
    secondary_spacing: tuple[float, float] = (110.0, 170.0)
    """Target distance range (m) between neighbouring major roads, arterials included."""
    lot_depth: tuple[float, float] = (28.0, 45.0)
    """Target narrow-street spacing (m) across the short side of lots."""
    lot_length: tuple[float, float] = (55.0, 100.0)
    """Target narrow-street spacing (m) across the long side of lots."""
    kerb_height: float = 0.15
    """Height (m) of sidewalk slabs above the carriageway."""
    house_storeys: tuple[int, int] = (2, 3)
    """Storey range of houses (inclusive)."""
    midrise_storeys: tuple[int, int] = (4, 10)
    """Storey range of mid-rise buildings (inclusive)."""
    storey_height: float = 3.0
    """Storey height (m) of houses."""
    office_storey_height: float = 3.5
    """Storey height (m) of mid-rises, podiums and towers."""
    house_frontage: tuple[float, float] = (6.0, 11.0)
    """Parcel width range (m) along the street for houses."""
    midrise_frontage: tuple[float, float] = (10.0, 24.0)
    """Parcel width range (m) along the street for mid-rises."""
    midrise_fraction: float = 0.12
    """Probability that a parcel on a narrow street at the city edge holds a mid-rise (higher on
    major roads and towards the centre)."""
    tower_fraction: float = 0.9
    """Probability that a superblock at the centre on an arterial is a tower site (falls linearly
    to 0 at ``tower_radius``, and by the factor ``TOWER_OFF_ARTERIAL`` off arterials)."""
    tower_radius: float = 0.7
    """Distance from the centre, as a fraction of ``size/2``, beyond which there are no towers."""
    tower_height: tuple[float, float] = (60.0, 200.0)
    """Tower height range (m)."""
    large_park_fraction: float = 0.04
    """Probability that a superblock is a park."""
    park_fraction: float = 0.05
    """Probability that a lot is a pocket park."""
    plaza_fraction: float = 0.02
    """Probability that a lot at the city edge is a paved plaza (doubling towards the centre)."""
    park_tree_spacing: float = 8.0
    """Grid spacing (m) of trees in parks (plazas: twice this)."""
    street_tree_spacing: float = 12.0
    """Spacing (m) of street trees on wide sidewalks; 0 for none."""

    def __post_init__(self):
        for name in ("narrow_width", "arterial_spacing", "secondary_spacing", "lot_depth", "lot_length",
                     "house_storeys", "midrise_storeys", "house_frontage", "midrise_frontage", "tower_height"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"CityConfig.{name} must be a range 0 < lo <= hi, got {(lo, hi)}")
        for name in ("arterial", "secondary"):
            spec = getattr(self, name)
            if not (spec.width > 0 and spec.lanes >= 1 and spec.sidewalk >= 0):
                raise ValueError(f"CityConfig.{name} needs width > 0, lanes >= 1, sidewalk >= 0; got {spec}")
        for name in ("midrise_fraction", "tower_fraction", "large_park_fraction", "park_fraction", "plaza_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"CityConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.park_fraction + 2 * self.plaza_fraction > 1:
            raise ValueError("CityConfig.park_fraction + 2 * plaza_fraction must not exceed 1")
        for name in ("storey_height", "office_storey_height", "park_tree_spacing", "narrow_two_lane_width",
                     "tower_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CityConfig.{name} must be positive, got {getattr(self, name)}")
        if self.kerb_height < 0 or self.street_tree_spacing < 0:
            raise ValueError("CityConfig.kerb_height and street_tree_spacing must not be negative")
        if self.tower_height[0] < 2 * TOWER_PODIUM_STOREYS[1] * self.office_storey_height:
            raise ValueError(f"CityConfig.tower_height must start at >= twice the tallest podium "
                             f"({2 * TOWER_PODIUM_STOREYS[1] * self.office_storey_height} m)")
        need = 2 * (self.arterial.width / 2 + self.arterial.sidewalk + MIN_EDGE_BLOCK_M)
        if self.size < need:
            raise ValueError(f"CityConfig.size {self.size} m is too small: an arterial with its edge blocks "
                             f"needs {need:.0f} m")

    @classmethod
    def from_dict(cls, d: dict) -> "CityConfig":
        """The config from ``asdict(config)`` (e.g. a scene's ``meta['config']``); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CityConfig: unknown keys {unknown}; known: {sorted(known)}")
        kw = {k: (RoadSpec(**v) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v)
              for k, v in d.items()}
        return cls(**kw)


def generate_city(config: CityConfig = CityConfig()) -> Scene:
    """A seeded Tokyo-like city: roads, sidewalks, blocks of buildings, parks, trees, road graph.

    Deterministic: the same ``config`` gives a byte-identical scene.
    """
    city = _City(config)
    half = config.size / 2
    reach = half - EDGE_NODE_INSET_M
    xlines = [_Line(0, c, -reach, reach, spec, rank) for c, spec, rank in city.major_positions()]
    ylines = [_Line(1, c, -reach, reach, spec, rank) for c, spec, rank in city.major_positions()]
    for xl in xlines:
        for yl in ylines:
            xl.stops.append(yl.c)
            yl.stops.append(xl.c)
    xbands, ybands = _bands(xlines, half), _bands(ylines, half)
    for x0, x1, kx in xbands:           # major carriageways, crossings, sidewalk corners
        for y0, y1, ky in ybands:
            if _BLOCK in (kx, ky):
                if _ROAD in (kx, ky):
                    city.flat.append((x0, y0, x1, y1, CityClass.ROAD))
            elif kx == ky == _ROAD:
                city.flat.append((x0, y0, x1, y1, CityClass.ROAD))
            elif kx == ky == _WALK:
                city.kerbs.append((x0, y0, x1, y1))
            else:
                city.flat.append((x0, y0, x1, y1, CityClass.CROSSWALK))
    xblocks = [(lo, hi) for lo, hi, k in xbands if k == _BLOCK]
    yblocks = [(lo, hi) for lo, hi, k in ybands if k == _BLOCK]
    for j, (ya, yb) in enumerate(yblocks):
        for i, (xa, xb) in enumerate(xblocks):
            sides = (xlines[i - 1] if i > 0 else None, xlines[i] if i < len(xlines) else None,
                     ylines[j - 1] if j > 0 else None, ylines[j] if j < len(ylines) else None)
            city.superblock((xa, ya, xb, yb), sides)
    return city.build(xlines + ylines)


# ------------------------------------------------------------------------------ street layout


@dataclass
class _Line:
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


def _spread(rng: np.random.Generator, lo: float, hi: float, spacing: tuple[float, float]) -> list[float]:
    """Cut positions splitting ``[lo, hi]`` into pieces about ``spacing`` (m) long, jittered."""
    n = int(round((hi - lo) / rng.uniform(*spacing)))
    if n < 2:
        return []
    step = (hi - lo) / n
    return (lo + step * (np.arange(1, n) + rng.uniform(-CUT_JITTER, CUT_JITTER, n - 1))).tolist()


def _bands(lines: list[_Line], half: float) -> list[tuple[float, float, int]]:
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


def _corners(rect) -> np.ndarray:
    """(4, 2) counter-clockwise corners of ``rect`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = rect
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _inset(rect, d: float):
    x0, y0, x1, y1 = rect
    return (x0 + d, y0 + d, x1 - d, y1 - d)


# ------------------------------------------------------------------------------ the city


class _City:
    """Accumulates one city: flat surfaces, kerbs and trees (emitted in batches at the end),
    buildings and cut-out ground (emitted as they come)."""

    def __init__(self, cfg: CityConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.half = cfg.size / 2
        self.builder = SceneBuilder()
        self.flat: list[tuple] = []       # (x0, y0, x1, y1, CityClass) at ground height
        self.kerbs: list[tuple] = []      # (x0, y0, x1, y1) sidewalk slabs
        self.trees: list[np.ndarray] = []  # (n, 7): x, y, z, trunk r, trunk h, crown r, crown rz
        self.narrow: list[_Line] = []
        self.num_buildings = 0

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

    def superblock(self, rect, sides: tuple[_Line | None, ...]) -> None:
        """Fill a superblock ``rect`` bounded by major lines ``sides`` = (west, east, south, north)."""
        cfg, rng = self.cfg, self.rng
        xa, ya, xb, yb = rect
        r = self.centrality(rect)
        on_arterial = any(s is not None and s.rank == ARTERIAL for s in sides)
        p_tower = cfg.tower_fraction * max(0.0, 1 - r / cfg.tower_radius)
        p_tower *= (1.0 if on_arterial else TOWER_OFF_ARTERIAL) * (min(xb - xa, yb - ya) >= TOWER_SITE_MIN_M)
        u = rng.uniform()
        cuts: tuple[list[_Line], list[_Line]] = ([], [])
        if u < p_tower:
            self.tower_site(rect)
        elif u < p_tower + cfg.large_park_fraction:
            self.park(rect, cls=CityClass.GRASS, spacing=cfg.park_tree_spacing, keep=0.75)
        else:
            cuts = self.urban_block(rect, sides)
        self.sidewalks(rect, sides, *cuts)

    def urban_block(self, rect, sides: tuple[_Line | None, ...]) -> tuple[list[_Line], list[_Line]]:
        """Cut a superblock into lots by narrow streets and fill them; returns the x = c and y = c streets."""
        cfg, rng = self.cfg, self.rng
        xa, ya, xb, yb = rect
        west, east, south, north = sides
        long_x = rng.uniform() < 0.5                      # lots long along x, or along y
        xcuts = [_Line(0, c, south.c if south else ya + EDGE_NODE_INSET_M,
                       north.c if north else yb - EDGE_NODE_INSET_M, self.narrow_spec(), NARROW)
                 for c in self.narrow_positions(xa, xb, cfg.lot_length if long_x else cfg.lot_depth, (south, north))]
        ycuts = [_Line(1, c, west.c if west else xa + EDGE_NODE_INSET_M,
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
                    self.flat.append((x0, y0, x1, y1, CityClass.ROAD))
                    continue
                # A lot side on the superblock boundary faces the major road there (or the edge).
                ranks = [NARROW if k else (s.rank if s is not None else EDGE)
                         for k, s in zip((i, len(xs) - 1 - i, j, len(ys) - 1 - j), sides)]
                self.lot((x0, y0, x1, y1), ranks)
        return xcuts, ycuts

    def sidewalks(self, rect, sides: tuple[_Line | None, ...], xcuts: list[_Line], ycuts: list[_Line]) -> None:
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
                    self.flat.append((*box, CityClass.ROAD))
                    continue
                self.kerbs.append(box)
                if s >= STREET_TREE_MIN_SIDEWALK_M and self.cfg.street_tree_spacing > 0:
                    self.street_trees(along_axis, (a, b), sum(across) / 2, s / 2)

    def narrow_positions(self, lo: float, hi: float, spacing: tuple[float, float],
                         ends: tuple[_Line | None, _Line | None]) -> list[float]:
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

    def centrality(self, rect) -> float:
        """Distance of ``rect``'s centre from the city centre, as a fraction of ``size/2`` (clipped to 1)."""
        x0, y0, x1, y1 = rect
        return min(1.0, float(np.hypot(x0 + x1, y0 + y1)) / 2 / self.half)

    # ---------------------------------------------------------------- lots and buildings

    def lot(self, rect, ranks: list[int]) -> None:
        """A lot between streets; ``ranks`` = frontage rank of its (west, east, south, north) sides."""
        cfg, rng = self.cfg, self.rng
        r = self.centrality(rect)
        u = rng.uniform()
        if u < cfg.park_fraction:
            return self.park(rect, cls=CityClass.GRASS, spacing=cfg.park_tree_spacing, keep=0.75)
        if u < cfg.park_fraction + cfg.plaza_fraction * (2 - r):
            return self.park(rect, cls=CityClass.SIDEWALK, spacing=2 * cfg.park_tree_spacing, keep=0.5)
        x0, y0, x1, y1 = rect
        along_x = x1 - x0 >= y1 - y0                     # rows run along the long side
        short = y1 - y0 if along_x else x1 - x0
        lo_side, hi_side = ("S", "N") if along_x else ("W", "E")
        lo_rank, hi_rank = (ranks[2], ranks[3]) if along_x else (ranks[0], ranks[1])
        if short >= 2 * ROW_MIN_DEPTH_M:
            d = short * rng.uniform(0.42, 0.58)
            rows = [(lo_side, lo_rank, d), (hi_side, hi_rank, short - d)]
        else:
            rows = [(lo_side, lo_rank, short) if lo_rank >= hi_rank else (hi_side, hi_rank, short)]
        footprints = []
        for front, rank, depth in rows:
            footprints += self.row(rect, front, depth, rank, r)
        self.ground(rect, CityClass.TERRAIN, footprints)

    def row(self, rect, front: str, depth: float, rank: int, r: float) -> list[np.ndarray]:
        """Parcels along the ``front`` side of ``rect``, ``depth`` m deep; returns the footprints (k, 2)."""
        cfg, rng = self.cfg, self.rng
        x0, y0, x1, y1 = rect
        length = x1 - x0 if front in "SN" else y1 - y0
        p_mid = min(1.0, cfg.midrise_fraction + MIDRISE_FRONTAGE_BOOST[rank] + MIDRISE_CENTRE_BOOST * (1 - r))
        footprints, u = [], 0.0
        while length - u > 1e-6:
            mid = rng.uniform() < p_mid
            f = rng.uniform(*(cfg.midrise_frontage if mid else cfg.house_frontage))
            if length - (u + f) < cfg.house_frontage[0]:
                f = length - u                            # the last parcel takes the rest
            gap = rng.uniform(*(MIDRISE_SIDE_GAP_M if mid else HOUSE_SIDE_GAP_M))
            setback = rng.uniform(*(MIDRISE_SETBACK_M if mid else HOUSE_SETBACK_M))
            d = min(rng.uniform(*(MIDRISE_DEPTH_M if mid else HOUSE_DEPTH_M)), depth - setback - BACK_GAP_M)
            w = f - 2 * gap
            parcel, u = (u, u + f), u + f
            if w < MIN_BUILDING_SIDE_M or d < MIN_BUILDING_SIDE_M:
                continue
            a, b, v0, v1 = parcel[0] + gap, parcel[1] - gap, setback, setback + d
            local = np.array([[a, v0], [b, v0], [b, v1], [a, v1]])
            if rng.uniform() < (MIDRISE_L_SHAPE_P if mid else HOUSE_L_SHAPE_P):
                cw, cd = w * rng.uniform(0.3, 0.5), d * rng.uniform(0.3, 0.5)
                if rng.uniform() < 0.5:                   # notch at the back-left or back-right corner
                    local = np.array([[a, v0], [b, v0], [b, v1], [a + cw, v1], [a + cw, v1 - cd], [a, v1 - cd]])
                else:
                    local = np.array([[a, v0], [b, v0], [b, v1 - cd], [b - cw, v1 - cd], [b - cw, v1], [a, v1]])
            if mid:
                lo, hi = cfg.midrise_storeys
                k = np.arange(lo, hi + 1)
                p = MIDRISE_STOREY_DECAY ** (k - lo)
                height = rng.choice(k, p=p / p.sum()) * cfg.office_storey_height
            else:
                height = rng.integers(cfg.house_storeys[0], cfg.house_storeys[1] + 1) * cfg.storey_height
            height += rng.uniform(*ROOF_EXTRA_M)
            u_, v_ = local[:, 0], local[:, 1]
            world = {"S": (x0 + u_, y0 + v_), "N": (x0 + u_, y1 - v_),
                     "W": (x0 + v_, y0 + u_), "E": (x1 - v_, y0 + u_)}[front]
            fp = np.column_stack(world)
            self.building([(fp, GROUND_Z, height)])
            footprints.append(fp)
        return footprints

    def building(self, tiers: list[tuple[np.ndarray, float, float]]) -> None:
        """One building instance of stacked closed prisms: (footprint (k, 2), z0, z1) per tier."""
        inst = self.builder.new_instance(f"bldg_{self.num_buildings:06d}", CityClass.BUILDING)
        self.num_buildings += 1
        for fp, z0, z1 in tiers:
            self.builder.add_prism(fp, z0, z1, CityClass.BUILDING, inst)

    def tower_site(self, rect) -> None:
        """One or two stepped towers on podiums in a paved plaza filling superblock ``rect``."""
        cfg, rng = self.cfg, self.rng
        x0, y0, x1, y1 = _inset(rect, rng.uniform(*TOWER_PLAZA_MARGIN_M))
        along_x = x1 - x0 >= y1 - y0
        lo, hi = (x0, x1) if along_x else (y0, y1)
        gap = rng.uniform(*TOWER_GAP_M)
        if hi - lo >= 2 * TOWER_SITE_MIN_M + gap:
            m = (lo + hi) / 2 + rng.uniform(-0.1, 0.1) * (hi - lo)
            spans = [(lo, m - gap / 2), (m + gap / 2, hi)]
        else:
            spans = [(lo, hi)]
        podiums = []
        for a, b in spans:
            site = (a, y0, b, y1) if along_x else (x0, a, x1, b)
            site = _inset(site, rng.uniform(*TOWER_PODIUM_INSET) * min(site[2] - site[0], site[3] - site[1]))
            r = self.centrality(site)
            sh = cfg.office_storey_height
            podium_h = rng.integers(TOWER_PODIUM_STOREYS[0], TOWER_PODIUM_STOREYS[1] + 1) * sh
            t_lo, t_hi = cfg.tower_height
            h = t_lo + (t_hi - t_lo) * rng.uniform() * (1 - TOWER_HEIGHT_FALLOFF * r)
            h = max(np.floor(h / sh) * sh, t_lo)
            # Shaft: a near-square centred (with jitter) on the podium, stepped in on every side.
            sx0, sy0, sx1, sy1 = _inset(site, rng.uniform(*TOWER_TIER_INSET_M))
            side = min(sx1 - sx0, sy1 - sy0) * rng.uniform(0.6, 0.85)
            length = min(side * rng.uniform(1.0, 1.5), sx1 - sx0 if along_x else sy1 - sy0)
            w, d = (length, side) if along_x else (side, length)
            cx = sx0 + w / 2 + rng.uniform() * max(0.0, sx1 - sx0 - w)
            cy = sy0 + d / 2 + rng.uniform() * max(0.0, sy1 - sy0 - d)
            shaft = (cx - w / 2, cy - d / 2, cx + w / 2, cy + d / 2)
            tiers = [(_corners(site), GROUND_Z, podium_h)]
            inset = rng.uniform(*TOWER_TIER_INSET_M)
            if rng.uniform() < TOWER_CROWN_P and min(w, d) > 2 * inset + MIN_BUILDING_SIDE_M:
                h1 = h * rng.uniform(0.75, 0.9)
                tiers += [(_corners(shaft), podium_h, h1), (_corners(_inset(shaft, inset)), h1, h)]
            else:
                tiers.append((_corners(shaft), podium_h, h))
            self.building(tiers)
            podiums.append(_corners(site))
        self.ground(rect, CityClass.SIDEWALK, podiums)

    # ---------------------------------------------------------------- parks, plazas, trees

    def park(self, rect, cls: CityClass, spacing: float, keep: float) -> None:
        """Open ground of ``cls`` (GRASS: park with a paved square if large; SIDEWALK: plaza) with trees."""
        rng = self.rng
        x0, y0, x1, y1 = rect
        holes, square = [], None
        if cls == CityClass.GRASS and min(x1 - x0, y1 - y0) >= PARK_SQUARE_MIN_M:
            hx, hy = rng.uniform(*PARK_SQUARE_FRACTION, 2) * [x1 - x0, y1 - y0] / 2
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            square = (cx - hx, cy - hy, cx + hx, cy + hy)
            self.flat.append((*square, CityClass.SIDEWALK))
            holes.append(_corners(square))
        self.ground(rect, cls, holes)
        inset = CROWN_RADIUS_M[1] + TREE_JITTER_M + 0.3
        gx = np.arange(x0 + inset, x1 - inset + 1e-9, spacing)
        gy = np.arange(y0 + inset, y1 - inset + 1e-9, spacing)
        if not (len(gx) and len(gy)):
            return
        xy = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        xy = xy + rng.uniform(-TREE_JITTER_M, TREE_JITTER_M, xy.shape)
        ok = rng.uniform(size=len(xy)) < keep
        if square is not None:
            sx0, sy0, sx1, sy1 = _inset(square, -inset)
            ok &= ~((xy[:, 0] > sx0) & (xy[:, 0] < sx1) & (xy[:, 1] > sy0) & (xy[:, 1] < sy1))
        self.add_trees(xy[ok], GROUND_Z, CROWN_RADIUS_M[1])

    def street_trees(self, along_axis: int, span: tuple[float, float], across: float, max_crown: float) -> None:
        """Trees every ``street_tree_spacing`` m along a sidewalk piece, crowns kept over the sidewalk."""
        margin = max_crown + 1.0
        a, b = span[0] + margin, span[1] - margin
        if b < a:
            return
        n = int((b - a) // self.cfg.street_tree_spacing) + 1
        s = (a + b) / 2 + (np.arange(n) - (n - 1) / 2) * self.cfg.street_tree_spacing
        xy = np.column_stack([np.full(n, across), s]) if along_axis == 0 else np.column_stack([s, np.full(n, across)])
        self.add_trees(xy, GROUND_Z + self.cfg.kerb_height, max_crown)

    def add_trees(self, xy: np.ndarray, z: float, max_crown: float) -> None:
        """Queue trees standing at ``xy`` (n, 2) m on ground height ``z``, crown radius <= ``max_crown``."""
        rng, n = self.rng, len(xy)
        crown = np.minimum(rng.uniform(*CROWN_RADIUS_M, n), max_crown)
        self.trees.append(np.column_stack([
            xy, np.full(n, z), rng.uniform(*TRUNK_RADIUS_M, n), rng.uniform(*TRUNK_HEIGHT_M, n),
            crown, crown * rng.uniform(1.0, 1.4, n)]))

    # ---------------------------------------------------------------- emission

    def ground(self, rect, cls: CityClass, holes: list[np.ndarray]) -> None:
        """Flat ground of ``cls`` over ``rect`` at ``GROUND_Z`` with the polygons ``holes`` cut out."""
        if not holes:
            self.flat.append((*rect, cls))
            return
        pts, tri = triangulate_2d(_corners(rect), holes)
        self.builder.add_mesh(np.column_stack([pts, np.full(len(pts), GROUND_Z)]), tri, cls)

    def build(self, major: list[_Line]) -> Scene:
        """Emit the batched surfaces, kerbs and trees and freeze the scene with the road graph of
        the ``major`` lines and the narrow streets."""
        cfg, b = self.cfg, self.builder
        if cfg.kerb_height == 0:                          # flush sidewalks: plain surfaces
            self.flat += [(*k, CityClass.SIDEWALK) for k in self.kerbs]
            self.kerbs = []
        # Flat rectangles at ground height: two up-facing triangles each.
        flat = np.array([f[:4] for f in self.flat], dtype=np.float64)
        cls = np.array([f[4] for f in self.flat], dtype=np.uint8)
        x0, y0, x1, y1 = flat.T
        quad = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)
        verts = np.concatenate([quad, np.full((len(flat), 4, 1), GROUND_Z)], axis=2).reshape(-1, 3)
        base = 4 * np.arange(len(flat))[:, None, None]
        b.add_mesh(verts, (np.array([[0, 1, 2], [0, 2, 3]]) + base).reshape(-1, 3), np.repeat(cls, 2))
        # Sidewalk slabs: unit box scaled to each rectangle, kerb_height tall.
        if self.kerbs:
            k = np.array(self.kerbs, dtype=np.float64)
            bv, bf = box_mesh((0.5, 0.5, 0.0), (1.0, 1.0, 1.0))
            size = np.column_stack([k[:, 2] - k[:, 0], k[:, 3] - k[:, 1], np.full(len(k), cfg.kerb_height)])
            origin = np.column_stack([k[:, 0], k[:, 1], np.full(len(k), GROUND_Z)])
            v = bv[None] * size[:, None] + origin[:, None]
            f = bf[None] + 8 * np.arange(len(k))[:, None, None]
            b.add_mesh(v.reshape(-1, 3), f.reshape(-1, 3), CityClass.SIDEWALK)
        self.emit_trees()
        half = self.half
        return b.build(
            terrain=Terrain.flat(GROUND_Z, (-half, -half, half, half)),
            geo=GeoOrigin.at_latlon(cfg.latitude, cfg.longitude),
            roads=_road_graph(major + self.narrow),
            meta={"source": "procedural", "config": asdict(cfg), "generator_version": GENERATOR_VERSION},
        )

    def emit_trees(self) -> None:
        """All queued trees as one batch: one VEGETATION instance each (trunk + crown)."""
        if not self.trees:
            return
        t = np.concatenate(self.trees)
        n = len(t)
        tv, tf = cylinder_mesh((0.0, 0.0, 0.0), 1.0, 1.0, segments=TRUNK_SEGMENTS)
        cv, cf = ellipsoid_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), rings=CROWN_RINGS, segments=CROWN_SEGMENTS)
        x, y, z, tr, th, cr, crz = t.T
        trunk = tv[None] * np.stack([tr, tr, th], 1)[:, None] + np.stack([x, y, z], 1)[:, None]
        crown_c = np.stack([x, y, z + th + 0.7 * crz], 1)   # crown bottom 0.3 rz below the trunk top
        crown = cv[None] * np.stack([cr, cr, crz], 1)[:, None] + crown_c[:, None]
        nv = len(tv) + len(cv)
        verts = np.concatenate([trunk, crown], axis=1).reshape(-1, 3)
        faces = (np.concatenate([tf, cf + len(tv)])[None] + nv * np.arange(n)[:, None, None]).reshape(-1, 3)
        first = len(self.builder.instance_names)
        for i in range(n):
            self.builder.new_instance(f"tree_{i:06d}", CityClass.VEGETATION)
        inst = np.repeat(np.arange(first, first + n, dtype=np.int32), len(tf) + len(cf))
        self.builder.add_mesh(verts, faces, CityClass.VEGETATION, inst)


def _road_graph(lines: list[_Line]) -> RoadGraph:
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
