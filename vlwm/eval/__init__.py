"""Stage 6, evaluation: forecasting metrics (the OccWorld protocol, VPQ), ego-motion metrics, baselines.

* :mod:`vlwm.eval.occupancy` — :class:`OccForecastMetric`: per-step mIoU / IoU, 1 s / 2 s / 3 s,
  masks and groups; bit-exact with the official ``multi_step_MeanIou``.
* :mod:`vlwm.eval.trajectory` — :class:`PlanningMetric`: ADE / FDE, L2 in the ST-P3 / VAD and UniAD
  conventions, collision rates; trajectories from motions and poses.
* :mod:`vlwm.eval.collision` — ego box against the true future occupancy (BEV for rovers, 3-D for drones).
* :mod:`vlwm.eval.stp3` — the reference ST-P3 planning metric on its BEV raster (parity).
* :mod:`vlwm.eval.vpq` — :class:`VPQMetric`: FIERY's video panoptic quality on voxel instances.
* :mod:`vlwm.eval.baselines` — ``copy_last`` and ``ego_warp``.
* :func:`horizon_steps` (from :mod:`vlwm.data.horizons`) — which step is "1 s" at a given frame rate.

``docs/evaluation.md`` describes the protocol and every choice made here.
"""

from vlwm.data.horizons import horizon_steps
from vlwm.eval.baselines import copy_last, ego_warp, future_grid_motion
from vlwm.eval.collision import (DRONE_COLLISION, ROVER_COLLISION, CollisionConfig, CollisionResult, EgoBox,
                                 collision_config, occupancy_collisions)
from vlwm.eval.occupancy import OccForecastMetric, OccForecastResult
from vlwm.eval.trajectory import (PlanningMetric, PlanningResult, grid_motion_from_poses, l2_per_step,
                                  poses_from_rel_motion)
from vlwm.eval.vpq import TrackerConfig, VPQMetric, VPQResult, connected_instances, track_instances

__all__ = [
    "OccForecastMetric", "OccForecastResult", "PlanningMetric", "PlanningResult", "VPQMetric", "VPQResult",
    "TrackerConfig", "CollisionConfig", "CollisionResult", "EgoBox", "ROVER_COLLISION", "DRONE_COLLISION",
    "collision_config", "occupancy_collisions", "copy_last", "ego_warp", "future_grid_motion",
    "grid_motion_from_poses", "poses_from_rel_motion", "l2_per_step", "horizon_steps",
    "connected_instances", "track_instances",
]
