"""Mission builders and the drone/road planners: geometry, determinism, re-planning, rejection."""

import math

import numpy as np
import pytest

from vlwm.labels import CityClass
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.sim.missions import orbit_mission, patrol_mission, route_mission, survey_mission
from vlwm.sim.planning import (PlannerConfig, PlanningError, check_and_plan_drone_path, lane_offset, lane_path,
                               road_route)
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.procedural import CityConfig, generate_city
from vlwm.world.roads import RoadGraph
from vlwm.world.terrain import Terrain

HALF = 200.0


def field_scene(tower_height: float | None = None, ground_z: float = 0.0, roads: RoadGraph | None = None):
    """A flat 400 m square of ground, optionally with a 20 m x 20 m tower on the origin."""
    b = SceneBuilder()
    b.add_mesh([[-HALF, -HALF, ground_z], [HALF, -HALF, ground_z], [HALF, HALF, ground_z], [-HALF, HALF, ground_z]],
               [[0, 1, 2], [0, 2, 3]], CityClass.TERRAIN)
    if tower_height is not None:
        inst = b.new_instance("bldg_tower", CityClass.BUILDING)
        b.add_box((0.0, 0.0, ground_z), (20.0, 20.0, tower_height), 0.0, CityClass.BUILDING, inst)
    return b.build(Terrain.flat(ground_z, (-HALF, -HALF, HALF, HALF)), GeoOrigin.at_latlon(35.68, 139.76), roads)


@pytest.fixture(scope="module")
def city():
    return generate_city(CityConfig(seed=0, size=250.0))


# ------------------------------------------------------------------------------ survey / orbit


def test_survey_geometry():
    scene = field_scene(ground_z=2.0)
    m = survey_mission(scene, center_xy=(10.0, -5.0), size=100.0, spacing=15.0, altitude=30.0)
    assert m.vehicle == "drone" and m.waypoints[0].command == "takeoff" and m.waypoints[-1].command == "rtl"
    lines = m.positions[1:-1]
    count = math.ceil(100 / 15) + 1
    assert len(lines) == 2 * count
    # Altitude: 30 m above the home ground, everywhere.
    np.testing.assert_allclose(m.positions[:-1, 2], 2.0 + 30.0)
    np.testing.assert_allclose(m.relative_altitudes()[:-1], 30.0)
    # Lines run east-west across the whole square, at most `spacing` apart, edges included.
    starts, ends = lines[0::2], lines[1::2]
    np.testing.assert_allclose(starts[:, 1], ends[:, 1])
    np.testing.assert_allclose(np.abs(ends[:, 0] - starts[:, 0]), 100.0)
    ys = starts[:, 1]
    gaps = np.diff(ys)
    assert np.all(gaps > 0) and np.all(gaps <= 15.0 + 1e-9)
    np.testing.assert_allclose([ys[0], ys[-1]], [-55.0, 45.0])
    assert np.all(np.abs(lines[:, 0] - 10.0) <= 50.0 + 1e-9) and np.all(np.abs(lines[:, 1] + 5.0) <= 50.0 + 1e-9)
    # Alternating directions (lawnmower).
    assert np.all(np.sign(ends[:, 0] - starts[:, 0])[:-1] == -np.sign(ends[:, 0] - starts[:, 0])[1:])


def test_survey_home_is_an_open_site_next_to_a_building():
    scene = field_scene(tower_height=40.0)
    m = survey_mission(scene, center_xy=(0.0, 0.0), altitude=50.0)
    home = np.array(m.home)
    assert max(abs(home[0]), abs(home[1])) > 10.0 + PlannerConfig().body_radius  # not on the roof
    assert home[2] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("laps,clockwise", [(1, False), (2, True)])
def test_orbit_radius_and_heading(laps, clockwise):
    scene = field_scene()
    m = orbit_mission(scene, (20.0, -10.0), radius=35.0, altitude=25.0, laps=laps, points_per_lap=24,
                      clockwise=clockwise)
    ring = m.waypoints[1:-1]
    assert len(ring) == 24 * laps + 1
    p = np.array([w.position for w in ring])
    np.testing.assert_allclose(np.hypot(p[:, 0] - 20.0, p[:, 1] + 10.0), 35.0, atol=1e-9)
    np.testing.assert_allclose(p[:, 2], 25.0)
    np.testing.assert_allclose(p[0], p[-1], atol=1e-9)          # a closed loop
    for w in ring:                                             # the camera looks at the centre
        to_c = math.atan2(-10.0 - w.position[1], 20.0 - w.position[0])
        assert abs(math.remainder(w.yaw - to_c, 2 * math.pi)) < 1e-9
    ang = np.unwrap(np.arctan2(p[:, 1] + 10.0, p[:, 0] - 20.0))
    assert np.all(np.diff(ang) < 0) if clockwise else np.all(np.diff(ang) > 0)


def test_orbit_around_a_named_building():
    scene = field_scene(tower_height=40.0)
    m = orbit_mission(scene, "bldg_tower", radius=30.0, altitude=60.0)
    p = np.array([w.position for w in m.waypoints[1:-1]])
    np.testing.assert_allclose(np.hypot(p[:, 0], p[:, 1]), 30.0, atol=1e-6)
    with pytest.raises(ValueError, match="bldg_nope"):
        orbit_mission(scene, "bldg_nope", radius=30.0, altitude=60.0)


# ------------------------------------------------------------------------------ patrol / route


def test_drone_patrol_is_deterministic_and_reachable(city):
    a = patrol_mission(city, "drone", 4, np.random.default_rng(7), altitude=40.0)
    b = patrol_mission(city, "drone", 4, 7, altitude=40.0)
    c = patrol_mission(city, "drone", 4, 8, altitude=40.0)
    assert a == b and a != c
    goals = a.positions[1:-1]
    assert len(goals) == 4
    np.testing.assert_allclose(goals[:, 2], a.home[2] + 40.0)
    lo, hi = city.bounds[0, :2], city.bounds[1, :2]
    assert np.all(goals[:, :2] >= lo) and np.all(goals[:, :2] <= hi)
    plan = check_and_plan_drone_path(city, a.waypoints, start=a.home)      # the whole patrol is flyable
    assert plan.waypoints[-1].command == "land"


def test_rover_patrol_is_deterministic_and_never_reverses(city):
    a = patrol_mission(city, "rover", 3, 5)
    assert a == patrol_mission(city, "rover", 3, 5)
    roads = city.roads
    nodes = [roads.nearest_node(w.position[:2]) for w in a.waypoints]
    edges = {tuple(sorted(e)) for e in roads.edges.tolist()}
    assert all(tuple(sorted(pair)) in edges for pair in zip(nodes[:-1], nodes[1:]))
    assert all(x != z for x, z in zip(nodes[:-2], nodes[2:]))           # no U-turns
    lane_path(roads, nodes)                                                # drivable


def test_route_mission_follows_the_shortest_path(city):
    roads = city.roads
    m = route_mission(city, (-100.0, -100.0), (100.0, 100.0))
    expected = roads.shortest_path(roads.nearest_node((-100, -100)), roads.nearest_node((100, 100)))
    np.testing.assert_allclose(m.positions, roads.nodes[expected])
    assert m.vehicle == "rover" and m.home == tuple(m.positions[0])


def test_road_route_forbids_u_turns():
    # A loop 0-1-3-4-0 with a dead-end spur 1-2: back to 0 from 1 having come from 0 goes round
    # the loop; from the spur's end there is no way on without reversing.
    nodes = [[0, 0, 0], [50, 0, 0], [100, 0, 0], [50, 50, 0], [0, 50, 0]]
    roads = RoadGraph(nodes, [[0, 1], [1, 2], [1, 3], [3, 4], [4, 0]], width=[6] * 5, lanes=[2] * 5,
                      sidewalk=[0] * 5)
    assert road_route(roads, 1, [0], prev=0) == [1, 3, 4, 0]
    with pytest.raises(PlanningError, match="U-turn"):
        road_route(roads, 2, [0], prev=1)


def test_lane_path_keeps_left_and_within_the_carriageway():
    nodes = [[0, 0, 0], [60, 0, 0], [60, 60, 0]]
    roads = RoadGraph(nodes, [[0, 1], [1, 2]], width=[12, 5.6], lanes=[4, 2], sidewalk=[3, 0])
    path = lane_path(roads, [0, 1, 2], min_radius=4.5)
    # Driving east, the left lane is north of the centreline, at the kerb-side lane's centre.
    assert path.xyz[0, 1] == pytest.approx(lane_offset(12, 4)) and lane_offset(12, 4) == pytest.approx(4.5)
    assert np.all(np.abs(path.curvature) <= 1 / 4.5 + 1e-9)
    on_first = path.xyz[:, 0] < 40
    assert np.all(path.xyz[on_first, 1] > 0)
    going_north = path.xyz[:, 1] > 20
    assert np.all(path.xyz[going_north, 0] < 60)                           # left of northbound = west


# ------------------------------------------------------------------------------ drone planner


def test_leg_through_a_tower_is_replanned_above_it():
    scene = field_scene(tower_height=40.0)
    cfg = PlannerConfig()
    wps = [Waypoint((-60.0, 0.0, 30.0), "takeoff"), Waypoint((60.0, 0.0, 30.0)), Waypoint((60.0, 0.0, 0.0), "land")]
    plan = check_and_plan_drone_path(scene, wps, start=(-60.0, 0.0, 0.0), config=cfg)
    assert len(plan.detours) == 1 and plan.detours[0].leg == 1
    top = plan.detours[0].obstacle_top
    assert top == pytest.approx(40.0, abs=1e-3)
    cruise = plan.detours[0].cruise_z
    assert cruise >= top + cfg.clearance + cfg.body_radius
    assert [w.command for w in plan.waypoints] == ["takeoff", "waypoint", "waypoint", "waypoint", "land"]
    np.testing.assert_allclose(plan.waypoints[1].position, (-60.0, 0.0, cruise))
    np.testing.assert_allclose(plan.waypoints[2].position, (60.0, 0.0, cruise))
    assert plan.source == (0, 1, 1, 1, 2)
    assert "item 1" in plan.summary()


def test_waypoint_inside_a_tower_is_lifted_above_it():
    scene = field_scene(tower_height=40.0)
    cfg = PlannerConfig()
    wps = [Waypoint((-60.0, 0.0, 30.0), "takeoff"), Waypoint((0.0, 0.0, 20.0), hold_s=5.0), Waypoint((0, 0, 0), "rtl")]
    plan = check_and_plan_drone_path(scene, wps, start=(-60.0, 0.0, 0.0), config=cfg)
    lifted = [d for d in plan.detours if d.lifted]
    assert lifted and lifted[0].leg == 1 and "lifted" in plan.summary()
    at_item = [w for w, i in zip(plan.waypoints, plan.source) if i == 1 and w.hold_s == 5.0]
    assert len(at_item) == 1
    assert at_item[0].position[2] >= 40.0 + cfg.clearance + cfg.body_radius
    assert at_item[0].position[:2] == (0.0, 0.0)


def test_leg_over_a_too_tall_tower_is_rejected_naming_the_leg():
    scene = field_scene(tower_height=200.0)
    wps = [Waypoint((-60.0, 0.0, 30.0), "takeoff"), Waypoint((60.0, 0.0, 30.0)), Waypoint((0, 0, 0), "rtl")]
    with pytest.raises(PlanningError, match=r"leg item 0 .* -> item 1 .*max altitude 150"):
        check_and_plan_drone_path(scene, wps, start=(-60.0, 0.0, 0.0))


def test_planner_errors_are_clear():
    scene = field_scene()
    with pytest.raises(PlanningError, match="item 0 .*'takeoff'"):
        check_and_plan_drone_path(scene, [Waypoint((10.0, 0.0, 20.0))], start=(0.0, 0.0, 0.0))
    with pytest.raises(PlanningError, match="max altitude"):
        check_and_plan_drone_path(scene, [Waypoint((0, 0, 200.0), "takeoff")], start=(0.0, 0.0, 0.0))


def test_mission_validation():
    with pytest.raises(ValueError, match="command"):
        Waypoint((0, 0, 0), "fly")
    with pytest.raises(ValueError, match="rovers only"):
        Mission("m", "rover", (0, 0, 0), (Waypoint((0, 0, 5), "takeoff"),))
    with pytest.raises(ValueError, match="no waypoints"):
        Mission("m", "drone", (0, 0, 0), ())
