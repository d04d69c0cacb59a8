"""One frame's occupancy ground truth, its configuration, and the files it is written to.

:func:`occupancy_for_frame` builds the Occ3D arrays of one frame from either source —
``scene`` (:class:`vlwm.gt.scene_source.SceneVoxelizer` plus the actors at the frame's time) or
``lidar`` (:func:`vlwm.gt.lidar_source.aggregate_sweeps` over a window of sweeps) — and the two
visibility masks (:mod:`vlwm.gt.visibility`).

Files, in a sequence's ``occupancy/`` folder:

* ``NNNNNN_occupancy.vlo`` (:mod:`vlwm.io.occupancy_file`, the format's one owner: zstd chunks
  behind a JSON header) with the Occ3D keys ``semantics`` (uint8 ``[X, Y, Z]`` label ids, free = the
  last label), ``mask_lidar`` and ``mask_camera`` (uint8 0/1, 1 = observed), ``occupancy`` (uint8,
  1 = not free; derived on read) for readers that expect that key, ``T_world_grid`` (float64 4x4,
  grid frame -> world) so that each file places itself, and ``instances`` (int32 ``[X, Y, Z]``,
  simulator instance id + 1 of the object in each voxel of a dynamic class, 0 elsewhere;
  :mod:`vlwm.gt.instances`; stored sparsely).  Older ``NNNNNN_occupancy.npz`` files
  (``np.savez_compressed``) load through the same reader; those written before ``instances``
  existed lack it and still load (:data:`OPTIONAL_KEYS`);
* ``grid.json`` (:func:`grid_document`): the grid spec, the frame convention, the z reference, the
  label names, the priority order and the configuration that made the files.

Both are written atomically (temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.grid import AERIAL, GridSpec, grid_preset
from vlwm.gt.instances import INSTANCES_KEY, dynamic_labels
from vlwm.gt.lidar_source import LidarSweep, ObjectPoses, aggregate_sweeps
from vlwm.gt.priority import OCC3D_PRIORITY, priority_ranks
from vlwm.gt.scene_source import DEFAULT_SOLID_CLASSES, ActorBoxes, SceneVoxelizer
from vlwm.gt.visibility import DEFAULT_CAMERA_SUBSAMPLE, CameraRays, camera_visibility, lidar_visibility
from vlwm.io import occupancy_file
from vlwm.io.atomic import atomic_write_json
from vlwm.io.recording import GRID_FILE
from vlwm.labels import OCC3D_CLASS_NAMES, CityClass

SOURCES = ("scene", "lidar")
OTHERS_LABEL = "others"                 #: the label of lidar points that carry none
GRID_FORMAT, GRID_FORMAT_VERSION = "vlwm-occupancy-grid", 2   #: 2: frame files carry ``instances``
#: Keys every frame file has, in the order written.
OCCUPANCY_KEYS = ("semantics", "mask_lidar", "mask_camera", "occupancy", "T_world_grid")
#: Keys written after :data:`OCCUPANCY_KEYS` that older files lack (readers must not require them).
OPTIONAL_KEYS = (INSTANCES_KEY,)
DEFAULT_LIDAR_WINDOW = 10               #: lidar source: sweeps either side of the frame (Occ3D aggregates ~20 s)

FRAME_CONVENTION = {
    "axes": "x forward along the vehicle's heading, y left, z up; metres; arrays indexed [x, y, z]",
    "rotation": "yaw only: the heading of the body x axis on the level plane; roll and pitch removed (z = gravity up)",
    "origin": "the vehicle's (x, y) and, in z, ground_z: the ground height under the vehicle",
    "z_reference": "ground_z = terrain height under the vehicle (the pose file's ground_z; scene.ground_height "
                   "or a lidar estimate where absent); also in each file's T_world_grid",
    "voxel_centre": "point_cloud_range[:3] + (index + 0.5) * voxel_size, in the grid frame",
    "grid_to_world": "p_world = R_z(yaw) @ p_grid + (x, y, ground_z) = T_world_grid @ p_grid",
    "occupied_voxel": "a voxel whose closed box meets a surface, solid interior, actor box or lidar point",
}


@dataclass(frozen=True)
class GTConfig:
    """How occupancy ground truth is made (recorded in ``grid.json``)."""

    grid: GridSpec = AERIAL
    """The voxel grid (``vlwm.gt.grid.GRID_PRESETS`` or a custom :class:`GridSpec`)."""
    source: str = "scene"
    """``scene``: exact voxelisation of the scene and actors; ``lidar``: multi-sweep lidar aggregation."""
    solid_interiors: bool = True
    """Scene source: fill the interiors of closed solids (buildings, ...); False leaves hollow shells."""
    solid_classes: tuple[CityClass, ...] = DEFAULT_SOLID_CLASSES
    """Scene source: city classes whose instances are filled when ``solid_interiors`` is on."""
    priority: tuple[str, ...] = OCC3D_PRIORITY
    """Label names, lowest priority first (free first): who wins a voxel several classes meet."""
    lidar_window: int = DEFAULT_LIDAR_WINDOW
    """Lidar source: sweeps before and after the frame that are aggregated (0 = the frame's own)."""
    camera_mask: bool = True
    """Compute ``mask_camera`` (needs cameras); False writes it all zero."""
    camera_subsample: int = DEFAULT_CAMERA_SUBSAMPLE
    """Camera visibility casts one ray per ``camera_subsample`` x ``camera_subsample`` pixels."""

    def __post_init__(self):
        if not isinstance(self.grid, GridSpec):
            raise ValueError(f"GTConfig.grid must be a GridSpec, got {type(self.grid).__name__}")
        if self.source not in SOURCES:
            raise ValueError(f"GTConfig.source must be one of {SOURCES}, got {self.source!r}")
        if not (isinstance(self.lidar_window, int) and self.lidar_window >= 0):
            raise ValueError(f"GTConfig.lidar_window must be an int >= 0, got {self.lidar_window!r}")
        if not (isinstance(self.camera_subsample, int) and self.camera_subsample >= 1):
            raise ValueError(f"GTConfig.camera_subsample must be an int >= 1, got {self.camera_subsample!r}")
        object.__setattr__(self, "solid_classes", tuple(CityClass(c) if not isinstance(c, str) else CityClass[c.upper()]
                                                         for c in self.solid_classes))
        object.__setattr__(self, "priority", tuple(self.priority))

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["grid"] = self.grid.to_json()
        d["solid_classes"] = [c.name for c in self.solid_classes]
        d["priority"] = list(self.priority)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GTConfig":
        """From :meth:`to_dict` or a hand-written dict; ``grid`` may be a preset name. Unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GTConfig: unknown keys {unknown}; known: {sorted(known)}")
        kw = dict(d)
        if "grid" in kw:
            kw["grid"] = grid_preset(kw["grid"]) if isinstance(kw["grid"], str) else GridSpec.from_json(kw["grid"])
        for key in ("solid_classes", "priority"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


class FrameOccupancy(NamedTuple):
    """One frame's ground truth, grid frame of ``frame``.

    semantics : (X, Y, Z) uint8 label ids (``free`` = empty).
    mask_lidar : (X, Y, Z) uint8, 1 = observed by the frame's lidar rays.
    mask_camera : (X, Y, Z) uint8, 1 = observed by a camera ray.
    frame : GridFrame, where the grid sits in the world.
    free : int, the free label.
    instances : (X, Y, Z) int32 or None, simulator instance id + 1 of the dynamic object in each voxel
        (0 = none; :mod:`vlwm.gt.instances`); None writes no ``instances`` array.
    """

    semantics: np.ndarray
    mask_lidar: np.ndarray
    mask_camera: np.ndarray
    frame: GridFrame
    free: int
    instances: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's arrays: :data:`OCCUPANCY_KEYS`, then ``instances`` when there is one."""
        out = {"semantics": self.semantics, "mask_lidar": self.mask_lidar, "mask_camera": self.mask_camera,
               "occupancy": (self.semantics != self.free).astype(np.uint8), "T_world_grid": self.frame.T_world_grid()}
        if self.instances is not None:
            out[INSTANCES_KEY] = self.instances
        return out


def occupancy_for_frame(frame: GridFrame, config: GTConfig, *, scene: SceneVoxelizer | None = None,
                        actors: ActorBoxes | None = None, sweeps: Sequence[LidarSweep] = (), current: int = 0,
                        object_poses: ObjectPoses | None = None, first_dynamic_instance: int | None = None,
                        cameras: CameraRays | None = None,
                        label_names: Sequence[str] = OCC3D_CLASS_NAMES) -> FrameOccupancy:
    """Semantics, instances of the dynamic classes and visibility of one frame.

    Parameters
    ----------
    frame : GridFrame
        The frame's grid in the world (:meth:`GridFrame.from_pose`).
    config : GTConfig
        Grid, source, interiors, priority, window, camera settings.
    scene : SceneVoxelizer
        Scene source: the prepared scene (its label map gives the label space).
    actors : ActorBoxes, optional
        Scene source: moving objects at the frame's time.
    sweeps : sequence of LidarSweep
        Lidar source: the window of sweeps, in time order.  Either source: ``sweeps[current]`` is the
        frame's own sweep, whose rays make ``mask_lidar`` (all zero without sweeps).
    current : int
        Index of the frame's own sweep in ``sweeps``.
    object_poses, first_dynamic_instance
        Lidar source: see :func:`vlwm.gt.lidar_source.aggregate_sweeps`.
    cameras : CameraRays, optional
        The frame's camera rays (:func:`vlwm.gt.visibility.camera_rays`); ``mask_camera`` is all zero without.
    label_names : sequence of str
        Lidar source: the label space of the sweeps' labels (the scene's for the scene source).
    """
    spec = config.grid
    if config.source == "scene":
        if scene is None:
            raise ValueError("occupancy_for_frame: the scene source needs a scene (SceneVoxelizer)")
        label_names = scene.scene.label_map.names
    names = tuple(label_names)
    free = len(names) - 1
    ranks = priority_ranks(names, config.priority)
    instances = np.zeros(spec.shape, np.int32)
    if config.source == "scene":
        sem = scene.semantics(frame, spec, ranks, actors, free, instance_grid=instances)
    else:
        if not sweeps:
            raise ValueError("occupancy_for_frame: the lidar source needs sweeps")
        if OTHERS_LABEL not in names:
            raise ValueError(f"occupancy_for_frame: the lidar source labels unlabelled points {OTHERS_LABEL!r}, "
                             f"which the label space {list(names)} lacks")
        sem = aggregate_sweeps(sweeps, current, frame, spec, ranks, free, names.index(OTHERS_LABEL), object_poses,
                               first_dynamic_instance, instance_grid=instances, dynamic_labels=dynamic_labels(names))
    mask_lidar = np.zeros(spec.shape, np.uint8)
    if sweeps:
        own = sweeps[current]
        mask_lidar = lidar_visibility(spec, frame, own.T_world_lidar(), own.points)
    mask_camera = np.zeros(spec.shape, np.uint8)
    if cameras is not None and config.camera_mask:
        mask_camera = camera_visibility(spec, frame, sem, free, cameras)
    return FrameOccupancy(sem, mask_lidar, mask_camera, frame, free, instances)


# ------------------------------------------------------------------------------ files


def occupancy_path(out_dir: str | os.PathLike, index: int) -> Path:
    """``<out_dir>/NNNNNN_occupancy.vlo`` of 1-based frame ``index`` (where it is written)."""
    return occupancy_file.frame_path(out_dir, index)


def write_occupancy(path: str | os.PathLike, occupancy: FrameOccupancy) -> Path:
    """Write one frame's file atomically (:func:`vlwm.io.occupancy_file.write_frame`: semantics, both
    masks, ``T_world_grid`` and ``instances`` when there is one); an older ``.npz`` file of the same
    frame beside it is removed once the new one is in place."""
    path = occupancy_file.write_frame(path, occupancy.semantics, free=occupancy.free,
                                      T_world_grid=occupancy.frame.T_world_grid(), mask_lidar=occupancy.mask_lidar,
                                      mask_camera=occupancy.mask_camera, instances=occupancy.instances)
    if path.name.endswith(occupancy_file.SUFFIX):
        path.with_name(path.name[:-len(occupancy_file.SUFFIX)] + occupancy_file.LEGACY_SUFFIX).unlink(missing_ok=True)
    return path


def load_occupancy(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a frame file, either format (:data:`OCCUPANCY_KEYS`, and ``instances`` where
    stored); a missing key (but those of :data:`OPTIONAL_KEYS`, which older files lack) or a damaged
    file is an error naming the file."""
    try:
        arrays = occupancy_file.read_frame(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such occupancy file") from None
    except occupancy_file.READ_ERRORS as exc:
        raise ValueError(f"{path}: not a readable occupancy file ({exc})") from exc
    missing = [k for k in OCCUPANCY_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: occupancy file lacks keys {missing}")
    return arrays


def grid_document(config: GTConfig, label_names: Sequence[str]) -> dict:
    """The content of ``grid.json``: everything needed to read the frame files and place their voxels."""
    names = list(label_names)
    return {
        "format": GRID_FORMAT,
        "version": GRID_FORMAT_VERSION,
        **config.grid.to_json(),
        "frame": FRAME_CONVENTION,
        "label_names": names,
        "free_label": len(names) - 1,
        "keys": {
            "semantics": "uint8 [X, Y, Z] label ids",
            "mask_lidar": "uint8 [X, Y, Z], 1 = crossed or hit by a lidar ray of the frame",
            "mask_camera": "uint8 [X, Y, Z], 1 = seen by a camera ray (up to the first occupied voxel)",
            "occupancy": "uint8 [X, Y, Z], 1 = not free",
            "T_world_grid": "float64 [4, 4], grid frame -> local ENU world",
            INSTANCES_KEY: "int32 [X, Y, Z], simulator instance id + 1 of the object in a voxel of a dynamic "
                           "class (the same over the recording), 0 = none",
        },
        "config": config.to_dict(),
    }


def write_grid_json(out_dir: str | os.PathLike, document: dict, overwrite: bool = False) -> Path:
    """Write ``grid.json``; an existing one describing other settings is an error unless ``overwrite``."""
    path = Path(out_dir) / GRID_FILE
    if path.is_file() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: unreadable ({exc}); re-run with --overwrite to replace it") from None
        new = json.loads(json.dumps(document))                           # as it would read back
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"{path} was written with other settings ({', '.join(changed)} differ): re-run with "
                             f"--overwrite to regenerate every frame, or write to another folder")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, document)
