"""Drone and rover kinematics: limits held, waypoints reached, never through buildings, on roads."""

import math

import numpy as np
import pytest

from vlwm.labels import CityClass
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.missions import patrol_mission, route_mission, survey_mission
from vlwm.sim.planning import PlannerConfig, PlanningError, carriageway_excess
from vlwm.sim.vehicles import STOP_RADIUS_M, Drone, DroneLimits, Rover, RoverLimits, fly, vehicle_for_mission
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.procedural import CityConfig, generate_city
from vlwm.world.terrain import Terrain

DT = 0.05
HALF = 200.0
TOL = 1e-6


def field_scene(tower_height: float | None = None, ground_z: float = 0.0):
    """A flat 400 m square of ground, optionally with a 20 m x 20 m tower on the origin."""
    b = SceneBuilder()
    b.add_mesh([[-HALF, -HALF, ground_z], [HALF, -HALF, ground_z], [HALF, HALF, ground_z], [-HALF, HALF, ground_z]],
               [[0, 1, 2], [0, 2, 3]], CityClass.TERRAIN)
    if tower_height is not None:
        inst = b.new_instance("bldg_tower", CityClass.BUILDING)
        b.add_box((0.0, 0.0, ground_z), (20.0, 20.0, tower_height), 0.0, CityClass.BUILDING, inst)
    return b.build(Terrain.flat(ground_z, (-HALF, -HALF, HALF, HALF)), GeoOrigin.at_latlon(35.68, 139.76))


@pytest.fixture(scope="module")
def city():
    return generate_city(CityConfig(seed=1, size=300.0))


def trajectory(poses):
    """Positions (n, 3), yaw (n,), from a pose list sampled every DT."""
    return np.array([p.position for p in poses]), np.array([p.yaw for p in poses])


def assert_drone_limits(p, yaw, lim: DroneLimits):
    v = np.diff(p, axis=0) / DT
    a = np.diff(v, axis=0) / DT
    yaw_rate = np.abs(np.angle(np.exp(1j * np.diff(yaw)))) / DT
    assert np.linalg.norm(v[:, :2], axis=1).max() <= lim.max_speed + TOL
    assert v[:, 2].max() <= lim.max_climb_speed + TOL and -v[:, 2].max() <= lim.max_descent_speed + TOL
    assert np.linalg.norm(a, axis=1).max() <= lim.max_accel + TOL
    assert yaw_rate.max() <= lim.max_yaw_rate + TOL


# ------------------------------------------------------------------------------ drone


def test_survey_flight_reaches_every_waypoint_within_limits():
    scene = field_scene(ground_z=1.0)
    lim = DroneLimits()
    m = survey_mission(scene, center_xy=(0.0, 0.0), size=100.0, spacing=15.0, altitude=30.0)
    poses = list(fly(m, scene, DT, drone_limits=lim))
    p, yaw = trajectory(poses)
    assert_drone_limits(p, yaw, lim)
    for w in m.waypoints[1:-1]:
        assert np.linalg.norm(p - w.xyz, axis=1).min() <= lim.acceptance_radius
    # Lines are flown at the survey altitude, and the flight ends landed at home.
    cruising = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1) / DT > 1.0
    np.testing.assert_allclose(p[1:][cruising, 2], 31.0, atol=STOP_RADIUS_M + 0.05)
    np.testing.assert_allclose(p[-1], m.home, atol=0.01)
    assert np.all(np.diff([q.timestamp for q in poses]) == pytest.approx(DT))


def test_takeoff_hover_land_through_commands():
    scene = field_scene(ground_z=3.0)
    drone = Drone(scene, (-50.0, 20.0))
    assert drone.landed and drone.position[2] == pytest.approx(3.0, abs=1e-4)
    with pytest.raises(RuntimeError, match="arm"):
        drone.takeoff(20.0)
    drone.arm()
    drone.takeoff(20.0)
    poses = []
    for _ in range(int(20 / DT)):
        drone.step(DT)
        poses.append(drone.pose())
    assert not drone.landed
    np.testing.assert_allclose(drone.position, [-50.0, 20.0, 23.0], atol=0.3)   # climbed, now hovering
    hover = drone.position.copy()
    for _ in range(int(5 / DT)):
        drone.step(DT)
        poses.append(drone.pose())
    np.testing.assert_allclose(drone.position, hover, atol=0.05)
    drone.goto((-20.0, 20.0, 23.0))
    for _ in range(int(20 / DT)):
        drone.step(DT)
        poses.append(drone.pose())
    np.testing.assert_allclose(drone.position, [-20.0, 20.0, 23.0], atol=0.3)
    drone.land()
    assert drone.mode == "LAND"
    for _ in range(int(60 / DT)):
        drone.step(DT)
        poses.append(drone.pose())
        if drone.landed:
            break
    assert drone.landed and not drone.armed
    assert drone.position[2] == pytest.approx(3.0, abs=1e-3)
    p, yaw = trajectory(poses)
    assert p[:, 2].min() >= 3.0 - 1e-3
    assert_drone_limits(p, yaw, DroneLimits())


def test_flight_through_a_tower_goes_over_it():
    scene = field_scene(tower_height=40.0)
    cfg = PlannerConfig()
    home = (-60.0, 0.0, 0.0)
    m = Mission("cross", "drone", home, (Waypoint((-60.0, 0.0, 30.0), "takeoff"), Waypoint((60.0, 0.0, 30.0)),
                                         Waypoint((60.0, 0.0, 0.0), "land")))
    drone = vehicle_for_mission(m, scene, planner=cfg)
    assert len(drone.plan.detours) == 1 and any("re-planned" in e for e in drone.events)
    poses = [drone.pose()]
    while not drone.done:
        drone.step(DT)
        poses.append(drone.pose())
        assert drone.t < 300
    p, yaw = trajectory(poses)
    assert_drone_limits(p, yaw, DroneLimits())
    r = cfg.body_radius
    over = (np.abs(p[:, 0]) <= 10 + r) & (np.abs(p[:, 1]) <= 10 + r)
    assert over.any() and p[over, 2].min() >= 40.0 + cfg.clearance
    np.testing.assert_allclose(p[-1], [60.0, 0.0, 0.0], atol=0.3)


def test_too_tall_tower_rejects_the_mission_before_takeoff():
    scene = field_scene(tower_height=200.0)
    m = Mission("cross", "drone", (-60.0, 0.0, 0.0),
                (Waypoint((-60.0, 0.0, 30.0), "takeoff"), Waypoint((60.0, 0.0, 30.0))))
    with pytest.raises(PlanningError, match="item 1"):
        fly(m, scene)


def test_velocity_command_stops_before_a_wall():
    scene = field_scene(tower_height=40.0)
    drone = Drone(scene, (-40.0, 0.0, 20.0))                       # hovering beside the tower
    assert not drone.landed
    drone.set_velocity((8.0, 0.0, 0.0))
    for _ in range(int(20 / DT)):
        drone.step(DT)
    assert drone.position[0] < -10.0 - PlannerConfig().body_radius
    assert np.linalg.norm(drone.velocity) < 0.1
    assert any("guard" in e for e in drone.events)


def test_city_survey_never_flies_under_a_surface(city):
    m = survey_mission(city, center_xy=(0.0, 0.0), size=100.0, spacing=25.0, altitude=30.0)
    poses = list(fly(m, city, DT))
    p, _ = trajectory(poses)
    sky = city.bounds[1, 2] + 10.0
    hits = city.cast(np.column_stack([p[:, :2], np.full(len(p), sky)]), np.tile([0.0, 0.0, -1.0], (len(p), 1)))
    top = np.where(hits.hit, sky - hits.distance, -np.inf)
    assert np.all(p[:, 2] >= top - 1e-3)                         # nothing is ever above the drone
    assert poses[-1].position[2] == pytest.approx(m.home[2], abs=1e-3)


def test_pose_orientation_follows_yaw_and_tilts_with_acceleration():
    scene = field_scene()
    drone = Drone(scene, (0.0, 0.0, 20.0), yaw=0.3)
    drone.set_velocity((5.0, 0.0, 0.0))
    for _ in range(10):
        drone.step(DT)
    pose = drone.pose()
    body_z = pose.rotation[:, 2]
    assert body_z[0] > 0.05                                      # leaning into the acceleration (east)
    assert pose.yaw == pytest.approx(drone.yaw)
    assert np.linalg.norm(pose.orientation) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ rover


def assert_rover_on_road_within_limits(poses, scene, lim: RoverLimits):
    p, yaw = trajectory(poses)
    assert carriageway_excess(scene.roads, p[:, :2]).max() <= 0.0
    v = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1) / DT      # chord speeds: <= the arc speed
    speed = np.array([np.linalg.norm(q.linear_velocity) for q in poses])
    assert np.all(v <= speed[1:] + TOL) and speed.max() <= lim.max_speed + TOL
    dv = np.diff(speed) / DT
    assert dv.max() <= lim.max_accel + TOL and -dv.min() <= lim.max_decel + TOL
    rate = np.abs(np.angle(np.exp(1j * np.diff(yaw)))) / DT
    moving = v > 0.5
    assert np.all(v[moving] / np.maximum(rate[moving], 1e-12) >= lim.min_turning_radius * (1 - 1e-3))
    assert np.allclose(p[:, 2], 0.0)                             # on the road surface


def test_rover_route_stays_on_the_road_and_reaches_the_goal(city):
    lim = RoverLimits()
    m = route_mission(city, (-140.0, -130.0), (130.0, 140.0))
    poses = list(fly(m, city, DT, rover_limits=lim))
    assert_rover_on_road_within_limits(poses, city, lim)
    roads = city.roads
    goal = roads.nearest_node(m.waypoints[-1].position[:2])
    last_edge = [e for e, (a, b) in enumerate(roads.edges.tolist()) if goal in (a, b)]
    end = poses[-1].position
    assert np.linalg.norm(end[:2] - roads.nodes[goal, :2]) <= roads.width[last_edge].max() / 2
    assert np.all(poses[-1].linear_velocity == 0.0)


def test_rover_patrol_keeps_left_and_limits(city):
    lim = RoverLimits()
    m = patrol_mission(city, "rover", 3, 11, min_turning_radius=lim.min_turning_radius)
    poses = list(fly(m, city, DT, rover_limits=lim))
    assert_rover_on_road_within_limits(poses, city, lim)
    # Left-hand traffic: on two-way multi-lane roads the rover is left of the centreline.
    p, yaw = trajectory(poses)
    roads = city.roads
    a, b = roads.nodes[roads.edges[:, 0], :2], roads.nodes[roads.edges[:, 1], :2]
    left = []
    for q, h in zip(p[::20, :2], yaw[::20]):
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.einsum("ij,ij->i", ab, ab), 0, 1)
        d = np.linalg.norm(q - (a + t[:, None] * ab), axis=1)
        e = int(np.argmin(d))
        u = ab[e] / np.linalg.norm(ab[e])
        if roads.lanes[e] >= 2 and 0.05 < t[e] < 0.95 and abs(u @ [math.cos(h), math.sin(h)]) > 0.99:
            u = u if u @ [math.cos(h), math.sin(h)] > 0 else -u
            off = q - a[e]
            left.append(u[0] * off[1] - u[1] * off[0] > 0)
    assert len(left) > 5 and all(left)


def test_rover_goto_and_hold(city):
    m = route_mission(city, (-140.0, -130.0), (130.0, 140.0))
    rover = Rover.at_route_start(city, m)
    rover.arm()
    goal_node = city.roads.nearest_node(m.waypoints[3].position[:2])
    goal = city.roads.nodes[goal_node].astype(np.float64)
    rover.goto(goal)
    assert rover.mode == "GUIDED"
    for _ in range(int(60 / DT)):
        rover.step(DT)
    assert rover.arrived and not rover.done and rover.speed == 0.0
    widths = city.roads.width[(city.roads.edges == goal_node).any(axis=1)]
    assert np.linalg.norm(rover.position[:2] - goal[:2]) <= widths.max() / 2
    rover.hold()
    rover.step(DT)
    assert rover.mode == "HOLD" and rover.speed == 0.0


def test_rover_holds_at_a_waypoint(city):
    m = route_mission(city, (-140.0, -130.0), (130.0, 140.0))
    wps = list(m.waypoints)
    wps[3] = Waypoint(wps[3].position, hold_s=4.0)
    m = Mission(m.name, "rover", m.home, tuple(wps))
    poses = list(fly(m, city, DT))
    assert_rover_on_road_within_limits(poses, city, RoverLimits())
    speed = np.array([np.linalg.norm(q.linear_velocity) for q in poses])
    moving = int(np.flatnonzero(speed > 0)[0])
    stopped = moving + np.flatnonzero(speed[moving:] == 0.0)           # stops after setting off
    first_run = stopped[: int(np.argmax(np.diff(np.r_[stopped, -1]) != 1)) + 1]
    assert len(first_run) * DT >= 4.0 and stopped[-1] == len(poses) - 1 > first_run[-1]
    node = city.roads.nodes[city.roads.nearest_node(wps[3].position[:2]), :2]
    widths = city.roads.width[(city.roads.edges == city.roads.nearest_node(node)).any(axis=1)]
    assert np.linalg.norm(poses[first_run[0]].position[:2] - node) <= widths.max() / 2
