"""Routes of the traffic actors: closed polylines drawn once per actor from one random generator.

:class:`RoutePlanner` holds one scene's road graph, ground and building tracers and the seeded
``np.random.default_rng(config.seed)`` that :class:`vlwm.sim.traffic.Traffic` also draws speeds
from, so the order of draws is part of the result.  Every route is a closed (K+1, 3) float64
polyline of an actor's bottom-centre positions (last = first) in the scene's local ENU frame
(x east, y north, z up), metres.

* **Vehicles** random-walk the road graph (no U-turns except at dead ends) until they come back
  to a directed edge already driven, and loop that cycle.  They keep left (Japan) at a lateral
  offset inside the carriageway (their lane, kept at most ``width/2 - vehicle width/2 -
  KERB_CLEARANCE_M`` from the centreline), turn on mitred corners and U-turn at dead ends on
  the shortest tried curve (:func:`_u_turn_shapes`) that keeps the whole vehicle on the
  carriageway; dead ends too tight or too short for any are pruned from that vehicle's graph.
  Buses and trucks only use roads at least ``heavy_min_road_width`` wide.
* **Pedestrians** walk back and forth along a straight stretch of sidewalk (crossing side
  streets), off the sidewalk's centre line, where procedural street trees stand.
* **Drones** fly level circles at least ``drone_clearance`` above everything below their loop
  (checked with downward casts against the whole scene).

Road-bound actors stand on the surface found by a downward cast against the scene's ground
classes (:data:`GROUND_CLASSES`), near the road graph's height.  No actor enters a building: each
route is swept at construction (:meth:`RoutePlanner.blocked`) and a route that touches one is
replaced by a fresh draw.
"""

from __future__ import annotations

import numpy as np

from vlwm.labels import CityClass
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.raycast import EmbreeTracer
from vlwm.world.scene import Scene

ROUTE_STEP_M = 1.0          #: routes are resampled to segments at most this long (height, checks)
CHECK_SPACING_M = 0.5       #: grid spacing (m) of the footprint points swept for buildings
CHECK_LIFT_M = 0.05         #: footprint points sit this far above the actor's bottom
KERB_CLEARANCE_M = 0.2      #: least gap between a vehicle's side and the kerb
MIN_LANE_OFFSET_M = 0.25    #: a road is drivable only if the vehicle centre fits this far left
LANE_CHANGE_M = 15.0        #: length of a lane change where the lane offset changes at a node
MITER_LIMIT = 4.0           #: corners whose mitre point lies farther than this x offset are bevelled
STRAIGHT_SIN = np.sin(np.deg2rad(5.0))  #: edges meeting within 5 deg count as straight on
U_TURN_SEGMENTS = 12        #: polyline segments of each U-turn curve
U_TURN_ELONGATION = (1.0, 1.5, 2.0, 3.0, 4.0)  #: tried half-ellipse U-turn depths, x lane offset
U_TURN_SPIRAL = (1.0, 1.25, 1.5, 2.0)  #: tried spiral U-turn lengths, x half the vehicle length
U_TURN_START_RAD = 0.02     #: heading a spiral U-turn starts with
ROAD_END_MARGIN_M = 0.5     #: U-turns keep the vehicle this far short of the dead-end node
GROUND_SEARCH_M = 3.0       #: surfaces are searched this far above and below the road graph
PEDESTRIAN_LANE = (0.15, 0.35)  #: walking line, fraction of sidewalk width from kerb (or mirrored)
WALK_END_MARGIN_M = 1.0     #: walks end this far inside a sidewalk's end
DRONE_LOOP_STEP_M = 2.0     #: drone circles are polygons with sides at most this long
MAX_TRIES = 30              #: fresh route draws per actor before giving up

#: Surfaces road-bound actors can stand on.
GROUND_CLASSES = (CityClass.ROAD, CityClass.SIDEWALK, CityClass.CROSSWALK, CityClass.PARKING,
                  CityClass.RAILWAY, CityClass.TERRAIN, CityClass.GRASS, CityClass.BRIDGE)


class RoutePlanner:
    """Draws routes on one scene: road graph, ground and building tracers, the random generator."""

    def __init__(self, scene: Scene, cfg: TrafficConfig):
        self.scene, self.cfg = scene, cfg
        self.rng = np.random.default_rng(cfg.seed)
        g = scene.roads
        self.xy = g.nodes[:, :2].astype(np.float64)
        self.z = g.nodes[:, 2].astype(np.float64)
        self.edges = g.edges.astype(np.intp)
        self.width = g.width.astype(np.float64)
        self.lanes = g.lanes.astype(np.int64)
        self.sidewalk = g.sidewalk.astype(np.float64)
        self.length = g.edge_lengths() if g.num_edges else np.zeros(0)
        d = self.xy[self.edges[:, 1]] - self.xy[self.edges[:, 0]] if g.num_edges else np.zeros((0, 2))
        self.dir = d / np.maximum(self.length, 1e-12)[:, None]
        self.incident = [[] for _ in range(g.num_nodes)]
        for e, (a, b) in enumerate(self.edges):
            if self.length[e] > 1e-6:
                self.incident[a].append(e)
                self.incident[b].append(e)
        ground = np.isin(scene.semantics, np.array(GROUND_CLASSES, np.uint8))
        building = scene.semantics == CityClass.BUILDING
        self.ground = EmbreeTracer(scene.vertices, scene.faces[ground])
        self.buildings = EmbreeTracer(scene.vertices, scene.faces[building])
        self.building_up = scene.face_normals[building][:, 2]

    # ---------------------------------------------------------------- dispatch and checks

    def route(self, semantic: CityClass, size, name: str) -> np.ndarray:
        """A closed (K+1, 3) route clear of buildings for an actor of ``semantic`` and ``size``."""
        draw = {CityClass.PEDESTRIAN: self.walk, CityClass.DRONE: self.loop}.get(semantic, self.drive)
        why = "no candidate route"
        for _ in range(MAX_TRIES):
            route = draw(semantic, size)
            if isinstance(route, str):
                why = route
                continue
            if not self.blocked(route, size):
                return route
            why = "every drawn route touched a building"
        raise ValueError(f"traffic: could not place {name} ({semantic.name}) in {MAX_TRIES} tries: {why}; "
                         f"lower its count in TrafficConfig or check the scene's road graph")

    def blocked(self, route: np.ndarray, size) -> bool:
        """True if the actor's box meets a building anywhere along ``route`` (K+1, 3).

        At each route vertex, with the heading of the segments before and after it, a grid of
        footprint points (``CHECK_SPACING_M``) casts upwards: a building face within the box
        height, or one hit from inside (closed, outward-wound solids), blocks the route.
        """
        l, w, h = size
        gx = np.linspace(-l / 2, l / 2, int(np.ceil(l / CHECK_SPACING_M)) + 1)
        gy = np.linspace(-w / 2, w / 2, int(np.ceil(w / CHECK_SPACING_M)) + 1)
        bx, by = (a.ravel() for a in np.meshgrid(gx, gy))
        d = np.diff(route, axis=0)
        yaw = np.arctan2(d[:, 1], d[:, 0])
        pos = np.concatenate([route[:-1], route[:-1]])
        yaw = np.concatenate([yaw, np.roll(yaw, 1)])
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        o = np.stack([pos[:, :1] + c * bx - s * by, pos[:, 1:2] + s * bx + c * by,
                      np.broadcast_to(pos[:, 2:3] + CHECK_LIFT_M, (len(pos), len(bx)))], -1).reshape(-1, 3)
        up = np.tile(np.float32([0, 0, 1]), (len(o), 1))
        dist, tri = self.buildings.intersect(o.astype(np.float32), up)
        hit = tri >= 0
        return bool(np.any(hit & ((dist <= h - CHECK_LIFT_M) | (self.building_up[np.where(hit, tri, 0)] > 0))))

    def settle(self, route: np.ndarray) -> np.ndarray:
        """``route`` (K+1, 3) resampled to ``ROUTE_STEP_M`` with z on the ground surface near its z."""
        pts = _densify(route, ROUTE_STEP_M)
        o = pts + [0, 0, GROUND_SEARCH_M]
        down = np.tile(np.float32([0, 0, -1]), (len(o), 1))
        dist, tri = self.ground.intersect(o.astype(np.float32), down, 2 * GROUND_SEARCH_M)
        pts[:, 2] = np.where(tri >= 0, o[:, 2] - dist, pts[:, 2])
        return pts

    # ---------------------------------------------------------------- vehicles

    def drive(self, semantic: CityClass, size):
        """A looped random walk on the left of the carriageway, or a string saying why not."""
        l, w, _ = size
        hw = self.width / 2
        heavy = semantic in (CityClass.BUS, CityClass.TRUCK)
        pref = self.rng.uniform()
        per_dir = np.maximum(self.lanes // 2, 1)
        lane = np.minimum(np.floor(pref * per_dir), per_dir - 1)
        offset = np.where(self.lanes >= 2, (lane + 0.5) * hw / per_dir, hw / 2)
        offset = np.minimum(offset, hw - w / 2 - KERB_CLEARANCE_M)
        ok = (offset >= MIN_LANE_OFFSET_M) & (self.length > 1e-6)
        if heavy:
            ok &= self.width >= self.cfg.heavy_min_road_width
        alive = self._prune(ok, offset, size)
        if not alive.any():
            return f"no road fits a {l:g} x {w:g} m vehicle"
        # Random walk over directed edges (edge, tail, head) until one repeats: that cycle is the loop.
        e = int(self.rng.choice(np.flatnonzero(alive)))
        a, b = self.edges[e] if self.rng.uniform() < 0.5 else self.edges[e][::-1]
        walk, seen = [(e, int(a), int(b))], {}
        while walk[-1] not in seen:
            seen[walk[-1]] = len(walk) - 1
            e, a, b = walk[-1]
            nxt = [f for f in self.incident[b] if alive[f] and f != e]
            f = int(nxt[self.rng.integers(len(nxt))]) if nxt else e
            walk.append((f, b, int(self.edges[f][1] if self.edges[f][0] == b else self.edges[f][0])))
        cycle = walk[seen[walk[-1]]:-1]
        joins = [self._join(cycle[i], cycle[(i + 1) % len(cycle)], offset, size) for i in range(len(cycle))]
        for i, (e, a, b) in enumerate(cycle):         # every run goes forwards along its edge
            entry, exit_ = joins[i - 1][-1], joins[i][0]
            if np.dot(exit_ - entry, self._unit(e, a)) < 0:
                return "an edge too short for its corners"
        pts = np.concatenate(joins)
        z = np.concatenate([np.full(len(j), self.z[c[2]]) for j, c in zip(joins, cycle)])
        return self.settle(_close(np.column_stack([pts, z])))

    def _prune(self, ok: np.ndarray, offset: np.ndarray, size) -> np.ndarray:
        """Drivable edges after repeatedly dropping dead ends too tight to U-turn in."""
        alive = ok.copy()
        degree = np.zeros(len(self.xy), np.intp)
        np.add.at(degree, self.edges[alive].ravel(), 1)
        queue = [n for n in np.flatnonzero(degree == 1)]
        while queue:
            n = queue.pop()
            if degree[n] != 1:
                continue
            e = next(f for f in self.incident[n] if alive[f])
            a = int(self.edges[e][0] if self.edges[e][1] == n else self.edges[e][1])
            if self._u_turn(e, a, n, offset, size) is not None:
                continue
            alive[e] = False
            degree[[n, a]] -= 1
            if degree[a] == 1:
                queue.append(a)
        return alive

    def _unit(self, e: int, tail: int) -> np.ndarray:
        return self.dir[e] if self.edges[e][0] == tail else -self.dir[e]

    def _join(self, into, out, offset, size) -> np.ndarray:
        """(k, 2) lane points where directed edge ``into`` hands over to ``out`` at their shared node."""
        (e1, a1, p), (e2, _, _) = into, out
        d1, d2 = self._unit(e1, a1), self._unit(e2, p)
        n1, n2 = np.array([-d1[1], d1[0]]), np.array([-d2[1], d2[0]])
        o1, o2, P = offset[e1], offset[e2], self.xy[p]
        if e1 == e2:
            return self._u_turn(e1, a1, p, offset, size)
        cross, dot = d1[0] * d2[1] - d1[1] * d2[0], float(d1 @ d2)
        if abs(cross) < STRAIGHT_SIN:
            if dot > 0 and abs(o1 - o2) < 1e-3:
                return (P + n1 * o1)[None]
            step = min(LANE_CHANGE_M, 0.3 * self.length[e2]) if dot > 0 else 0.0
            return np.stack([P + n1 * o1, P + n2 * o2 + d2 * step])
        s, _ = np.linalg.solve(np.column_stack([d1, -d2]), n2 * o2 - n1 * o1)
        m = P + n1 * o1 + s * d1
        if np.linalg.norm(m - P) > MITER_LIMIT * max(o1, o2):
            return np.stack([P + n1 * o1, P + n2 * o2])
        return m[None]

    def _u_turn(self, e: int, tail: int, head: int, offset, size) -> np.ndarray | None:
        """(k, 2) U-turn from the left lane of ``tail -> head`` to the left lane of the way back,
        ending ``ROAD_END_MARGIN_M`` short of ``head`` with the whole vehicle on the carriageway
        (checked at every vertex, both headings); the shortest that fits, or ``None``."""
        l, w, _ = size
        o, hw = offset[e], self.width[e] / 2
        others = [f for f in self.incident[tail] if f != e]
        room = self.length[e] - (max(self.width[f] / 2 for f in others) if others else self.length[e] / 2)
        best = None
        for lon, lat in _u_turn_shapes(o, l):                      # relative to the turn start
            seg = np.column_stack([np.diff(lon), np.diff(lat)])
            heading = seg / np.linalg.norm(seg, axis=1, keepdims=True)
            heading = np.concatenate([[[1.0, 0.0]], heading, [[-1.0, 0.0]]])
            centre = np.column_stack([lon, lat])
            corners = np.concatenate([centre + sa * l / 2 * hd + sb * w / 2 * hd[:, ::-1] * [-1, 1]
                                      for hd in (heading[:-1], heading[1:]) for sa in (-1, 1) for sb in (-1, 1)])
            if np.abs(corners[:, 1]).max() > hw - KERB_CLEARANCE_M:
                continue
            back = corners[:, 0].max() + ROAD_END_MARGIN_M          # turn start this far before head
            need = back - corners[:, 0].min()
            if need <= room and (best is None or need < best[0]):
                best = (need, back, lon, lat)
        if best is None:
            return None
        _, back, lon, lat = best
        d = self._unit(e, tail)
        n = np.array([-d[1], d[0]])
        return self.xy[head] + np.outer(lon - back, d) + np.outer(lat, n)

    # ---------------------------------------------------------------- pedestrians

    def walk(self, semantic: CityClass, size):
        """Back and forth along a straight stretch of one sidewalk, or a string saying why not."""
        walkable = np.flatnonzero((self.sidewalk > 0) & (self.length > 1e-6))
        if not len(walkable):
            return "the road graph has no sidewalks"
        e = int(self.rng.choice(walkable, p=self.length[walkable] / self.length[walkable].sum()))
        side = 1.0 if self.rng.uniform() < 0.5 else -1.0
        u = self.rng.uniform(*PEDESTRIAN_LANE)
        u = u if self.rng.uniform() < 0.5 else 1 - u
        hw, sw = self.width[e] / 2, self.sidewalk[e]
        a, b = (int(x) for x in self.edges[e])
        d = self.dir[e]
        back, back_end = self._extend(e, a, -d)
        fwd, fwd_end = self._extend(e, b, d)
        lo = -back + (WALK_END_MARGIN_M if back_end else 0.0)
        hi = self.length[e] + fwd - (WALK_END_MARGIN_M if fwd_end else 0.0)
        span = min(self.rng.uniform(*self.cfg.pedestrian_walk), hi - lo)
        if span < size[0] + ROUTE_STEP_M:
            return "a sidewalk stretch too short to walk"
        start = self.rng.uniform(lo, hi - span)
        n = np.array([-d[1], d[0]]) * side
        ends = self.xy[a] + np.outer([start, start + span], d) + n * (hw + u * sw)
        if self._on_carriageway(ends).any():
            return "a walk ending on a carriageway"
        z = self.z[a] + (self.z[b] - self.z[a]) * np.clip(np.array([start, start + span]) / self.length[e], 0, 1)
        line = np.column_stack([ends, z])
        return self.settle(np.concatenate([line, line[:1]]))

    def _extend(self, e: int, node: int, d: np.ndarray) -> tuple[float, bool]:
        """How far (m) the same road runs on straight past ``node`` in direction ``d``, and whether
        it ends there in a dead end (rather than at a junction)."""
        total = 0.0
        for _ in range(len(self.edges)):
            nxt = [f for f in self.incident[node] if f != e and float(self._unit(f, node) @ d) > 1 - 1e-4
                   and abs(self.width[f] - self.width[e]) < 1e-2 and abs(self.sidewalk[f] - self.sidewalk[e]) < 1e-2]
            if not nxt:
                return total, len(self.incident[node]) <= 1
            e = nxt[0]
            total += self.length[e]
            node = int(self.edges[e][1] if self.edges[e][0] == node else self.edges[e][0])
        return total, False

    def _on_carriageway(self, xy: np.ndarray) -> np.ndarray:
        """(n,) bool: points (n, 2) within some edge's carriageway."""
        a = self.xy[self.edges[:, 0]]
        t = np.clip(np.einsum("nek,ek->ne", xy[:, None] - a, self.dir), 0, self.length)
        dist = np.linalg.norm(xy[:, None] - (a + t[..., None] * self.dir), axis=-1)
        return (dist < self.width / 2).any(axis=1)

    # ---------------------------------------------------------------- drones

    def loop(self, semantic: CityClass, size):
        """A level circle above everything under it, or a string saying why not."""
        cfg, rng, scene = self.cfg, self.rng, self.scene
        (x0, y0, _), (x1, y1, top) = scene.bounds if scene.num_triangles else np.zeros((2, 3))
        radius = rng.uniform(*cfg.drone_radius)
        margin = radius + max(size[:2])
        cx = rng.uniform(x0 + margin, x1 - margin) if x1 - x0 > 2 * margin else (x0 + x1) / 2
        cy = rng.uniform(y0 + margin, y1 - margin) if y1 - y0 > 2 * margin else (y0 + y1) / 2
        ground = float(scene.ground_height(cx, cy))
        z = ground + rng.uniform(*cfg.drone_altitude)
        k = max(16, int(np.ceil(2 * np.pi * radius / DRONE_LOOP_STEP_M)))
        a = np.linspace(0, 2 * np.pi, k + 1) * (1 if rng.uniform() < 0.5 else -1)
        ring = np.column_stack([np.cos(a), np.sin(a)])
        ring[-1] = ring[0]
        reach = np.hypot(size[0], size[1]) / 2
        below = np.concatenate([(cx, cy) + ring * r for r in (radius - reach, radius, radius + reach)])
        sky = max(top, z) + 1.0
        o = np.column_stack([below, np.full(len(below), sky)]).astype(np.float32)
        dist, _ = scene.tracer().intersect(o, np.tile(np.float32([0, 0, -1]), (len(o), 1)))
        highest = float(np.max(np.where(np.isfinite(dist), sky - dist, -np.inf), initial=ground))
        z = max(z, highest + cfg.drone_clearance)
        if z - ground > cfg.drone_altitude[1]:
            return "every drawn loop passed over something too tall"
        return np.column_stack([(cx, cy) + ring * radius, np.full(k + 1, z)])


# ---------------------------------------------------------------------------------- polylines


def _close(points: np.ndarray) -> np.ndarray:
    """(k+1, 3) closed polyline of (k, 3) ``points``, consecutive duplicates dropped."""
    keep = np.r_[True, np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6]
    p = points[keep]
    if np.linalg.norm(p[-1] - p[0]) <= 1e-6:
        p = p[:-1]
    return np.concatenate([p, p[:1]])


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """(m, 3) polyline through ``points`` (k, 3) with segments no longer than ``step`` metres."""
    out = [points[:1]]
    for p, q in zip(points[:-1], points[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(q - p) / step)))
        out.append(p + np.outer(np.arange(1, n + 1) / n, q - p))
    return np.concatenate(out)


def _u_turn_shapes(o: float, length: float):
    """Candidate U-turn centre paths ``(lon, lat)`` (m; along the lane and to its left) from
    ``(0, o)`` heading along +lon to ``(0, -o)`` heading back; the caller keeps those that fit.

    Half-ellipses of depth ``k * o`` suit inner lanes.  From an outer lane a turning box swings
    its rear towards the kerb, so the other shapes start with a heading that grows exponentially
    over a length ``lam >= length / 2`` (the rear then stays inside), cross straight to the
    centreline and mirror back.
    """
    th = np.linspace(0, np.pi, U_TURN_SEGMENTS + 1)
    for k in U_TURN_ELONGATION:
        yield max(k * o, 1.0) * np.sin(th), o * np.cos(th)
    beta = np.geomspace(U_TURN_START_RAD, np.pi / 2, U_TURN_SEGMENTS + 1)
    mid = np.sqrt(beta[1:] * beta[:-1])
    for f in U_TURN_SPIRAL:
        lam = f * length / 2
        ds = lam * np.diff(np.log(beta))
        lon = np.concatenate([[0.0], np.cumsum(ds * np.cos(mid))])
        lat = o - np.concatenate([[0.0], np.cumsum(ds * np.sin(mid))])
        if lat[-1] < 0:
            continue
        lon, lat = np.append(lon, lon[-1]), np.append(lat, 0.0)     # straight across to the centreline
        yield np.concatenate([lon, lon[-2::-1]]), np.concatenate([lat, -lat[-2::-1]])
