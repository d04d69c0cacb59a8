"""Road routes a car can drive: node routes without U-turns and lane-keeping reference paths.

A car cannot turn on the spot, so :func:`road_route` searches over *directed* road edges with
U-turns forbidden; :func:`lane_path` then turns the route into a lane-keeping reference path:
Japan drives on the **left**, so the path follows the kerb-side left lane of each road (the
centreline on one-lane streets), and corners are filleted with arcs no tighter than the car's
minimum turning radius.  Where a fillet in lane would leave the carriageway (a tight corner of
narrow streets) the car swings wide, as drivers do; if no swing fits, the route is rejected
(:class:`PlanningError`) naming the node.

Frames and units: the scene's local ENU frame (x east, y north, z up), metres, radians.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vlwm.sim.planning_errors import PlanningError, fmt_point
from vlwm.world.roads import RoadGraph

#: Default minimum turning radius (m) of the rover's rear axle centre (a compact car).
DEFAULT_MIN_TURNING_RADIUS_M = 4.5
#: Fillets are drawn this much wider than the minimum radius, leaving the tracker steering headroom.
FILLET_RADIUS_FACTOR = 1.1
#: ... and never tighter than this multiple of the minimum radius when space is short.
MIN_FILLET_FACTOR = 1.02
#: Lane factors tried at a corner, in order: 1 = in lane, 0 = on the centreline, < 0 = swinging wide.
LANE_SWING_FACTORS = (1.0, 0.5, 0.0, -0.5, -1.0)
#: Corners turning less than this (rad) are straight continuations (no fillet).
STRAIGHT_TURN_RAD = math.radians(2.0)
#: A car closer than this (m) to the first corner of its route starts from the node after it.
MIN_SEGMENT_M = 0.5
#: Spacing (m) of the dense reference path samples.
PATH_SPACING_M = 0.25


def _adjacency(roads: RoadGraph) -> list[list[tuple[int, float, int]]]:
    """Per node: (neighbour, length m, edge index)."""
    adj: list[list[tuple[int, float, int]]] = [[] for _ in range(roads.num_nodes)]
    for e, ((a, b), w) in enumerate(zip(roads.edges.tolist(), roads.edge_lengths().tolist())):
        adj[a].append((b, w, e))
        adj[b].append((a, w, e))
    return adj


def turn_angle(roads: RoadGraph, a: int, b: int, c: int) -> float:
    """Absolute heading change (rad, 0..pi) driving a -> b -> c."""
    n = roads.nodes[:, :2].astype(np.float64)
    d1, d2 = n[b] - n[a], n[c] - n[b]
    return abs(math.atan2(d1[0] * d2[1] - d1[1] * d2[0], float(d1 @ d2)))


def road_route(roads: RoadGraph, start: int, goals: Sequence[int], prev: int | None = None,
               first_turn_ok: Callable[[int, int, int], bool] | None = None) -> list[int]:
    """Shortest node route from ``start`` through ``goals`` in order, never reversing on an edge.

    The search runs over directed edges (Dijkstra on lengths), so a car arriving at a node from
    ``prev`` cannot leave towards ``prev`` (no U-turns, dead ends included).  ``first_turn_ok(prev,
    start, next)`` may restrict the very first move (a car stopped at a node cannot turn sharply).

    Returns the node list starting at ``start``; raises :class:`PlanningError` when a goal cannot
    be reached that way.
    """
    adj = _adjacency(roads)
    route = [start]
    for k, goal in enumerate(goals):
        if goal == route[-1]:
            continue
        src, before = route[-1], (prev if len(route) == 1 else route[-2])
        dist = {(before, src): 0.0}
        parent: dict = {}
        heap = [(0.0, -1 if before is None else before, src)]
        found = None
        while heap:
            d, pv, node = heapq.heappop(heap)
            pv = None if pv == -1 else pv
            if d > dist.get((pv, node), np.inf):
                continue
            if node == goal and (pv, node) != (before, src):
                found = (pv, node)
                break
            for nxt, w, _ in adj[node]:
                if nxt == pv:
                    continue
                if (pv, node) == (before, src) and len(route) == 1 and first_turn_ok is not None \
                        and pv is not None and not first_turn_ok(pv, node, nxt):
                    continue
                nd = d + w
                if nd < dist.get((node, nxt), np.inf):
                    dist[(node, nxt)] = nd
                    parent[(node, nxt)] = (pv, node)
                    heapq.heappush(heap, (nd, node, nxt))
        if found is None:
            came = "" if before is None else f" arriving from node {before}"
            raise PlanningError(f"no road route without a U-turn from node {src}{came} to goal {k} (node {goal})")
        leg = []
        state = found
        while state != (before, src):
            leg.append(state[1])
            state = parent[state]
        route += leg[::-1]
    return route


def lane_offset(width: float, lanes: int) -> float:
    """Distance (m) left of the centreline of the kerb-side left lane (0 on one-lane streets)."""
    if lanes <= 1:
        return 0.0
    return width / 2 - width / lanes / 2


@dataclass(frozen=True)
class LanePath:
    """Dense reference path along a road route, in the local ENU frame.

    xyz : (n, 3) float64 samples every ~``PATH_SPACING_M`` m (z interpolated from the road nodes).
    heading : (n,) float64 tangent heading (rad, counter-clockwise from east).
    curvature : (n,) float64 signed curvature (1/m, positive turning left).
    s : (n,) float64 arc length (m) from the start.
    nodes : route node indices; node_s : (len(nodes),) arc length (m) of the path point nearest each node.
    edge : (n,) int64 index into ``nodes`` of the route edge (nodes[k] -> nodes[k+1]) each sample drives on.
    """

    xyz: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray
    s: np.ndarray
    nodes: tuple[int, ...]
    node_s: np.ndarray
    edge: np.ndarray

    @property
    def length(self) -> float:
        return float(self.s[-1])


def carriageway_excess(roads: RoadGraph, xy: np.ndarray) -> np.ndarray:
    """(n,) how far (m) each point ``xy`` (n, 2) lies outside the nearest carriageway: the least
    over edges of (distance to the edge centreline segment - width/2); <= 0 on the road."""
    p = np.asarray(xy, np.float64).reshape(-1, 2)
    a = roads.nodes[roads.edges[:, 0], :2].astype(np.float64)
    b = roads.nodes[roads.edges[:, 1], :2].astype(np.float64)
    ab = b - a
    den = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    out = np.empty(len(p))
    for k in range(0, len(p), 2048):
        q = p[k:k + 2048, None, :]
        t = np.clip(np.einsum("nej,ej->ne", q - a[None], ab) / den, 0.0, 1.0)
        d = np.linalg.norm(q - (a[None] + t[..., None] * ab[None]), axis=-1)
        out[k:k + 2048] = np.min(d - roads.width[None].astype(np.float64) / 2, axis=1)
    return out


def _edge_index(roads: RoadGraph) -> dict[tuple[int, int], int]:
    idx = {}
    for e, (a, b) in enumerate(roads.edges.tolist()):
        idx[(a, b)] = idx[(b, a)] = e
    return idx


def _lane_line(roads, eidx, a: int, b: int, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Point and unit direction of the lane line driving a -> b, lane offset scaled by ``f``."""
    e = eidx[(a, b)]
    pa, pb = roads.nodes[a, :2].astype(np.float64), roads.nodes[b, :2].astype(np.float64)
    u = (pb - pa) / max(np.linalg.norm(pb - pa), 1e-9)
    left = np.array([-u[1], u[0]])
    return pa + left * f * lane_offset(float(roads.width[e]), int(roads.lanes[e])), u


def _corner_point(roads, eidx, a, b, c, f) -> np.ndarray:
    """Where the lane lines a -> b and b -> c (offsets scaled by ``f``) meet."""
    p1, u1 = _lane_line(roads, eidx, a, b, f)
    p2, u2 = _lane_line(roads, eidx, b, c, f)
    cross = u1[0] * u2[1] - u1[1] * u2[0]
    if abs(cross) < 0.05:  # (nearly) straight on: midway between the two lane points at b
        nb = roads.nodes[b, :2].astype(np.float64)
        q1 = p1 + u1 * float((nb - p1) @ u1)
        q2 = p2 + u2 * float((nb - p2) @ u2)
        return (q1 + q2) / 2
    t = ((p2 - p1)[0] * u2[1] - (p2 - p1)[1] * u2[0]) / cross
    return p1 + t * u1


def _sample_polyline_with_fillets(pts: np.ndarray, radii: np.ndarray, spacing: float):
    """Dense samples of a polyline ``pts`` (m, 2) whose interior corners are filleted with
    ``radii`` (m,) (0 = sharp); returns xy (n, 2), heading (n,), curvature (n,), vertex index (n,)
    of the segment each sample belongs to, and the sample index nearest each vertex."""
    m = len(pts)
    # Tangent points of each interior corner.
    tin = [None] * m
    tout = [None] * m
    arcs = [None] * m
    for i in range(1, m - 1):
        d1 = pts[i] - pts[i - 1]
        d2 = pts[i + 1] - pts[i]
        u1, u2 = d1 / np.linalg.norm(d1), d2 / np.linalg.norm(d2)
        theta = math.atan2(u1[0] * u2[1] - u1[1] * u2[0], float(u1 @ u2))
        if abs(theta) < STRAIGHT_TURN_RAD or radii[i] <= 0:
            continue
        t = radii[i] * math.tan(abs(theta) / 2)
        tin[i], tout[i] = pts[i] - u1 * t, pts[i] + u2 * t
        arcs[i] = (radii[i], theta, u1)
    xy, hd, kv, seg, at_vertex = [], [], [], [], []
    cursor = pts[0]
    for i in range(1, m):
        end = tin[i] if tin[i] is not None else pts[i]
        d = end - cursor
        length = float(np.linalg.norm(d))
        u = d / length if length > 1e-9 else (pts[i] - pts[i - 1]) / np.linalg.norm(pts[i] - pts[i - 1])
        n = max(1, int(math.ceil(length / spacing)))
        t = np.arange(n) / n
        xy.append(cursor + t[:, None] * d)
        hd.append(np.full(n, math.atan2(u[1], u[0])))
        kv.append(np.zeros(n))
        seg.append(np.full(n, i - 1))
        if arcs[i] is not None:
            r, theta, u1 = arcs[i]
            sign = 1.0 if theta > 0 else -1.0
            left = np.array([-u1[1], u1[0]])
            centre = tin[i] + sign * r * left
            h0 = math.atan2(u1[1], u1[0])
            na = max(2, int(math.ceil(r * abs(theta) / spacing)))
            phi = np.arange(na) / na * theta
            head = h0 + phi
            # Point on the arc: centre - sign * r * left(head)
            pts_arc = centre + sign * r * np.column_stack([np.sin(head), -np.cos(head)])
            xy.append(pts_arc)
            hd.append(head)
            kv.append(np.full(na, sign / r))
            half = na // 2
            seg.append(np.r_[np.full(half, i - 1), np.full(na - half, i)])
            cursor = tout[i]
        else:
            cursor = end
        at_vertex.append(sum(len(a) for a in xy) - (len(xy[-1]) // 2 if arcs[i] is not None else 0))
    xy.append(pts[-1][None])
    last_d = pts[-1] - pts[-2]
    hd.append(np.array([math.atan2(last_d[1], last_d[0])]))
    kv.append(np.zeros(1))
    seg.append(np.array([m - 2]))
    xy, hd, kv, seg = (np.concatenate(v) for v in (xy, hd, kv, seg))
    at_vertex[-1] = len(xy) - 1
    return xy, np.unwrap(hd), kv, seg, np.array([0] + at_vertex)


def lane_path(roads: RoadGraph, nodes: Sequence[int], min_radius: float = DEFAULT_MIN_TURNING_RADIUS_M,
              kerb_margin: float = 0.3, start_xy=None, spacing: float = PATH_SPACING_M) -> LanePath:
    """Reference path driving the route ``nodes`` in the left lane with filleted corners.

    Parameters
    ----------
    roads : RoadGraph
    nodes : route node indices (>= 2, consecutive ones joined by edges, no U-turns).
    min_radius : float
        Minimum turning radius (m): no fillet is tighter than this.
    kerb_margin : float
        The path is kept this far (m) inside the carriageway edge.
    start_xy : (2,) float, optional
        Start here (the car's position) instead of the lane point at ``nodes[0]``.

    Raises
    ------
    PlanningError
        When a corner cannot be driven within the carriageway, naming its node.
    """
    nodes = [int(n) for n in nodes]
    if len(nodes) < 2:
        raise PlanningError("a lane path needs at least two route nodes")
    eidx = _edge_index(roads)
    for a, b in zip(nodes[:-1], nodes[1:]):
        if (a, b) not in eidx:
            raise PlanningError(f"route nodes {a} and {b} are not joined by a road edge")
    m = len(nodes)
    factor = np.ones(m)
    z = roads.nodes[nodes, 2].astype(np.float64)

    def vertices():
        p0, _ = _lane_line(roads, eidx, nodes[0], nodes[1], 1.0)
        pend, uend = _lane_line(roads, eidx, nodes[-2], nodes[-1], 1.0)
        pend = pend + uend * float((roads.nodes[nodes[-1], :2] - pend) @ uend)
        first = p0 if start_xy is None else np.asarray(start_xy, np.float64)[:2]
        inner = [_corner_point(roads, eidx, nodes[i - 1], nodes[i], nodes[i + 1], factor[i]) for i in range(1, m - 1)]
        return np.array([first] + inner + [pend])

    def radius_at(pts, i):
        d1, d2 = pts[i] - pts[i - 1], pts[i + 1] - pts[i]
        l1, l2 = np.linalg.norm(d1), np.linalg.norm(d2)
        theta = abs(math.atan2(d1[0] * d2[1] - d1[1] * d2[0], float(d1 @ d2)))
        if theta < STRAIGHT_TURN_RAD:
            return 0.0
        avail = min(l1 if i == 1 else l1 / 2, l2 if i == m - 2 else l2 / 2)
        r = min(FILLET_RADIUS_FACTOR * min_radius, avail / math.tan(theta / 2))
        if r < MIN_FILLET_FACTOR * min_radius:
            raise PlanningError(
                f"the route turns {math.degrees(theta):.0f} deg at node {nodes[i]} {fmt_point(roads.nodes[nodes[i]])} "
                f"with only {avail:.1f} m of straight road around it: too tight for a {min_radius:.1f} m "
                f"turning radius")
        return r

    def radii_for(pts):
        return np.array([0.0] + [radius_at(pts, i) for i in range(1, m - 1)] + [0.0])

    if start_xy is not None and m > 2 and np.linalg.norm(vertices()[1] - vertices()[0]) < MIN_SEGMENT_M:
        # The car stands at the first corner already: the route starts at the next node.
        return lane_path(roads, nodes[1:], min_radius, kerb_margin, start_xy, spacing)
    seg_len = np.linalg.norm(np.diff(vertices(), axis=0), axis=1)
    if seg_len.min() < 1e-6:
        raise PlanningError(f"the route {nodes} has coincident lane points (at node {nodes[int(np.argmin(seg_len))]})")

    # Decide, corner by corner, how far into its lane the car can stay.
    for i in range(1, m - 1):
        for f in LANE_SWING_FACTORS:
            factor[i] = f
            pts = vertices()
            try:
                r = np.zeros(m)
                r[i] = radius_at(pts, i)
            except PlanningError:
                if f == LANE_SWING_FACTORS[-1]:
                    raise
                continue
            lo, hi = i - 1, i + 2
            xy, *_ = _sample_polyline_with_fillets(pts[lo:hi], r[lo:hi], spacing)
            if carriageway_excess(roads, xy).max() <= -kerb_margin:
                break
        else:
            raise PlanningError(f"the corner at node {nodes[i]} {fmt_point(roads.nodes[nodes[i]])} cannot be driven "
                                f"within the carriageway with a {min_radius:.1f} m turning radius")
    pts = vertices()
    xy, heading, curvature, seg, at_vertex = _sample_polyline_with_fillets(pts, radii_for(pts), spacing)
    excess = carriageway_excess(roads, xy)
    if excess.max() > -kerb_margin + 1e-6:
        k = int(np.argmax(excess))
        raise PlanningError(f"the lane path leaves the carriageway near {fmt_point(xy[k])} on the route edge "
                            f"{nodes[seg[k]]} -> {nodes[seg[k] + 1]}")
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))]
    node_s = s[at_vertex]
    zz = np.interp(s, node_s, z)
    return LanePath(np.column_stack([xy, zz]), heading, curvature, s, tuple(nodes), node_s, seg.astype(np.int64))
