"""Occupancy ground truth: per-frame Occ3D-style semantic grids and visibility masks.

* Grid: :class:`GridSpec` and :data:`GRID_PRESETS` (``occ3d``, ``aerial``); the level, yaw-only,
  ground-anchored grid frame :class:`GridFrame`.
* Sources: :class:`SceneVoxelizer` (exact scene + actor voxelisation) and multi-sweep lidar
  aggregation (:mod:`vlwm.gt.lidar_source`); class priorities in :mod:`vlwm.gt.priority`.
* Visibility: ``mask_lidar`` / ``mask_camera`` by DDA (:mod:`vlwm.gt.visibility`).
* One frame: :func:`occupancy_for_frame`, :func:`write_occupancy`; a sequence: :func:`generate_sequence`.

See ``docs/occupancy.md``.
"""

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.frame_gt import GTConfig, FrameOccupancy, load_occupancy, occupancy_for_frame, occupancy_path, \
    write_occupancy
from vlwm.gt.grid import GRID_PRESETS, GridSpec, grid_preset
from vlwm.gt.lidar_source import LidarSweep
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer
from vlwm.gt.sequence import SequenceInputs, SequenceReport, generate_sequence
from vlwm.gt.visibility import CameraRays, PinholeCamera, camera_rays

__all__ = ["ActorBoxes", "CameraRays", "FrameOccupancy", "GRID_PRESETS", "GTConfig", "GridFrame", "GridSpec",
           "LidarSweep", "PinholeCamera", "SceneVoxelizer", "SequenceInputs", "SequenceReport", "camera_rays",
           "generate_sequence", "grid_preset", "load_occupancy", "occupancy_for_frame", "occupancy_path",
           "write_occupancy"]
