"""Road graph: the network vehicles follow, in the scene's local ENU frame (metres).

Nodes are intersections or polyline vertices; each undirected edge is a straight road segment
with a carriageway width, a lane count and a sidewalk width on each side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RoadGraph:
    """Undirected road network.

    Attributes
    ----------
    nodes : (N, 3) float32
        Node positions, local ENU metres (z on the road surface).
    edges : (E, 2) int32
        Node index pairs, each segment once.
    width : (E,) float32
        Carriageway width (m), kerb to kerb.
    lanes : (E,) int8
        Lane count (both directions together).
    sidewalk : (E,) float32
        Sidewalk width (m) on each side; 0 for none.
    """

    nodes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lanes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    sidewalk: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self):
        object.__setattr__(self, "nodes", np.asarray(self.nodes, np.float32).reshape(-1, 3))
        object.__setattr__(self, "edges", np.asarray(self.edges, np.int32).reshape(-1, 2))
        e = len(self.edges)
        for name, dtype in (("width", np.float32), ("lanes", np.int8), ("sidewalk", np.float32)):
            arr = np.asarray(getattr(self, name), dtype)
            if arr.shape != (e,):
                raise ValueError(f"road graph {name} has shape {arr.shape}, expected ({e},)")
            object.__setattr__(self, name, arr)
        if e and (self.edges.min() < 0 or self.edges.max() >= len(self.nodes)):
            raise ValueError("road graph edges reference nodes that do not exist")

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def edge_lengths(self) -> np.ndarray:
        """(E,) float64 segment lengths, metres."""
        a, b = self.nodes[self.edges[:, 0]], self.nodes[self.edges[:, 1]]
        return np.linalg.norm((b - a).astype(np.float64), axis=1)

    def nearest_node(self, xy) -> int:
        """Index of the node closest (in x, y) to ``xy`` (2,) metres."""
        if not self.num_nodes:
            raise ValueError("the road graph is empty")
        d = np.linalg.norm(self.nodes[:, :2] - np.asarray(xy, np.float64)[:2], axis=1)
        return int(np.argmin(d))

    def neighbours(self, node: int) -> np.ndarray:
        """Indices of the nodes joined to ``node`` by an edge."""
        e = self.edges
        return np.concatenate([e[e[:, 0] == node, 1], e[e[:, 1] == node, 0]])

    def shortest_path(self, start: int, goal: int) -> list[int]:
        """Node indices from ``start`` to ``goal`` along the shortest route (Dijkstra on lengths).

        Raises ``ValueError`` when no route joins them.
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import dijkstra

        n = self.num_nodes
        w = self.edge_lengths()
        m = coo_matrix((np.r_[w, w], (np.r_[self.edges[:, 0], self.edges[:, 1]],
                                      np.r_[self.edges[:, 1], self.edges[:, 0]])), shape=(n, n)).tocsr()
        dist, pred = dijkstra(m, directed=True, indices=start, return_predecessors=True)
        if not np.isfinite(dist[goal]):
            raise ValueError(f"no road route from node {start} to node {goal}")
        path = [goal]
        while path[-1] != start:
            path.append(int(pred[path[-1]]))
        return path[::-1]

    def to_arrays(self, prefix: str = "roads_") -> dict[str, np.ndarray]:
        return {prefix + k: getattr(self, k) for k in ("nodes", "edges", "width", "lanes", "sidewalk")}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "roads_") -> "RoadGraph":
        return cls(**{k: arrays[prefix + k] for k in ("nodes", "edges", "width", "lanes", "sidewalk")})
