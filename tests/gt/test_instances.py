"""Instance ids of the dynamic classes: the kernels track them like their references without touching
the class grid, the result does not depend on the order of the inputs, a moving car keeps its id
over a recording (scene source), and lidar hits give their voxels the id of what they hit."""

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.frame_gt import GTConfig, load_occupancy, occupancy_for_frame, occupancy_path
from vlwm.gt.instances import dynamic_labels, voxel_instance_ids
from vlwm.gt.lidar_source import LidarSweep
from vlwm.gt.scene_source import SceneVoxelizer
from vlwm.gt.sequence import SequenceInputs, generate_sequence
from vlwm.gt.voxelize import fill_solids, splat_points, voxelize_surfaces
from vlwm.labels import FREE, OCC3D_CLASS_NAMES, OCC3D_ID, CityClass
from vlwm.io.frames import Pose
from vlwm.sim.lidar import drone_lidar, rover_lidar, scan
from vlwm.io.sequence_writer import SequenceWriter
from vlwm.sim.traffic import ActorSpec, ActorStates
from vlwm.world.builder import box_mesh

SHAPE = (24, 20, 12)
CAR, BUS, ROAD = OCC3D_ID["car"], OCC3D_ID["bus"], OCC3D_ID["driveable_surface"]
DYNAMIC = dynamic_labels(OCC3D_CLASS_NAMES)


def empty():
    return np.full(SHAPE, FREE, np.uint8), np.zeros(SHAPE, np.int32)


def random_labels_and_ids(rng, n):
    """Labels drawn mostly from a few dynamic classes (so that ties happen) and their stored ids."""
    labels = rng.choice([CAR, CAR, BUS, OCC3D_ID["pedestrian"], ROAD, OCC3D_ID["manmade"]], n).astype(np.uint8)
    return labels, voxel_instance_ids(rng.integers(-1, 6, n), labels, DYNAMIC)


def run(kernel, backend, tracked, *args):
    sem, inst = empty()
    if tracked:
        kernel(sem, *args[:-1], backend=backend, instance_grid=inst, **args[-1])
    else:
        kernel(sem, *args[:-1], backend=backend)
    return sem, inst


@pytest.mark.parametrize("what", ["surfaces", "solids", "points"])
@pytest.mark.parametrize("seed", range(2))
def test_kernels_track_instances_like_their_references(what, seed, tiny):
    rng = np.random.default_rng(seed)
    if what == "surfaces":
        tri = rng.uniform(-3, np.array(SHAPE) + 3, (60, 1, 3)) + rng.normal(0, 4.0, (60, 3, 3))
        labels, ids = random_labels_and_ids(rng, len(tri))
        kernel, args = voxelize_surfaces, (tri, labels, tiny.ranks, {"instance_ids": ids})
    elif what == "solids":
        boxes = [box_mesh(rng.uniform(0, SHAPE), rng.uniform(1, 7, 3), rng.uniform(-np.pi, np.pi)) for _ in range(8)]
        tri = np.concatenate([v[f] for v, f in boxes])
        labels, ids = random_labels_and_ids(rng, len(boxes))
        kernel, args = fill_solids, (tri, np.repeat(np.arange(len(boxes)), 12), labels, tiny.ranks,
                                     {"group_instances": ids})
    else:
        pts = rng.uniform(-2, np.array(SHAPE) + 2, (4000, 3))
        labels, ids = random_labels_and_ids(rng, len(pts))
        kernel, args = splat_points, (pts, labels, tiny.ranks, {"instance_ids": ids})
    fast, fast_inst = run(kernel, "numba", True, *args)
    ref, ref_inst = run(kernel, "numpy", True, *args)
    plain, _ = run(kernel, "numba", False, *args)
    np.testing.assert_array_equal(fast, plain)                       # the class grid is untouched
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(fast_inst, ref_inst)
    assert (fast_inst > 0).sum() > 20
    assert np.all(DYNAMIC[fast[fast_inst > 0]])                      # ids only where a dynamic class won


def test_instance_grid_does_not_depend_on_order(tiny):
    """Two cars' boxes sharing voxels and a road under them: the smaller id wins the shared voxels."""
    road = (np.array([[[0, 0, 3.2], [24, 0, 3.2], [0, 20, 3.2]]]), ROAD, 0)
    cars = [(v[f], CAR, iid) for (v, f), iid in ((box_mesh((6.0, 6.0, 3.0), (6.0, 3.0, 3.0), 0.0), 7),
                                                  (box_mesh((9.5, 7.0, 3.0), (6.0, 3.0, 3.0), 0.3), 3))]
    results = []
    for parts in ([road, *cars], [*cars[::-1], road]):
        sem, inst = empty()
        for tri, label, iid in parts:
            voxelize_surfaces(sem, tri, np.full(len(tri), label, np.uint8), tiny.ranks, instance_grid=inst,
                              instance_ids=np.full(len(tri), iid))
        solids = [p for p in parts if p[1] == CAR]
        fill_solids(sem, np.concatenate([p[0] for p in solids]), np.repeat(np.arange(2), 12),
                    np.array([CAR, CAR], np.uint8), tiny.ranks, instance_grid=inst,
                    group_instances=np.array([p[2] for p in solids]))
        results.append((sem, inst))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    sem, inst = results[0]
    assert set(np.unique(inst)) == {0, 3, 7}
    assert np.all(inst[sem == ROAD] == 0) and np.all(inst[sem == CAR] > 0)
    assert inst[8, 6, 3] == 3                                         # inside both boxes: the smaller id


class OneCar:
    """A stand-in for :class:`vlwm.sim.traffic.Traffic`: a car driving east at 4 m/s along the road and
    a drone (``others``: moving, but not a dynamic class) hovering above it."""

    def __init__(self, first_instance: int):
        self.actors = (ActorSpec(first_instance, "car_0000", CityClass.CAR, (4.5, 1.8, 1.5)),
                       ActorSpec(first_instance + 1, "drone_0000", CityClass.DRONE, (0.8, 0.8, 0.3)))

    def states(self, t: float) -> ActorStates:
        pos = np.array([[-6.0 + 4.0 * t, -1.5, 0.0], [-3.0, 2.0, 5.0]])
        return ActorStates(t, pos, np.zeros(2), np.array([[4.0, 0, 0], [0, 0, 0]]))


def test_a_moving_car_keeps_its_instance_over_a_recording(tmp_path, tiny):
    lidar = drone_lidar()
    writer = SequenceWriter.create(tmp_path, "drone", {"vehicle_id": "drone_test"}, name="drone_car")
    for k in range(4):
        pose = Pose.from_xyz_rpy(0.5 * k, (-2.0 + 1.0 * k, 3.0, 8.0), (0.0, 0.0, 0.1 * k))
        writer.write_frame(pose, lidar=scan(tiny.scene.cast, pose, lidar), ground_z=0.0)
    writer.close()
    traffic = OneCar(len(tiny.scene.instance_names))
    car_id = traffic.actors[0].instance
    report = generate_sequence(writer.path, writer.path / "occupancy", GTConfig(grid=tiny.spec),
                               SequenceInputs(T_body_lidar=lidar.T_body_sensor(), scene=SceneVoxelizer(tiny.scene),
                                              traffic=traffic))
    assert report.written == [1, 2, 3, 4]
    centres = []
    for k in range(4):
        occ = load_occupancy(occupancy_path(writer.path / "occupancy", k + 1))
        sem, inst = occ["semantics"], occ["instances"]
        assert inst.dtype == np.int32 and inst.shape == sem.shape
        assert (sem == CAR).sum() > 20
        np.testing.assert_array_equal(inst == car_id + 1, sem == CAR)   # exactly the car's voxels, by its id
        assert set(np.unique(inst)) == {0, car_id + 1}                  # the drone ('others') has none
        assert (sem == OCC3D_ID["others"]).any()
        idx = np.argwhere(inst == car_id + 1)
        centres.append((occ["T_world_grid"] @ np.r_[tiny.spec.centres(idx).mean(0), 1.0])[:2])
    step = np.diff(np.array(centres), axis=0)                          # the car moves 2 m east per frame
    np.testing.assert_allclose(step[:, 0], 2.0, atol=0.3)


def test_lidar_hits_give_their_voxels_the_instance_of_what_they_hit(tiny):
    """A car (instance 4 in the frozen city) seen over a window of rover sweeps: the car voxels of
    the aggregate carry id 5 in every frame, moved with the car."""
    lidar = rover_lidar()
    sweeps = []
    for k in range(5):
        t = 0.5 * k
        scene = tiny.build_city(extra_boxes=[((-6.0 + 4.0 * t, -1.5, 0.0), (4.5, 1.8, 1.5), 0.0, CityClass.CAR,
                                              "car_0")])
        pose = Pose.from_xyz_rpy(t, (-4.0, 3.0, 0.0), (0.0, 0.0, -0.3))
        sweeps.append(LidarSweep(pose, scan(scene.cast, pose, lidar), lidar.T_body_sensor()))
    for current in (1, 2, 3):
        frame = GridFrame.from_pose(sweeps[current].pose, 0.0)
        occ = occupancy_for_frame(frame, GTConfig(grid=tiny.spec, source="lidar"), sweeps=sweeps, current=current)
        car = occ.semantics == CAR
        assert car.sum() > 10
        np.testing.assert_array_equal(occ.instances == 5, car)
        assert set(np.unique(occ.instances)) == {0, 5}
    # unlabelled points carry no instance
    bare = [LidarSweep(s.pose, s.points[:, :4].copy(), s.T_body_lidar, ("x", "y", "z", "intensity")) for s in sweeps]
    occ = occupancy_for_frame(GridFrame.from_pose(sweeps[2].pose, 0.0), GTConfig(grid=tiny.spec, source="lidar"),
                              sweeps=bare, current=2)
    assert not occ.instances.any()
