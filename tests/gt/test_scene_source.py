"""Scene source: buildings solid or hollow, the grid turns with the vehicle's heading only, actors are
solid boxes, and the per-scene triangle index changes nothing but speed."""

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame, index_transform
from vlwm.io.frames import transform_points
from vlwm.gt.grid import GridSpec
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer
from vlwm.gt.voxelize import fill_solids, voxelize_surfaces
from vlwm.labels import FREE, OCC3D_ID, CityClass
from vlwm.io.frames import Pose

MANMADE, ROAD, TERRAIN = OCC3D_ID["manmade"], OCC3D_ID["driveable_surface"], OCC3D_ID["terrain"]


def value_at(sem, spec, p):
    idx, inside = spec.index_of(np.atleast_2d(p))
    assert inside.all()
    return sem[tuple(idx[0])]


def test_buildings_are_solid_or_hollow_as_configured(tiny):
    frame = GridFrame(0.0, 0.0, 0.0, 0.0)
    solid = SceneVoxelizer(tiny.scene).semantics(frame, tiny.spec, tiny.ranks)
    hollow = SceneVoxelizer(tiny.scene, solid_interiors=False).semantics(frame, tiny.spec, tiny.ranks)
    inside = (-5.1, -6.1, 1.6)                                           # middle of the 5 x 4 x 3 box at (-5, -6)
    assert value_at(solid, tiny.spec, inside) == MANMADE
    assert value_at(hollow, tiny.spec, inside) == FREE
    assert value_at(hollow, tiny.spec, (-5.1, -7.9, 1.6)) == MANMADE     # its wall at y = -8
    assert np.all(solid[hollow == MANMADE] == MANMADE) and (solid == MANMADE).sum() > (hollow == MANMADE).sum() + 100
    # the two-tier instance fills the podium and the tower on it, not the air beside the tower
    assert value_at(solid, tiny.spec, (4.1, -7.1, 5.1)) == MANMADE
    assert value_at(solid, tiny.spec, (6.1, -7.1, 3.6)) == FREE
    assert value_at(solid, tiny.spec, tiny.tree + (3.6,)) == OCC3D_ID["vegetation"]


def test_ground_is_one_layer_at_z_zero_with_road_and_terrain(tiny):
    sem = SceneVoxelizer(tiny.scene).semantics(GridFrame(0.0, 0.0, 0.0, 0.0), tiny.spec, tiny.ranks)
    k0 = tiny.spec.index_of(np.array([[0.0, 0.0, 0.0]]))[0][0, 2]
    ground = np.isin(sem, [ROAD, TERRAIN])
    assert set(np.unique(np.argwhere(ground)[:, 2])) == {k0}
    assert value_at(sem, tiny.spec, (0.3, 0.3, 0.0)) == ROAD and value_at(sem, tiny.spec, (0.3, 9.0, 0.0)) == TERRAIN
    assert np.all(sem[:, :, :k0] == FREE)                                # nothing below the ground


@pytest.mark.parametrize("yaw, where", [(0.0, (6.0, 0.0)), (np.pi / 2, (0.0, -6.0)), (np.pi, (-6.0, 0.0)),
                                        (-np.pi / 2, (0.0, 6.0))])
def test_the_grid_turns_with_the_heading(tiny, yaw, where):
    """A pillar 6 m east of the vehicle is ahead (yaw 0), on the right (facing north), behind (facing
    west) and on the left (facing south); roll and pitch change nothing."""
    scene = tiny.build_city(extra_boxes=[((26.0, 30.0, 0.0), (1.0, 1.0, 6.0), 0.0, CityClass.POLE, "pillar")])
    vox = SceneVoxelizer(scene)
    pose = Pose.from_xyz_rpy(0.0, (20.0, 30.0, 12.0), (0.2, -0.15, yaw))
    frame = GridFrame.from_pose(pose, 0.0)
    assert frame.yaw == pytest.approx(yaw)
    sem = vox.semantics(frame, tiny.spec, tiny.ranks)
    assert value_at(sem, tiny.spec, (*where, 3.1)) == MANMADE
    assert value_at(sem, tiny.spec, (-where[0], -where[1], 3.1)) == FREE


def test_z_is_measured_from_the_ground_not_the_vehicle(tiny):
    vox = SceneVoxelizer(tiny.scene)
    low = vox.semantics(GridFrame(0.0, 0.0, 0.0, 0.3), tiny.spec, tiny.ranks)
    assert np.array_equal(low, vox.semantics(GridFrame.from_pose(Pose.from_xyz_rpy(0, (0, 0, 120.0), (0, 0, 0.3)), 0.0),
                                             tiny.spec, tiny.ranks))
    raised = vox.semantics(GridFrame(0.0, 0.0, 1.0, 0.3), tiny.spec, tiny.ranks)   # ground 1 m higher: 2 layers down
    np.testing.assert_array_equal(raised[:, :, :-2], low[:, :, 2:])


def test_actors_are_solid_boxes_over_the_road(tiny):
    vox = SceneVoxelizer(tiny.scene)
    actors = ActorBoxes(position=np.array([[2.0, -1.0, 0.0], [-3.0, 1.5, 0.0], [500.0, 0.0, 0.0]]),
                        yaw=np.array([0.4, 0.0, 0.0]), size=np.array([[4.5, 1.8, 1.5], [0.3, 0.3, 1.75], [4, 2, 2]]),
                        semantic=np.array([CityClass.CAR, CityClass.PEDESTRIAN, CityClass.BUS], np.uint8),
                        instance=np.array([10, 11, 12], np.int32))
    frame = GridFrame(0.0, 0.0, 0.0, 0.0)
    sem = vox.semantics(frame, tiny.spec, tiny.ranks, actors)
    assert value_at(sem, tiny.spec, (2.0, -1.0, 0.8)) == OCC3D_ID["car"]       # interior
    assert value_at(sem, tiny.spec, (2.0, -1.0, 0.0)) == OCC3D_ID["car"]       # over the road at its bottom
    assert (sem == OCC3D_ID["pedestrian"]).sum() >= 3                        # thinner than a voxel, still there
    assert not np.any(sem == OCC3D_ID["bus"])                                # far away
    corners = frame.to_grid(actors.corners()[0])
    idx, inside = tiny.spec.index_of(corners - np.sign(corners - [2.0, -1.0, 0.75]) * 1e-6)
    assert all(sem[tuple(i)] == OCC3D_ID["car"] for i in idx[inside])


@pytest.mark.parametrize("frame", [GridFrame(0.0, 0.0, 0.0, 0.0), GridFrame(3.3, -2.1, 0.4, 2.3),
                                   GridFrame(-50.0, 52.0, 0.0, -0.8)])
def test_the_triangle_index_changes_nothing(tiny, frame):
    """Culling through the bins equals voxelising every triangle of the scene."""
    scene = tiny.scene
    fast = SceneVoxelizer(scene, bin_size=4.0).semantics(frame, tiny.spec, tiny.ranks)
    brute = np.full(tiny.spec.shape, FREE, np.uint8)
    tri = transform_points(index_transform(tiny.spec, frame), scene.vertices[scene.faces])
    voxelize_surfaces(brute, tri, scene.classes, tiny.ranks)
    solid = scene.instances >= 0
    inst, group = np.unique(scene.instances[solid], return_inverse=True)
    fill_solids(brute, tri[solid], group, scene.label_map(scene.instance_semantics[inst]), tiny.ranks)
    np.testing.assert_array_equal(fast, brute)


def test_actor_boxes_from_traffic_like_states():
    boxes = ActorBoxes(np.array([[1.0, 2.0, 0.0]]), np.array([np.pi / 2]), np.array([[4.0, 2.0, 1.5]]),
                       np.array([CityClass.CAR], np.uint8), np.array([7], np.int32))
    c = boxes.corners()[0]
    np.testing.assert_allclose(c[0], [2.0, 0.0, 0.0], atol=1e-12)           # rear-right: behind (south), right (east)
    np.testing.assert_allclose(c[6], [0.0, 4.0, 1.5], atol=1e-12)           # front-left top
    assert boxes.triangles().shape == (1, 12, 3, 3) and len(ActorBoxes.empty()) == 0


def test_a_coarse_grid_still_sees_what_overlaps_it(tiny):
    coarse = GridSpec((-40.0, -40.0, -2.0, 40.0, 40.0, 149.25), (2.0, 2.0, 1.25))
    sem = SceneVoxelizer(tiny.scene).semantics(GridFrame(0.0, 0.0, 0.0, 0.0), coarse, tiny.ranks)
    assert sem.shape == (40, 40, 121)
    assert value_at(sem, coarse, (-5.0, -6.0, 1.0)) == MANMADE and value_at(sem, coarse, (-20, 30, 0.0)) == TERRAIN
