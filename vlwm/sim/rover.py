"""The car-like rover: a kinematic bicycle model following a lane path, one ``step(dt)``.

The rover lives in the scene's local ENU frame (x east, y north, z up; metres, seconds, radians;
yaw counter-clockwise from east) and reports :class:`vlwm.io.frames.Pose`.  It drives a
:class:`Mission` on its own (mode AUTO) or takes commands from outside — the methods a MAVLink
endpoint maps its messages onto (``arm``, ``goto``, ``hold``, ``rtl``, ``set_mode``).  A
command that cannot be carried out safely raises (:class:`PlanningError` for an impossible
route, ``RuntimeError`` for a wrong state).

The model: rear-axle reference point, ``yaw' = v tan(steer) / wheelbase``,
``|steer| <= atan(wheelbase / min_turning_radius)``, integrated exactly along arcs, following a
lane path from :func:`vlwm.sim.road_planning.lane_path` (left lane, Japan) with curvature
feed-forward plus lateral/heading feedback, and a speed profile bounded by speed, acceleration,
deceleration and lateral-acceleration limits.  The pose's origin is the rear-axle centre on the
road surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlwm.angles import wrap_angle
from vlwm.sim.control_loop import ControlLoop
from vlwm.io.frames import Pose, quat_from_euler
from vlwm.sim.mission_types import Mission
from vlwm.sim.planning_errors import PlanningError
from vlwm.sim.road_planning import DEFAULT_MIN_TURNING_RADIUS_M, LanePath, lane_path, road_route, turn_angle
from vlwm.world.scene import Scene

ROVER_MODES = ("HOLD", "GUIDED", "AUTO", "RTL")
LATERAL_GAIN = 0.3             #: 1/m², curvature per metre of lateral error (rover tracker)
HEADING_GAIN = 1.2             #: 1/m, curvature per unit sin(heading error)
ROVER_STOP_M = 0.02            #: a rover stop is reached within this distance along the path
ROVER_SEARCH_SAMPLES = 80      #: path samples searched ahead of the last projection
STRAIGHT_ON_RAD = math.radians(10.0)  #: a car stopped at a node may go on through it within this turn
CORNER_SLACK_M = 1.0           #: spare distance a first turn needs before its corner


@dataclass(frozen=True)
class RoverLimits:
    """Kinematic limits of a car-like rover (kinematic bicycle model)."""

    max_speed: float = 10.0
    """Speed limit (m/s; 36 km/h)."""
    max_accel: float = 2.0
    """Acceleration limit (m/s²)."""
    max_decel: float = 3.0
    """Braking limit (m/s²)."""
    max_lateral_accel: float = 2.0
    """Lateral acceleration limit in turns (m/s²): speed <= sqrt(this * radius)."""
    wheelbase: float = 2.7
    """Distance (m) between the axles."""
    min_turning_radius: float = DEFAULT_MIN_TURNING_RADIUS_M
    """Smallest turning radius (m) of the rear-axle centre; sets the steering limit."""
    kerb_margin: float = 0.3
    """The reference path keeps the rear-axle centre this far (m) inside the carriageway edge."""

    def __post_init__(self):
        for name in ("max_speed", "max_accel", "max_decel", "max_lateral_accel", "wheelbase", "min_turning_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RoverLimits.{name} must be positive, got {getattr(self, name)}")
        if self.kerb_margin < 0:
            raise ValueError(f"RoverLimits.kerb_margin must not be negative, got {self.kerb_margin}")

    @property
    def max_steer(self) -> float:
        """Steering angle limit (rad)."""
        return math.atan(self.wheelbase / self.min_turning_radius)


def speed_profile(path: LanePath, limits: RoverLimits) -> np.ndarray:
    """(n,) speed limit (m/s) at each path sample: the speed limit and the lateral-acceleration
    limit in curves, each approached by braking at ``max_decel`` (with a 20 % reserve).  Stops
    (holds, the end) are enforced by the controller from the distance to them."""
    v = np.minimum(np.sqrt(limits.max_lateral_accel / np.maximum(np.abs(path.curvature), 1e-9)), limits.max_speed)
    ds = np.diff(path.s)
    decel = 0.8 * limits.max_decel
    for i in range(len(v) - 2, -1, -1):
        v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * decel * ds[i]))
    return v


class Rover(ControlLoop):
    """A car on the scene's roads: state, commands, and the one control loop :meth:`step`.

    State (local ENU): ``position`` (3,) m (rear-axle centre on the road surface), ``yaw`` rad,
    ``speed`` m/s (forward, >= 0), ``steer`` rad, ``t`` s; ``mode``; ``path`` the lane path
    being driven.  The rover never reverses: routes are planned without U-turns.
    """

    def __init__(self, scene: Scene, position, yaw: float, limits: RoverLimits = RoverLimits(),
                 edge: tuple[int, int] | None = None):
        """Place the rover at ``position`` (2,) or (3,) heading ``yaw``, on the directed road edge
        ``edge`` (a, b) (driving towards b), or on the nearest edge best aligned with ``yaw``."""
        if scene.roads.num_edges == 0:
            raise PlanningError("the scene has no road graph: a rover cannot drive in it")
        self.scene, self.roads, self.limits = scene, scene.roads, limits
        p = np.asarray(position, np.float64).reshape(-1)
        self.yaw = float(yaw)
        self._edge = self._locate(p[:2]) if edge is None else (int(edge[0]), int(edge[1]))
        a, b = self._edge
        na, nb = self.roads.nodes[a].astype(np.float64), self.roads.nodes[b].astype(np.float64)
        t = float(np.clip((p[:2] - na[:2]) @ (nb - na)[:2] / max(float((nb - na)[:2] @ (nb - na)[:2]), 1e-9), 0, 1))
        self.position = np.array([p[0], p[1], na[2] + t * (nb[2] - na[2])])
        self.speed, self.steer, self.t = 0.0, 0.0, 0.0
        self.armed = False
        self.home = self.position.copy()
        self.mission: Mission | None = None
        self.path: LanePath | None = None
        self.events: list[str] = []
        self._mode = "HOLD"
        self._profile = np.zeros(0)
        self._idx = 0
        self._stops: list[tuple[float, float]] = []  # (arc length m, hold s), the path's end last
        self._hold_until: float | None = None
        self._route_done = False
        self._goals: list[int] = []
        self._holds: list[float] = []
        self._kappa = 0.0

    @classmethod
    def at_route_start(cls, scene: Scene, mission: Mission, limits: RoverLimits = RoverLimits()) -> "Rover":
        """A rover in the left lane at the mission's first waypoint, facing along its route."""
        roads = scene.roads
        goals = [roads.nearest_node(w.position[:2]) for w in mission.waypoints]
        route = road_route(roads, goals[0], goals[1:])
        if len(route) < 2:
            raise PlanningError(f"mission {mission.name!r} does not leave its first road node {goals[0]}")
        path = lane_path(roads, route[:2], limits.min_turning_radius, limits.kerb_margin)
        return cls(scene, path.xyz[0], float(path.heading[0]), limits, edge=(route[0], route[1]))

    # ------------------------------------------------------------------ status

    @property
    def mode(self) -> str:
        """'HOLD', 'GUIDED', 'AUTO' or 'RTL'."""
        return self._mode

    @property
    def done(self) -> bool:
        """True once an AUTO mission's route has been driven to its end."""
        return self._mode == "AUTO" and self._route_done

    @property
    def arrived(self) -> bool:
        """True once the current route (any mode) has been driven to its end and the rover stopped."""
        return self._route_done

    # ------------------------------------------------------------------ commands

    def arm(self) -> None:
        self.armed = True
        self.home = self.position.copy()

    def disarm(self) -> None:
        if self.speed > 0.05:
            raise RuntimeError("refusing to disarm while driving: hold first")
        self.armed = False

    def set_mode(self, mode: str) -> None:
        """HOLD brakes to a stop, AUTO starts the mission, RTL drives home, GUIDED keeps the current route."""
        if mode == "HOLD":
            self.hold()
        elif mode == "AUTO":
            self.start_mission()
        elif mode == "RTL":
            self.rtl()
        elif mode == "GUIDED":
            self._mode = "GUIDED"
        else:
            raise ValueError(f"unknown rover mode {mode!r}; choose one of {ROVER_MODES}")

    def hold(self) -> None:
        """Brake to a stop and drop the route."""
        self._mode, self.path = "HOLD", None

    def goto(self, position) -> None:
        """Drive along roads to the road node nearest ``position`` (2,) or (3,) (GUIDED)."""
        self._drive([self.roads.nearest_node(np.asarray(position, np.float64)[:2])], [0.0], "GUIDED")

    def rtl(self) -> None:
        """Drive back to the road node nearest home (RTL)."""
        self._drive([self.roads.nearest_node(self.home[:2])], [0.0], "RTL")

    def set_mission(self, mission: Mission) -> LanePath:
        """Plan ``mission``'s route from the current state (raises PlanningError); AUTO drives it."""
        if mission.vehicle != "rover":
            raise ValueError(f"mission {mission.name!r} is for a {mission.vehicle}, not a rover")
        self.mission = mission
        self._goals = [self.roads.nearest_node(w.position[:2]) for w in mission.waypoints]
        self._holds = [w.hold_s for w in mission.waypoints]
        return self._plan(self._goals, self._holds)[0]

    def start_mission(self) -> None:
        if self.mission is None:
            raise RuntimeError("no mission: call set_mission first")
        if not self.armed:
            raise RuntimeError("arm the rover before starting a mission")
        self._drive(self._goals, self._holds, "AUTO")

    def _drive(self, goals, holds, mode: str) -> None:
        path, stops = self._plan(goals, holds)
        self.path, self._stops, self._mode = path, stops, mode
        self._profile = speed_profile(path, self.limits)
        self._idx, self._hold_until, self._route_done = 0, None, False

    def _plan(self, goals, holds) -> tuple[LanePath, list[tuple[float, float]]]:
        """Lane path from the current state through the goal nodes, and its stops (s, hold)."""
        roads, lim = self.roads, self.limits
        u, v = self._edge
        nu, nv = roads.nodes[u, :2].astype(np.float64), roads.nodes[v, :2].astype(np.float64)
        edge_dir = (nv - nu) / np.linalg.norm(nv - nu)
        remaining = float((nv - self.position[:2]) @ edge_dir)
        goals, holds = list(goals), list(holds)
        while goals and goals[0] == u and float((self.position[:2] - nu) @ edge_dir) < CORNER_SLACK_M:
            goals.pop(0)
            holds.pop(0)
        if not goals:
            raise PlanningError("the route has no goal ahead of the rover")

        def first_turn_ok(a, b, c):
            theta = turn_angle(roads, a, b, c)
            return theta < STRAIGHT_ON_RAD or lim.min_turning_radius * math.tan(theta / 2) + CORNER_SLACK_M <= remaining

        route = [u] + road_route(roads, v, goals, prev=u, first_turn_ok=first_turn_ok)
        path = lane_path(roads, route, lim.min_turning_radius, lim.kerb_margin, start_xy=self.position[:2])
        stops, k = [], 0
        for goal, hold in zip(goals, holds):
            if goal in path.nodes[k:]:
                k = path.nodes.index(goal, k)
                if hold > 0:
                    stops.append((float(path.node_s[k]), hold))
        stops.append((path.length, 0.0))
        return path, stops

    def _locate(self, xy: np.ndarray) -> tuple[int, int]:
        """The directed road edge (a, b) under ``xy`` (2,) best aligned with the current yaw."""
        roads = self.roads
        a = roads.nodes[roads.edges[:, 0], :2].astype(np.float64)
        b = roads.nodes[roads.edges[:, 1], :2].astype(np.float64)
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", xy - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
        dist = np.linalg.norm(xy - (a + t[:, None] * ab), axis=1)
        heading = np.array([math.cos(self.yaw), math.sin(self.yaw)])
        align = np.abs(ab @ heading) / np.linalg.norm(ab, axis=1)
        near = dist <= dist.min() + 1.0
        e = int(np.flatnonzero(near)[np.argmax(align[near])])
        i, j = (int(v) for v in roads.edges[e])
        return (i, j) if ab[e] @ heading >= 0 else (j, i)

    # ------------------------------------------------------------------ the control loop (ControlLoop.step runs it)

    def _control(self, dt: float) -> None:
        lim = self.limits
        path = self.path
        if path is None or self._route_done or not self.armed:
            target = 0.0
            kappa = 0.0
        else:
            i = self._project()
            tangent = np.array([math.cos(path.heading[i]), math.sin(path.heading[i])])
            s = float(path.s[i]) + float((self.position[:2] - path.xyz[i, :2]) @ tangent)
            stop_s, hold = self._stops[0]
            to_stop = stop_s - s
            if self._hold_until is not None:
                target = 0.0
                if self.t >= self._hold_until:
                    self._hold_until = None
                    self._stops.pop(0)
            elif to_stop <= ROVER_STOP_M or (self.speed < 0.05 and to_stop < 0.3):
                target = 0.0                      # at the stop: brake, then hold or finish
                if self.speed == 0.0:
                    if len(self._stops) == 1:
                        self._route_done = True
                        self.events.append(f"t={self.t:.2f}s reached the end of the route")
                    else:
                        self._hold_until = self.t + hold
            else:
                target = min(float(self._profile[i]), math.sqrt(2 * 0.8 * lim.max_decel * to_stop))
            kappa = self._steer_curvature(i)
            a_, b_ = path.nodes[path.edge[i]], path.nodes[min(path.edge[i] + 1, len(path.nodes) - 1)]
            if a_ != b_:
                self._edge = (int(a_), int(b_))
        dv = float(np.clip(target - self.speed, -lim.max_decel * dt, lim.max_accel * dt))
        self.speed = float(np.clip(self.speed + dv, 0.0, lim.max_speed))
        max_k = math.tan(lim.max_steer) / lim.wheelbase
        kappa = float(np.clip(kappa, -max_k, max_k))
        self.steer = math.atan(lim.wheelbase * kappa)
        ds = self.speed * dt
        y0, turn = self.yaw, kappa * ds
        chord = ds * (1.0 if turn == 0 else math.sin(turn / 2) / (turn / 2))   # exact arc, stable near 0
        self.position[:2] += chord * np.array([math.cos(y0 + turn / 2), math.sin(y0 + turn / 2)])
        self.yaw = wrap_angle(y0 + turn)
        self._kappa = kappa
        if path is not None:
            self.position[2] = float(np.interp(path.s[self._project()], path.s, path.xyz[:, 2]))
        self.t += dt

    def _project(self) -> int:
        """Index of the path sample nearest the rover, searched ahead of the last one."""
        path = self.path
        lo, hi = self._idx, min(len(path.s), self._idx + ROVER_SEARCH_SAMPLES)
        d = np.linalg.norm(path.xyz[lo:hi, :2] - self.position[:2], axis=1)
        self._idx = lo + int(np.argmin(d))
        return self._idx

    def _steer_curvature(self, i: int) -> float:
        """Curvature (1/m) to steer: the path's, plus feedback on lateral and heading error."""
        path = self.path
        h = float(path.heading[i])
        tangent = np.array([math.cos(h), math.sin(h)])
        off = self.position[:2] - path.xyz[i, :2]
        lateral = float(tangent[0] * off[1] - tangent[1] * off[0])   # > 0: left of the path
        heading_err = wrap_angle(self.yaw - h)
        return float(path.curvature[i]) - LATERAL_GAIN * lateral - HEADING_GAIN * math.sin(heading_err)

    def pose(self) -> Pose:
        """The current state as a :class:`Pose` (timestamp = ``t``; level body, yaw only)."""
        v = self.speed * np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
        return Pose(self.t, self.position.copy(), quat_from_euler(0.0, 0.0, self.yaw), v,
                    np.array([0.0, 0.0, self.speed * self._kappa]))
