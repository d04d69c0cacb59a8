"""Traffic and the dynamic world: determinism by seed, states a pure function of time, vehicles on
the left of carriageways, pedestrians on sidewalks, nobody inside a building, velocities that are
time derivatives, and ray casts that see actors where an analytic box test says they are."""

import numpy as np
import pytest

from vlwm.labels import CityClass
from vlwm.sim.dynamic_world import DynamicWorld, cone_candidates
from vlwm.sim.traffic import Traffic
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.builder import SceneBuilder
from vlwm.world.geo import GeoOrigin
from vlwm.world.procedural import CityConfig, generate_city
from vlwm.world.raycast import EmbreeTracer
from vlwm.world.terrain import Terrain

CITY = CityConfig(seed=3, size=260.0)
TRAFFIC = TrafficConfig(seed=5)
TIMES = np.linspace(0.0, 240.0, 61)        #: seconds sampled by the property tests
VEHICLES = (CityClass.CAR, CityClass.BUS, CityClass.TRUCK)
TOL = 0.02                                  #: metres of slack on geometric checks


@pytest.fixture(scope="module")
def city():
    return generate_city(CITY)


@pytest.fixture(scope="module")
def traffic(city):
    return Traffic(city, TRAFFIC)


@pytest.fixture(scope="module")
def world(city, traffic):
    return DynamicWorld(city, traffic)


def of_class(traffic, classes) -> np.ndarray:
    return np.array([a.semantic in classes for a in traffic.actors])


def segment_distance(xy: np.ndarray, roads) -> np.ndarray:
    """(n, E) distance (m) from points (n, 2) to every road-graph edge's centreline segment."""
    a, b = roads.nodes[roads.edges[:, 0], :2].astype(float), roads.nodes[roads.edges[:, 1], :2].astype(float)
    ab = b - a
    t = np.clip(np.einsum("nek,ek->ne", xy[:, None] - a, ab) / np.einsum("ek,ek->e", ab, ab), 0, 1)
    return np.linalg.norm(xy[:, None] - (a + t[..., None] * ab), axis=-1)


def box_distance(o, d, position, yaw, size) -> float:
    """Reference slab test: distance along unit ray (o, d) to an oriented box (bottom centre,
    yaw, (l, w, h)); ``inf`` if it misses.  The ray starts outside the box."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    lo = rot.T @ (o - position - [0, 0, size[2] / 2])
    ld = rot.T @ d
    half = np.asarray(size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - lo) / ld, (half - lo) / ld
    inside = np.abs(lo) <= half
    t1 = np.where(ld == 0, np.where(inside, -np.inf, np.inf), t1)
    t2 = np.where(ld == 0, np.where(inside, np.inf, -np.inf), t2)
    near, far = np.minimum(t1, t2).max(), np.maximum(t1, t2).min()
    return float(near) if near <= far and near >= 0 else np.inf


# ------------------------------------------------------------------------------ identity, determinism


def test_actors_have_global_ids_names_and_classes(city, traffic):
    first = len(city.instance_names)
    assert [a.instance for a in traffic.actors] == list(range(first, first + len(traffic.actors)))
    counts = {c: sum(a.semantic == c for a in traffic.actors) for c in CityClass}
    assert counts[CityClass.CAR] == TRAFFIC.cars and counts[CityClass.BUS] == TRAFFIC.buses
    assert counts[CityClass.TRUCK] == TRAFFIC.trucks and counts[CityClass.PEDESTRIAN] == TRAFFIC.pedestrians
    assert counts[CityClass.DRONE] == TRAFFIC.drones
    assert len({a.name for a in traffic.actors}) == len(traffic.actors)
    assert traffic.actors[0].name == "car_0000" and traffic.actors[-1].name == f"drone_{TRAFFIC.drones - 1:04d}"
    bus = next(a for a in traffic.actors if a.semantic == CityClass.BUS)
    assert bus.size == TRAFFIC.bus_size


def test_same_seed_same_states_other_seed_differs(city, traffic):
    again, other = Traffic(city, TRAFFIC), Traffic(city, TrafficConfig(seed=6))
    for t in (0.0, 3.7, 61.25, 1234.5):
        a, b, c = traffic.states(t), again.states(t), other.states(t)
        np.testing.assert_array_equal(a.position, b.position)
        np.testing.assert_array_equal(a.yaw, b.yaw)
        np.testing.assert_array_equal(a.velocity, b.velocity)
        assert not np.allclose(a.position, c.position)


def test_states_are_a_pure_function_of_time(traffic):
    forward = [traffic.states(t) for t in TIMES]
    backward = [traffic.states(t) for t in TIMES[::-1]][::-1]
    for f, b in zip(forward, backward):
        np.testing.assert_array_equal(f.position, b.position)
        np.testing.assert_array_equal(f.velocity, b.velocity)
    assert all(np.all(np.isfinite(s.position)) for s in forward)


# ------------------------------------------------------------------------------ where actors go


def test_vehicles_stay_on_the_left_of_the_carriageway(city, traffic):
    roads, veh = city.roads, of_class(traffic, VEHICLES)
    hw = roads.width / 2
    a = roads.nodes[roads.edges[:, 0], :2].astype(float)
    along = roads.nodes[roads.edges[:, 1], :2] - a
    along /= np.linalg.norm(along, axis=1, keepdims=True)
    judged = total = 0
    for t in TIMES:
        st, corners = traffic.states(t), traffic.boxes(t)
        feet = corners[veh, :4, :2].reshape(-1, 2)
        assert np.all((segment_distance(feet, roads) - hw).min(axis=1) <= TOL), f"a vehicle left the road at t={t}"
        np.testing.assert_allclose(st.position[veh, 2], 0.0, atol=1e-3)       # flat carriageways at z = 0
        p, yaw = st.position[veh, :2], st.yaw[veh]
        h = np.column_stack([np.cos(yaw), np.sin(yaw)])
        dist = segment_distance(p, roads)
        parallel = (np.abs(h @ along.T) > 0.95) & (dist <= hw)
        for i in np.flatnonzero(parallel.any(axis=1)):
            e = np.flatnonzero(parallel[i])[np.argmin(dist[i, parallel[i]])]
            r = p[i] - a[e]
            left = h[i, 0] * r[1] - h[i, 1] * r[0]         # > 0: centre left of the centreline
            assert left > 0, f"vehicle {traffic.actors[np.flatnonzero(veh)[i]].name} drives on the right at t={t}"
        judged += int(parallel.any(axis=1).sum())
        total += len(p)
    assert judged > 0.8 * total


def test_pedestrians_walk_on_sidewalks(city, traffic):
    roads, ped = city.roads, of_class(traffic, (CityClass.PEDESTRIAN,))
    hw, sw = roads.width / 2, roads.sidewalk
    kerb = CITY.kerb_height
    for t in TIMES:
        p = traffic.states(t).position[ped]
        d = segment_distance(p[:, :2], roads)
        on_walk = (sw > 0) & (d >= hw - TOL) & (d <= hw + sw + TOL)
        assert on_walk.any(axis=1).all(), f"a pedestrian left the sidewalks at t={t}"
        assert np.all((p[:, 2] > -1e-3) & (p[:, 2] < kerb + 1e-3))
    crossing = np.concatenate([traffic.states(t).position[ped, 2] for t in TIMES])
    assert np.any(np.isclose(crossing, kerb, atol=1e-3)), "pedestrians stand on the raised sidewalk slabs"


def test_no_actor_inside_a_building(city, traffic):
    """Box corners, edge midpoints and centres stay out of every building's axis-aligned bounds
    (a conservative test: bounds cover L-shaped footprints too)."""
    own = city.instances >= 0
    tri = city.vertices[city.faces[own]]
    lo = np.full((len(city.instance_names), 3), np.inf)
    hi = np.full((len(city.instance_names), 3), -np.inf)
    np.minimum.at(lo, city.instances[own], tri.min(1))
    np.maximum.at(hi, city.instances[own], tri.max(1))
    bldg = city.instance_semantics == CityClass.BUILDING
    lo, hi = lo[bldg] + TOL, hi[bldg] - TOL
    assert len(lo) > 50
    pairs = [(i, j) for i in range(8) for j in range(i + 1, 8)]
    for t in TIMES[::4]:
        c = traffic.boxes(t)
        pts = np.concatenate([c, c.mean(1, keepdims=True), np.stack([(c[:, i] + c[:, j]) / 2 for i, j in pairs], 1)], 1)
        pts = pts.reshape(-1, 3)
        inside = np.all((pts[:, None] > lo) & (pts[:, None] < hi), axis=-1)
        assert not inside.any(), f"an actor is inside a building at t={t}"


def test_drones_fly_clear_above_everything(city, traffic):
    drones = of_class(traffic, (CityClass.DRONE,))
    for t in TIMES[::6]:
        p = traffic.states(t).position[drones]
        hits = city.cast(p - [0, 0, 1e-3], np.tile([0.0, 0.0, -1.0], (len(p), 1)))
        assert np.all(hits.distance >= TRAFFIC.drone_clearance - 1e-2)
        above = p[:, 2] - city.ground_height(p[:, 0], p[:, 1])
        assert np.all((above >= TRAFFIC.drone_altitude[0] - 1e-6) & (above <= TRAFFIC.drone_altitude[1] + 1e-6))


def test_velocity_is_the_time_derivative_and_sets_the_heading(traffic):
    dt = 1e-4
    ok = []
    for t in np.linspace(1.0, 300.0, 23):
        st = traffic.states(t)
        fd = (traffic.states(t + dt).position - traffic.states(t - dt).position) / (2 * dt)
        ok.append(np.linalg.norm(fd - st.velocity, axis=1) < 1e-3 * (1 + np.linalg.norm(st.velocity, axis=1)))
        flat = np.linalg.norm(st.velocity[:, :2], axis=1) > 0
        np.testing.assert_allclose(np.arctan2(st.velocity[flat, 1], st.velocity[flat, 0]), st.yaw[flat], atol=1e-9)
    ok = np.concatenate(ok)
    assert ok.mean() > 0.97, "only at route corners may the central difference straddle a kink"
    speed = np.concatenate([np.linalg.norm(traffic.states(t).velocity, axis=1)[None] for t in TIMES])
    k = TRAFFIC.speed_variation
    for cls, rng in ((CityClass.CAR, TRAFFIC.car_speed), (CityClass.PEDESTRIAN, TRAFFIC.pedestrian_speed)):
        s = speed[:, of_class(traffic, (cls,))]
        assert s.min() >= rng[0] * (1 - k) - 1e-9 and s.max() <= rng[1] * (1 + k) + 1e-9


def test_vehicles_start_apart(traffic):
    """No two vehicle footprints overlap at t = 0 (separating-axis test on the rectangles)."""
    veh = of_class(traffic, VEHICLES)
    rects = traffic.boxes(0.0)[veh, :4, :2]
    for i in range(len(rects)):
        for j in range(i):
            axes = [rects[k][1] - rects[k][0] for k in (i, j)] + [rects[k][3] - rects[k][0] for k in (i, j)]
            assert any((rects[i] @ ax).max() < (rects[j] @ ax).min() or (rects[j] @ ax).max() < (rects[i] @ ax).min()
                       for ax in axes), f"vehicles {i} and {j} overlap at t=0"


def test_meshes_lie_inside_their_boxes(traffic):
    t = 17.5
    v, f, sem, inst = traffic.meshes(t)
    st = traffic.states(t)
    assert f.dtype == np.int32 and f.max() < len(v) and len(sem) == len(inst) == len(f)
    assert set(np.unique(inst)) == {a.instance for a in traffic.actors}
    first = traffic.actors[0].instance
    for k, a in enumerate(traffic.actors):
        own = np.unique(f[inst == a.instance])
        assert np.all(sem[inst == a.instance] == a.semantic)
        c, s = np.cos(st.yaw[k]), np.sin(st.yaw[k])
        rel = v[own] - st.position[k]
        local = np.column_stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]])
        half = np.array(a.size[:2]) / 2 + 1e-4
        assert np.all(np.abs(local[:, :2]) <= half) and np.all((local[:, 2] >= -1e-4) & (local[:, 2] <= a.size[2] + 1e-4))
        assert a.instance == first + k


def test_config_and_placement_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="cars"):
        TrafficConfig(cars=-1)
    with pytest.raises(ValueError, match="car_speed"):
        TrafficConfig(car_speed=(10.0, 5.0))
    with pytest.raises(ValueError, match="unknown keys.*colour"):
        TrafficConfig.from_dict({"seed": 1, "colour": "red"})
    assert TrafficConfig.from_dict({"seed": 2, "car_size": [4.0, 1.7, 1.4]}).car_size == (4.0, 1.7, 1.4)
    b = SceneBuilder()
    inst = b.new_instance("bldg_0", CityClass.BUILDING)
    b.add_box((0, 0, 0), (10, 10, 20), 0.0, CityClass.BUILDING, inst)
    roadless = b.build(Terrain.flat(0.0, (-100, -100, 100, 100)), GeoOrigin.at_latlon(35.68, 139.76))
    with pytest.raises(ValueError, match="car_0000.*no road"):
        Traffic(roadless, TrafficConfig(cars=1, buses=0, trucks=0, pedestrians=0, drones=0))
    only_drones = Traffic(roadless, TrafficConfig(cars=0, buses=0, trucks=0, pedestrians=0, drones=2, seed=1))
    assert np.all(only_drones.states(5.0).position[:, 2] >= TrafficConfig().drone_altitude[0])


# ------------------------------------------------------------------------------ the dynamic world


def rays_at_vehicles(traffic, t, lift=(2.5, -1.5, 12.0)):
    """Origins above-beside each vehicle and unit directions to its box centre."""
    st = traffic.states(t)
    veh = np.flatnonzero(of_class(traffic, VEHICLES))
    height = np.array([traffic.actors[k].size[2] for k in veh])
    centre = st.position[veh] + np.column_stack([np.zeros((len(veh), 2)), height / 2])
    o = centre + lift
    d = (centre - o) / np.linalg.norm(centre - o, axis=1, keepdims=True)
    return veh, o, d


def nearest_box(traffic, t, o, d):
    """(index, distance) of the first actor box along the ray by the slab test."""
    st = traffic.states(t)
    dist = [box_distance(o, d, st.position[k], st.yaw[k], a.size) for k, a in enumerate(traffic.actors)]
    k = int(np.argmin(dist))
    return k, dist[k]


def test_ray_at_an_actor_returns_it_at_the_analytic_distance(city, traffic, world):
    t = 12.0
    veh, o, d = rays_at_vehicles(traffic, t)
    hits = world.cast(o, d, 200.0, t)
    static = city.cast(o, d, 200.0)
    checked = 0
    for r, k in enumerate(veh):
        first, expect = nearest_box(traffic, t, o[r], d[r])
        if traffic.actors[first].semantic not in VEHICLES or expect >= static.distance[r]:
            continue                                # a pedestrian's cylinder or a tree in the way
        a = traffic.actors[first]
        assert hits.instance[r] == a.instance and hits.semantic[r] == a.semantic
        assert hits.cls[r] == city.label_map(np.array([a.semantic]))[0]
        assert hits.triangle[r] >= world.num_static_triangles
        assert hits.distance[r] == pytest.approx(expect, abs=2e-3)
        assert np.dot(hits.normal[r], d[r]) < 0 and np.linalg.norm(hits.normal[r]) == pytest.approx(1, abs=1e-5)
        assert world.instance_names[hits.instance[r]] == a.name
        checked += first == k
    assert checked >= 0.8 * len(veh)


def test_the_same_ray_misses_the_actor_once_it_moved_on(traffic, world):
    t0, t1 = 12.0, 42.0
    veh, o, d = rays_at_vehicles(traffic, t0)
    later = world.cast(o, d, 200.0, t1)
    st1 = traffic.states(t1)
    gone = 0
    for r, k in enumerate(veh):
        a = traffic.actors[k]
        if np.isinf(box_distance(o[r], d[r], st1.position[k], st1.yaw[k], a.size)):
            assert later.instance[r] != a.instance
            gone += 1
    assert gone >= 0.8 * len(veh)


def test_misses_stay_free_and_static_hits_match_the_scene(city, traffic, world):
    t = 30.0
    up = np.tile([0.0, 0.0, 1.0], (50, 1))
    sky = world.cast(np.column_stack([np.linspace(-100, 100, 50), np.zeros(50), np.full(50, 400.0)]), up, np.inf, t)
    assert not sky.hit.any() and np.all(np.isinf(sky.distance)) and np.all(sky.instance == -1)
    assert np.all(sky.cls == city.label_map.free) and np.all(sky.semantic == CityClass.UNKNOWN)
    # A lidar sweep from a car's roof: actor hits are in front of the scene; elsewhere, the scene.
    car = traffic.states(t).position[0] + [0, 0, 2.0]
    el, az = np.meshgrid(np.deg2rad(np.linspace(-30, 10, 32)), np.linspace(0, 2 * np.pi, 512, endpoint=False))
    d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    o = np.tile(car, (len(d), 1))
    dyn, ref = world.cast(o, d, 120.0, t), city.cast(o, d, 120.0)
    actor = dyn.triangle >= world.num_static_triangles
    assert actor.sum() > 20
    assert np.all(dyn.distance[actor] <= ref.distance[actor] + 1e-4)
    assert np.all(dyn.instance[actor] >= len(city.instance_names))
    for got, want in zip(dyn, ref):
        np.testing.assert_array_equal(got[~actor], want[~actor])
    plain = DynamicWorld(city, None).cast(o, d, 120.0, t)
    for got, want in zip(plain, ref):
        np.testing.assert_array_equal(got, want)


def test_caster_and_numpy_backend_agree_with_embree(city, traffic, world):
    t = 12.0
    veh, o, d = rays_at_vehicles(traffic, t)
    fast = world.caster(t)(o, d, 200.0)
    again = world.cast(o, d, 200.0, t)
    for got, want in zip(fast, again):
        np.testing.assert_array_equal(got, want)
    ref = world.cast(o, d, 200.0, t, backend="numpy")
    np.testing.assert_array_equal(fast.hit, ref.hit)
    np.testing.assert_array_equal(fast.instance, ref.instance)
    np.testing.assert_allclose(fast.distance, ref.distance, atol=2e-3)


def test_shared_origin_cull_keeps_every_ray_that_meets_an_actor(traffic):
    """The angular cull may only drop rays that miss every actor (checked against a full cast)."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(60_000, 3))
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    size = np.array([a.size for a in traffic.actors])
    for t in (0.0, 50.0):
        v, f, _, _ = traffic.meshes(t)
        tracer = EmbreeTracer(v, f)
        pos = traffic.states(t).position
        centres, radii = pos + size * [0, 0, 0.5], np.linalg.norm(size, axis=1) / 2
        origins = [pos[k] + [0, 0, size[k, 2] + 3.0] for k in range(0, len(pos), 7)] + [np.array([0.0, 0.0, 40.0])]
        checked = 0
        for origin in origins:
            if np.any(np.linalg.norm(centres - origin, axis=1) <= radii):
                continue                                                # inside a sphere: no cull
            hit = tracer.intersect(np.tile(origin, (len(d), 1)).astype(np.float32), d)[1] >= 0
            kept = cone_candidates(origin, d, centres, radii)
            assert len(kept) < 0.5 * len(d)
            assert np.isin(np.flatnonzero(hit), kept).all()
            checked += hit.any()
        assert checked >= 4
    assert cone_candidates(centres[0], d, centres, radii) is None        # inside a sphere: no cull


def test_instance_tables_list_scene_then_actors(city, traffic, world):
    n = len(city.instance_names)
    assert len(world.instance_names) == n + len(traffic.actors)
    np.testing.assert_array_equal(world.instance_names[:n], city.instance_names)
    for a in traffic.actors:
        assert world.instance_names[a.instance] == a.name and world.instance_semantics[a.instance] == a.semantic
    other = generate_city(CityConfig(seed=4, size=200.0))
    with pytest.raises(ValueError, match="instance"):
        DynamicWorld(other, traffic)
