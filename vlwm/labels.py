"""The label space, defined once for every stage.

Two vocabularies meet here:

* **City semantics** (:class:`CityClass`): what a world generator or importer knows about a
  triangle — a building, a road, a tree, a car.  Scenes store these per triangle.
* **Occupancy labels**: the 18-class Occ3D-nuScenes scheme the pretrained OccWorld uses
  (ids 0..17, 17 = free; see ``shared/reference/occworld/SPEC.md`` §1.1).  Sensors, ground
  truth and models speak this space.

A :class:`LabelMap` turns city semantics into occupancy labels.  :data:`DEFAULT_CITY_TO_OCC3D`
is the one documented table (also in ``docs/conventions.md``); pass another mapping to
:meth:`LabelMap.from_mapping` to change it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

import numpy as np

# ---------------------------------------------------------------------------------------------
# Occ3D-nuScenes occupancy labels (OccWorld's `labels_16` + free)
# ---------------------------------------------------------------------------------------------

OCC3D_CLASS_NAMES: tuple[str, ...] = (
    "others",                # 0
    "barrier",               # 1
    "bicycle",               # 2
    "bus",                   # 3
    "car",                   # 4
    "construction_vehicle",  # 5
    "motorcycle",            # 6
    "pedestrian",            # 7
    "traffic_cone",          # 8
    "trailer",               # 9
    "truck",                 # 10
    "driveable_surface",     # 11
    "other_flat",            # 12
    "sidewalk",              # 13
    "terrain",               # 14
    "manmade",               # 15
    "vegetation",            # 16
    "free",                  # 17
)
NUM_OCC_CLASSES = len(OCC3D_CLASS_NAMES)  # 18, free included
FREE = 17  #: the free/empty voxel id, hard-coded across OccWorld
OCC3D_ID = {name: i for i, name in enumerate(OCC3D_CLASS_NAMES)}

#: Classes that move (instances tracked over time); OccWorld counts 1..10 as "movable".
DYNAMIC_OCC_CLASSES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 9, 10)

#: The ground surface: ground truth estimates the ground height from these labels' lidar points
#: (when neither the pose file nor a scene gives it); ``vlwm data check`` reports occupancy without them.
GROUND_LABEL_NAMES: tuple[str, ...] = ("driveable_surface", "other_flat", "sidewalk", "terrain")

#: RGB colours (uint8) of the Occ3D visualisation palette, one row per label id.
OCC3D_PALETTE = np.array(
    [
        [0, 0, 0],          # others
        [255, 120, 50],     # barrier
        [255, 192, 203],    # bicycle
        [255, 255, 0],      # bus
        [0, 150, 245],      # car
        [0, 255, 255],      # construction_vehicle
        [200, 180, 0],      # motorcycle
        [255, 0, 0],        # pedestrian
        [255, 240, 150],    # traffic_cone
        [135, 60, 0],       # trailer
        [160, 32, 240],     # truck
        [255, 0, 255],      # driveable_surface
        [139, 137, 137],    # other_flat
        [75, 0, 75],        # sidewalk
        [150, 240, 80],     # terrain
        [230, 230, 250],    # manmade
        [0, 175, 0],        # vegetation
        [255, 255, 255],    # free
    ],
    dtype=np.uint8,
)


# ---------------------------------------------------------------------------------------------
# City semantics
# ---------------------------------------------------------------------------------------------


class CityClass(enum.IntEnum):
    """What a triangle of a city scene is, independent of any training label space."""

    UNKNOWN = 0
    BUILDING = 1       # walls, roofs, building ground surfaces
    ROAD = 2           # carriageway
    SIDEWALK = 3       # footway, pedestrian plaza
    CROSSWALK = 4
    PARKING = 5
    RAILWAY = 6
    WATER = 7
    TERRAIN = 8        # bare ground, relief (DEM) surfaces
    GRASS = 9          # lawns in parks
    VEGETATION = 10    # trees, hedges (solid volumes)
    BRIDGE = 11
    BARRIER = 12       # walls, guard rails, fences
    POLE = 13          # street lights, signs, utility poles
    CAR = 14
    BUS = 15
    TRUCK = 16
    PEDESTRIAN = 17
    BICYCLE = 18
    MOTORCYCLE = 19
    DRONE = 20
    CONSTRUCTION_VEHICLE = 21
    TRAFFIC_CONE = 22
    TRAILER = 23


NUM_CITY_CLASSES = len(CityClass)

#: The documented default table: city semantics -> Occ3D-nuScenes label.
#: Drones have no Occ3D class and fall in ``others`` (0), as do unknown surfaces.
DEFAULT_CITY_TO_OCC3D: dict[CityClass, str] = {
    CityClass.UNKNOWN: "others",
    CityClass.BUILDING: "manmade",
    CityClass.ROAD: "driveable_surface",
    CityClass.SIDEWALK: "sidewalk",
    CityClass.CROSSWALK: "driveable_surface",
    CityClass.PARKING: "driveable_surface",
    CityClass.RAILWAY: "other_flat",
    CityClass.WATER: "other_flat",
    CityClass.TERRAIN: "terrain",
    CityClass.GRASS: "terrain",
    CityClass.VEGETATION: "vegetation",
    CityClass.BRIDGE: "manmade",
    CityClass.BARRIER: "barrier",
    CityClass.POLE: "manmade",
    CityClass.CAR: "car",
    CityClass.BUS: "bus",
    CityClass.TRUCK: "truck",
    CityClass.PEDESTRIAN: "pedestrian",
    CityClass.BICYCLE: "bicycle",
    CityClass.MOTORCYCLE: "motorcycle",
    CityClass.DRONE: "others",
    CityClass.CONSTRUCTION_VEHICLE: "construction_vehicle",
    CityClass.TRAFFIC_CONE: "traffic_cone",
    CityClass.TRAILER: "trailer",
}


@dataclass(frozen=True)
class LabelMap:
    """Maps city semantics to an occupancy label space.

    Attributes
    ----------
    names : tuple of str
        Label names, index = label id.  The last label is the free class.
    table : (NUM_CITY_CLASSES,) uint8
        ``table[city_class]`` is the label id of that city class.
    """

    names: tuple[str, ...]
    table: np.ndarray

    @property
    def free(self) -> int:
        """Id of the free (empty) label: the last one."""
        return len(self.names) - 1

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def __call__(self, city: np.ndarray) -> np.ndarray:
        """Label ids (uint8, same shape) of an array of :class:`CityClass` ids."""
        return self.table[np.asarray(city, dtype=np.intp)]

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[CityClass | str | int, str | int],
        names: tuple[str, ...] = OCC3D_CLASS_NAMES,
    ) -> "LabelMap":
        """Build from ``{city class (enum, name or id): label (name or id)}``.

        Every city class must be mapped: a missing or unknown entry is an error that names it.
        """
        if len(names) > 256:
            raise ValueError(f"at most 256 labels fit a uint8 label space, got {len(names)}")
        index = {n: i for i, n in enumerate(names)}
        table = np.full(NUM_CITY_CLASSES, -1, dtype=np.int32)
        for key, label in mapping.items():
            city = _city_class(key)
            if isinstance(label, str):
                if label not in index:
                    raise ValueError(f"label {label!r} (for {city.name}) is not one of {list(names)}")
                lid = index[label]
            else:
                lid = int(label)
                if not 0 <= lid < len(names):
                    raise ValueError(f"label id {lid} (for {city.name}) outside 0..{len(names) - 1}")
            table[city] = lid
        missing = [CityClass(i).name for i in np.flatnonzero(table < 0)]
        if missing:
            raise ValueError(f"city classes without a label: {missing}")
        return cls(names=tuple(names), table=table.astype(np.uint8))

    def to_mapping(self) -> dict[str, str]:
        """``{city class name: label name}``: the JSON form stored with scenes."""
        return {c.name: self.names[self.table[c]] for c in CityClass}


def _city_class(key: CityClass | str | int) -> CityClass:
    if isinstance(key, CityClass):
        return key
    if isinstance(key, str):
        try:
            return CityClass[key.upper()]
        except KeyError:
            raise ValueError(f"unknown city class {key!r}; known: {[c.name for c in CityClass]}") from None
    try:
        return CityClass(int(key))
    except ValueError:
        raise ValueError(f"unknown city class id {key!r}") from None


DEFAULT_LABEL_MAP = LabelMap.from_mapping(DEFAULT_CITY_TO_OCC3D)
