"""What fills the ground between a procedural city's streets: lots of houses and mid-rises, tower
sites, parks, plazas and trees.

:class:`BlockFiller` is handed rectangles by the street layout (:mod:`vlwm.world.city_layout`):

- a **lot** is a pocket park, a plaza, or one or two rows of parcels facing its streets; each
  parcel gets a house (2–3 storeys, small, dense) or a mid-rise (4–10 storeys, likelier on major
  roads and near the centre), some L-shaped; the lot ground is TERRAIN with the footprints cut out;
- a **tower site** holds one or two stepped towers on podiums in a paved plaza;
- a **park** is GRASS (with a paved square if large) or, for a plaza, SIDEWALK, with trees on a
  jittered grid;
- **street trees** stand in a row along wide sidewalks.

Every draw comes from the one generator it is given, in a fixed order, so the city stays a pure
function of its config.  Frame: local ENU, metres; rectangles are ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import numpy as np

from vlwm.labels import CityClass
from vlwm.world.city_config import TOWER_PODIUM_STOREYS, CityConfig
from vlwm.world.city_surfaces import GROUND_Z, CitySurfaces, corners, inset

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
TOWER_PLAZA_MARGIN_M = (4.0, 8.0)
TOWER_SITE_MIN_M = 45.0       #: a superblock narrower than this is never a tower site
TOWER_GAP_M = (8.0, 15.0)     #: plaza between two towers of one site
TOWER_PODIUM_INSET = (0.0, 0.15)  #: podium inset from its site, as a fraction of the site's short side
TOWER_TIER_INSET_M = (3.0, 6.0)   #: how far each tier steps in from the one below
TOWER_CROWN_P = 0.6           #: probability of a stepped crown tier
TOWER_HEIGHT_FALLOFF = 0.6    #: tower height scale drops by this fraction from centre to edge

# Parks and trees (trunk: cylinder; crown: ellipsoid above it).
PARK_SQUARE_MIN_M = 40.0      #: parks at least this wide get a paved square in the middle
PARK_SQUARE_FRACTION = (0.3, 0.45)  #: side of that square, as a fraction of the park's side
TRUNK_RADIUS_M, TRUNK_HEIGHT_M = (0.15, 0.3), (2.0, 3.5)
CROWN_RADIUS_M = (2.0, 3.0)   #: horizontal crown semi-axis (m); vertical one is 1.0–1.4x this
TREE_JITTER_M = 0.8           #: park trees move up to this far from their grid point


def centrality(rect, half: float) -> float:
    """Distance of ``rect``'s centre from the city centre, as a fraction of ``half`` = size/2 (clipped to 1)."""
    x0, y0, x1, y1 = rect
    return min(1.0, float(np.hypot(x0 + x1, y0 + y1)) / 2 / half)


class BlockFiller:
    """Fills lots, tower sites and parks of the city ``cfg`` (side ``2 * half`` m) onto ``surfaces``,
    drawing from ``rng``."""

    def __init__(self, cfg: CityConfig, rng: np.random.Generator, surfaces: CitySurfaces, half: float):
        self.cfg, self.rng, self.surfaces, self.half = cfg, rng, surfaces, half

    # ---------------------------------------------------------------- lots and buildings

    def lot(self, rect, ranks: list[int]) -> None:
        """A lot between streets; ``ranks`` = frontage rank of its (west, east, south, north) sides."""
        cfg, rng = self.cfg, self.rng
        r = centrality(rect, self.half)
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
        self.surfaces.ground(rect, CityClass.TERRAIN, footprints)

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
            self.surfaces.building([(fp, GROUND_Z, height)])
            footprints.append(fp)
        return footprints

    def tower_site(self, rect) -> None:
        """One or two stepped towers on podiums in a paved plaza filling superblock ``rect``."""
        cfg, rng = self.cfg, self.rng
        x0, y0, x1, y1 = inset(rect, rng.uniform(*TOWER_PLAZA_MARGIN_M))
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
            site = inset(site, rng.uniform(*TOWER_PODIUM_INSET) * min(site[2] - site[0], site[3] - site[1]))
            r = centrality(site, self.half)
            sh = cfg.office_storey_height
            podium_h = rng.integers(TOWER_PODIUM_STOREYS[0], TOWER_PODIUM_STOREYS[1] + 1) * sh
            t_lo, t_hi = cfg.tower_height
            h = t_lo + (t_hi - t_lo) * rng.uniform() * (1 - TOWER_HEIGHT_FALLOFF * r)
            h = max(np.floor(h / sh) * sh, t_lo)
            # Shaft: a near-square centred (with jitter) on the podium, stepped in on every side.
            sx0, sy0, sx1, sy1 = inset(site, rng.uniform(*TOWER_TIER_INSET_M))
            side = min(sx1 - sx0, sy1 - sy0) * rng.uniform(0.6, 0.85)
            length = min(side * rng.uniform(1.0, 1.5), sx1 - sx0 if along_x else sy1 - sy0)
            w, d = (length, side) if along_x else (side, length)
            cx = sx0 + w / 2 + rng.uniform() * max(0.0, sx1 - sx0 - w)
            cy = sy0 + d / 2 + rng.uniform() * max(0.0, sy1 - sy0 - d)
            shaft = (cx - w / 2, cy - d / 2, cx + w / 2, cy + d / 2)
            tiers = [(corners(site), GROUND_Z, podium_h)]
            step = rng.uniform(*TOWER_TIER_INSET_M)
            if rng.uniform() < TOWER_CROWN_P and min(w, d) > 2 * step + MIN_BUILDING_SIDE_M:
                h1 = h * rng.uniform(0.75, 0.9)
                tiers += [(corners(shaft), podium_h, h1), (corners(inset(shaft, step)), h1, h)]
            else:
                tiers.append((corners(shaft), podium_h, h))
            self.surfaces.building(tiers)
            podiums.append(corners(site))
        self.surfaces.ground(rect, CityClass.SIDEWALK, podiums)

    # ---------------------------------------------------------------- parks, plazas, trees

    def park(self, rect, cls: CityClass, spacing: float, keep: float) -> None:
        """Open ground of ``cls`` (GRASS: park with a paved square if large; SIDEWALK: plaza) with
        trees every ``spacing`` m, a fraction ``keep`` of them planted."""
        rng = self.rng
        x0, y0, x1, y1 = rect
        holes, square = [], None
        if cls == CityClass.GRASS and min(x1 - x0, y1 - y0) >= PARK_SQUARE_MIN_M:
            hx, hy = rng.uniform(*PARK_SQUARE_FRACTION, 2) * [x1 - x0, y1 - y0] / 2
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            square = (cx - hx, cy - hy, cx + hx, cy + hy)
            self.surfaces.add_flat(square, CityClass.SIDEWALK)
            holes.append(corners(square))
        self.surfaces.ground(rect, cls, holes)
        margin = CROWN_RADIUS_M[1] + TREE_JITTER_M + 0.3
        gx = np.arange(x0 + margin, x1 - margin + 1e-9, spacing)
        gy = np.arange(y0 + margin, y1 - margin + 1e-9, spacing)
        if not (len(gx) and len(gy)):
            return
        xy = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        xy = xy + rng.uniform(-TREE_JITTER_M, TREE_JITTER_M, xy.shape)
        ok = rng.uniform(size=len(xy)) < keep
        if square is not None:
            sx0, sy0, sx1, sy1 = inset(square, -margin)
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
        self.surfaces.add_trees(np.column_stack([
            xy, np.full(n, z), rng.uniform(*TRUNK_RADIUS_M, n), rng.uniform(*TRUNK_HEIGHT_M, n),
            crown, crown * rng.uniform(1.0, 1.4, n)]))
