"""Per-voxel instance ids of the dynamic classes: which object a car or pedestrian voxel belongs to.

The simulator gives every object an instance id — scene instances ``0 .. I-1`` per triangle (``-1`` =
none: ground, roads), then the traffic's actors (``car_0000``, ``bus_0000``, ...) after them, and a
lidar return the id of what it hit (``docs/conventions.md``).  The ground truth stores, beside the
class grid, an ``instances`` grid (``(X, Y, Z) int32``) that holds **instance id + 1** where the
voxel's class is dynamic and the thing that gave the voxel that class had an id, and
:data:`NO_VOXEL_INSTANCE` (0) everywhere else.  The ids are the simulator's, so they stay the same over
a recording (what video panoptic quality needs, :mod:`vlwm.eval.vpq`).

Dynamic labels are named by :data:`DYNAMIC_LABEL_NAMES` (the Occ3D names of
:data:`vlwm.labels.DYNAMIC_OCC_CLASSES`); another label space marks the labels of the same names.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlwm.labels import DYNAMIC_OCC_CLASSES, OCC3D_CLASS_NAMES

INSTANCES_KEY = "instances"  #: the instance grid's key in the occupancy files
NO_VOXEL_INSTANCE = 0    #: the ``instances`` value of voxels without a dynamic object
INSTANCE_OFFSET = 1      #: stored value = simulator instance id + this (so id 0 stays distinct from "none")
#: Labels whose voxels carry instance ids: bicycle, bus, car, construction_vehicle, motorcycle,
#: pedestrian, trailer, truck.
DYNAMIC_LABEL_NAMES: tuple[str, ...] = tuple(OCC3D_CLASS_NAMES[i] for i in DYNAMIC_OCC_CLASSES)


def dynamic_labels(label_names: Sequence[str]) -> np.ndarray:
    """(L,) bool: which labels of a label space (index = label id) are dynamic, by name."""
    return np.array([n in DYNAMIC_LABEL_NAMES for n in label_names], bool)


def voxel_instance_ids(instance: np.ndarray, labels: np.ndarray, dynamic: np.ndarray) -> np.ndarray:
    """The value each triangle, solid, actor or point writes into the ``instances`` grid.

    Parameters
    ----------
    instance : (n,) int
        Simulator instance ids (``-1`` or any negative value = none).
    labels : (n,) uint8
        Occupancy label of each item.
    dynamic : (L,) bool
        :func:`dynamic_labels` of the label space.

    Returns
    -------
    (n,) int32: ``instance + 1`` where the label is dynamic and the id is >= 0, else :data:`NO_VOXEL_INSTANCE`.
    """
    instance = np.asarray(instance, np.int64)
    labels = np.asarray(labels, np.intp)
    keep = (instance >= 0) & np.asarray(dynamic, bool)[labels]
    out = np.where(keep, instance + INSTANCE_OFFSET, NO_VOXEL_INSTANCE)
    if out.size and out.max() > np.iinfo(np.int32).max:
        raise ValueError(f"instance id {int(out.max()) - INSTANCE_OFFSET} does not fit the int32 instance grid")
    return out.astype(np.int32)
