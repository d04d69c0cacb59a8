"""Which class a voxel takes when several meet in it.

A 0.4 m voxel at the foot of a wall holds both the road and the wall; one under a car holds the
road and the car.  A voxel takes the class of **highest priority** among everything that meets it
(scene triangles, solid interiors, actor boxes, lidar points).  The order, lowest first:

==== ====================== ===============================================================
rank label                  why
==== ====================== ===============================================================
0    free                   nothing there
1    others                 the fallback (unlabelled lidar points): anything named wins
2    terrain                ground ...
3    other_flat
4    sidewalk
5    driveable_surface      ... roads win over the kerbs and verges they meet
6    vegetation             structure over ground; trees under ...
7    manmade                ... facades (a crown brushing a wall leaves the wall)
8    barrier                thin structures over the bulky ones they stand against
9    traffic_cone
10   bus                    dynamic objects over everything static; large vehicles ...
11   trailer
12   truck
13   construction_vehicle
14   car
15   motorcycle
16   bicycle
17   pedestrian             ... under small road users, which would otherwise vanish
==== ====================== ===============================================================

So: dynamic objects over static structure, structure over ground, ground over ``others``, and
within each group the thinner or smaller object over the bulkier one.  The table lives in
:data:`OCC3D_PRIORITY`; another label space passes its own order (every label named exactly once).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Occ3D-nuScenes label names from lowest to highest priority (see the module docstring).
OCC3D_PRIORITY: tuple[str, ...] = (
    "free", "others",
    "terrain", "other_flat", "sidewalk", "driveable_surface",
    "vegetation", "manmade", "barrier", "traffic_cone",
    "bus", "trailer", "truck", "construction_vehicle", "car", "motorcycle", "bicycle", "pedestrian",
)


def priority_ranks(label_names: Sequence[str], order: Sequence[str] = OCC3D_PRIORITY) -> np.ndarray:
    """Rank of each label id: ``ranks[label] = position of its name in order``.

    Parameters
    ----------
    label_names : sequence of str
        The label space, index = label id; the last label is the free one (as :class:`LabelMap`).
    order : sequence of str
        Every label name exactly once, lowest priority first; the free label must come first.

    Returns
    -------
    (L,) uint8 ranks; the free label has rank 0, every other label a distinct positive rank.
    """
    names, order = list(label_names), list(order)
    if len(names) > 256:
        raise ValueError(f"priority_ranks: at most 256 labels fit uint8 ranks, got {len(names)}")
    missing = [n for n in names if n not in order]
    extra = [n for n in order if n not in names]
    dupes = sorted({n for n in order if order.count(n) > 1})
    if missing or extra or dupes:
        raise ValueError(f"priority order must name every label exactly once: missing {missing}, unknown {extra}, "
                         f"repeated {dupes} (labels: {names})")
    if order[0] != names[-1]:
        raise ValueError(f"priority order must start with the free label {names[-1]!r}, got {order[0]!r}")
    rank = {n: r for r, n in enumerate(order)}
    return np.array([rank[n] for n in names], dtype=np.uint8)

