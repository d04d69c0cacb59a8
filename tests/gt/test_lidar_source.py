"""Lidar source: multi-sweep aggregation agrees with the exact scene voxelisation where the lidar
looked, moving objects are carried along in their own frame, unlabelled points are 'others'."""

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.frame_gt import GTConfig, occupancy_for_frame
from vlwm.gt.lidar_source import LidarSweep, aggregate_sweeps, estimate_object_poses, object_poses_from_boxes
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer
from vlwm.labels import FREE, OCC3D_ID, CityClass
from vlwm.io.frames import Pose
from vlwm.sim.lidar import drone_lidar, rover_lidar, scan

OTHERS, CAR = OCC3D_ID["others"], OCC3D_ID["car"]


def flight(scene, n=7, step=1.0, altitude=10.0):
    """Sweeps of a drone flying east over the tiny city, turning slowly."""
    lidar = drone_lidar()
    out = []
    for k in range(n):
        pose = Pose.from_xyz_rpy(0.5 * k, (-3.0 + step * k, 0.3 * k, altitude), (0.02, -0.03, 0.1 * k))
        out.append(LidarSweep(pose, scan(scene.cast, pose, lidar), lidar.T_body_sensor()))
    return out


def test_lidar_source_agrees_with_scene_source_on_observed_voxels(tiny):
    sweeps = flight(tiny.scene)
    vox = SceneVoxelizer(tiny.scene)
    for current in (2, 3, 4):
        window = sweeps[current - 2:current + 3]
        frame = GridFrame.from_pose(window[2].pose, 0.0)
        exact = occupancy_for_frame(frame, GTConfig(grid=tiny.spec), scene=vox, sweeps=window, current=2)
        lidar = occupancy_for_frame(frame, GTConfig(grid=tiny.spec, source="lidar"), sweeps=window, current=2)
        np.testing.assert_array_equal(exact.mask_lidar, lidar.mask_lidar)   # the same rays
        seen = exact.mask_lidar.astype(bool)
        a, b = (exact.semantics != FREE) & seen, (lidar.semantics != FREE) & seen
        iou = (a & b).sum() / (a | b).sum()
        assert iou >= 0.9, f"frame {current}: IoU {iou:.3f}"
        assert not np.any(b & ~a)                                            # points never invent surfaces
        both = a & b
        assert np.mean(exact.semantics[both] == lidar.semantics[both]) >= 0.95


def test_more_sweeps_fill_more_of_the_surfaces(tiny):
    sweeps = flight(tiny.scene)
    frame = GridFrame.from_pose(sweeps[3].pose, 0.0)
    counts = [(aggregate_sweeps(sweeps[3 - w:4 + w], w, frame, tiny.spec, tiny.ranks, FREE, OTHERS) != FREE).sum()
              for w in (0, 1, 3)]
    assert counts[0] < counts[1] < counts[2]


def car_at(t):
    """A car driving east along the road at 4 m/s."""
    return (-6.0 + 4.0 * t, -1.5, 0.0), (4.5, 1.8, 1.5), 0.0


@pytest.fixture(scope="module")
def traffic_sweeps(tiny):
    """Rover sweeps of the tiny city with a moving car frozen in at each time; the car is instance 4."""
    lidar = rover_lidar()
    out = []
    for k in range(5):
        t = 0.5 * k
        centre, size, yaw = car_at(t)
        scene = tiny.build_city(extra_boxes=[(centre, size, yaw, CityClass.CAR, "car_0")])
        pose = Pose.from_xyz_rpy(t, (-4.0, 3.0, 0.0), (0.0, 0.0, -0.3))
        out.append(LidarSweep(pose, scan(scene.cast, pose, lidar), lidar.T_body_sensor()))
    assert all(np.any(sw.points[:, 5] == 4) for sw in out)
    return out


def car_voxels(tiny, frame, t):
    centre, size, yaw = car_at(t)
    box = ActorBoxes(np.array([centre]), np.array([yaw]), np.array([size]), np.array([CityClass.CAR], np.uint8),
                     np.array([4], np.int32))
    return SceneVoxelizer(tiny.scene).semantics(frame, tiny.spec, tiny.ranks, box) == CAR


def test_moving_objects_are_accumulated_in_their_own_frame(tiny, traffic_sweeps):
    current = 2
    frame = GridFrame.from_pose(traffic_sweeps[current].pose, 0.0)
    truth = car_voxels(tiny, frame, 0.5 * current)
    boxes = object_poses_from_boxes([{4: (np.array(car_at(0.5 * k)[0]), 0.0)} for k in range(5)])
    known = aggregate_sweeps(traffic_sweeps, current, frame, tiny.spec, tiny.ranks, FREE, OTHERS, boxes) == CAR
    own = aggregate_sweeps(traffic_sweeps[current:current + 1], 0, frame, tiny.spec, tiny.ranks, FREE, OTHERS) == CAR
    assert known.sum() > own.sum() and np.all(truth[known])              # denser, and all inside the car
    estimated = aggregate_sweeps(traffic_sweeps, current, frame, tiny.spec, tiny.ranks, FREE, OTHERS) == CAR
    assert estimated.sum() > own.sum() and truth[estimated].mean() >= 0.9
    # the same points taken for static ones ('others', no instance) smear along the road
    static = []
    for sw in traffic_sweeps:
        pts = sw.points.copy()
        pts[pts[:, 5] == 4, 4:6] = (OTHERS, -1)
        static.append(sw._replace(points=pts))
    smeared = aggregate_sweeps(static, current, frame, tiny.spec, tiny.ranks, FREE, OTHERS) == OTHERS
    assert smeared.sum() > known.sum() and truth[smeared].mean() < 0.6


def test_estimated_poses_follow_the_object(tiny, traffic_sweeps):
    poses = estimate_object_poses(traffic_sweeps, 2, OTHERS, FREE)
    xs = [p[4][0, 3] for p in poses]
    assert np.all(np.diff(xs) > 1.0)                                     # the car moves ~2 m per sweep
    assert all(abs(p[4][1, 0]) < 0.2 for p in poses)                     # heading stays along x (or flips by pi)


def test_unlabelled_points_are_others(tiny):
    sweep = flight(tiny.scene, n=1)[0]
    bare = LidarSweep(sweep.pose, sweep.points[:, :4].copy(), sweep.T_body_lidar, ("x", "y", "z", "intensity"))
    frame = GridFrame.from_pose(sweep.pose, 0.0)
    occ = occupancy_for_frame(frame, GTConfig(grid=tiny.spec, source="lidar"), sweeps=[bare])
    assert set(np.unique(occ.semantics)) == {OTHERS, FREE}
    labelled = occupancy_for_frame(frame, GTConfig(grid=tiny.spec, source="lidar"), sweeps=[sweep])
    np.testing.assert_array_equal(occ.semantics != FREE, labelled.semantics != FREE)
    odd = sweep.points.copy()
    odd[:5, 4] = [FREE, 99, -1, np.nan, 3.5]                             # free, out of range, negative, nan, fractional
    assert np.all(sweep._replace(points=odd).labels(OTHERS, FREE)[:5] == OTHERS)
