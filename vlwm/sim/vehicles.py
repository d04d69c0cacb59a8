"""Vehicle kinematics: a multirotor drone and a car-like rover, each driven by one ``step(dt)``.

Both vehicles live in the scene's local ENU frame (x east, y north, z up; metres, seconds,
radians; yaw counter-clockwise from east) and report :class:`vlwm.sim.frames.Pose`.  Both can
fly/drive a :class:`Mission` on their own (mode AUTO) or take commands from outside — the
methods a MAVLink endpoint maps its messages onto (``arm``, ``takeoff``, ``goto``,
``set_velocity``, ``land``, ``rtl``, ``set_mode``).  A command that cannot be carried out
safely raises (:class:`PlanningError` for unsafe geometry, ``RuntimeError`` for a wrong state).

**Drone** — a point-mass multirotor under acceleration-limited velocity control: each step the
desired velocity (towards the current target, slowing to a corner speed or a stop so that it
never needs more than half its acceleration to brake) is approached with ``|dv| <= max_accel*dt``;
horizontal speed, climb and descent speeds and yaw rate are clipped to :class:`DroneLimits`.
Since every desired velocity lies in the (convex) set of allowed velocities, so does the
velocity.  Body attitude: yaw as commanded, roll/pitch tilting the thrust axis along the
(smoothed) acceleration.  Missions are checked and re-planned by :mod:`vlwm.sim.planning`
before they start; commanded velocities are guarded by a ray cast along the stopping distance.

**Rover** — a kinematic bicycle model (rear-axle reference point, ``yaw' = v tan(steer) /
wheelbase``, ``|steer| <= atan(wheelbase / min_turning_radius)``, integrated exactly along
arcs) following a lane path from :func:`vlwm.sim.planning.lane_path` (left lane, Japan) with
curvature feed-forward plus lateral/heading feedback, and a speed profile bounded by speed,
acceleration, deceleration and lateral-acceleration limits.  The pose's origin is the rear-axle
centre on the road surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vlwm.sim.frames import Pose, matrix_to_quat, quat_from_euler, quat_to_matrix
from vlwm.sim.missions import Mission, Waypoint
from vlwm.sim.planning import (DEFAULT_MIN_TURNING_RADIUS_M, FlightPlan, LanePath, PlannerConfig, PlanningError,
                               check_and_plan_drone_path, lane_path, leg_is_clear, road_route, surface_below,
                               turn_angle)
from vlwm.world.scene import Scene

GRAVITY = 9.81                 #: m/s²
MAX_CONTROL_DT = 0.05          #: step(dt) runs the control loop in sub-steps no longer than this (s)
BRAKE_FRACTION = 0.5           #: share of max_accel planned for braking and turning (the rest corrects errors)
POSITION_GAIN = 1.5            #: 1/s, speed per metre of distance near a stop
HOVER_GAIN = 1.0               #: 1/s, position hold
STOP_RADIUS_M = 0.25           #: a stop waypoint is reached within this distance ...
STOP_SPEED = 0.5               #: ... at no more than this speed (m/s)
YAW_FROM_TRAVEL_SPEED = 1.0    #: m/s of desired horizontal speed above which the drone faces its travel
LAND_GAIN = 0.5                #: 1/s, descent speed per metre of height in the final approach
TOUCHDOWN_SPEED = 0.1          #: m/s, descent speed at touchdown
TOUCHDOWN_HEIGHT_M = 1e-3      #: within this height over the surface (or below it) the drone has landed
GUARD_MARGIN_M = 1.0           #: velocity commands stop this far before an obstacle
TILT_TIME_CONSTANT_S = 0.2     #: smoothing of the acceleration that tilts the drone's body
DRONE_MODES = ("GUIDED", "AUTO", "LAND", "RTL")

ROVER_MODES = ("HOLD", "GUIDED", "AUTO", "RTL")
LATERAL_GAIN = 0.3             #: 1/m², curvature per metre of lateral error (rover tracker)
HEADING_GAIN = 1.2             #: 1/m, curvature per unit sin(heading error)
ROVER_STOP_M = 0.02            #: a rover stop is reached within this distance along the path
ROVER_SEARCH_SAMPLES = 80      #: path samples searched ahead of the last projection
STRAIGHT_ON_RAD = math.radians(10.0)  #: a car stopped at a node may go on through it within this turn
CORNER_SLACK_M = 1.0           #: spare distance a first turn needs before its corner


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= limit or n == 0 else v * (limit / n)


# ---------------------------------------------------------------------------------------------
# Drone
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DroneLimits:
    """Kinematic limits and mission-following settings of a multirotor."""

    max_speed: float = 10.0
    """Horizontal speed limit (m/s)."""
    cruise_speed: float = 8.0
    """Horizontal speed (m/s) of waypoints without their own speed."""
    max_climb_speed: float = 3.0
    """Climb speed limit (m/s)."""
    max_descent_speed: float = 2.0
    """Descent speed limit (m/s)."""
    max_accel: float = 3.0
    """Acceleration limit (m/s², norm of the 3-D acceleration, gravity excluded)."""
    max_yaw_rate: float = math.radians(90.0)
    """Yaw rate limit (rad/s)."""
    takeoff_speed: float = 2.0
    """Climb speed (m/s) of takeoffs."""
    land_speed: float = 0.7
    """Descent speed (m/s) of landings (slowing to TOUCHDOWN_SPEED near the surface)."""
    acceptance_radius: float = 1.0
    """A pass-through waypoint is reached within this distance (m)."""

    def __post_init__(self):
        for name in ("max_speed", "cruise_speed", "max_climb_speed", "max_descent_speed", "max_accel",
                     "max_yaw_rate", "takeoff_speed", "land_speed", "acceptance_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DroneLimits.{name} must be positive, got {getattr(self, name)}")
        if self.takeoff_speed > self.max_climb_speed or self.land_speed > self.max_descent_speed:
            raise ValueError("DroneLimits: takeoff_speed must be <= max_climb_speed and "
                             "land_speed <= max_descent_speed")


class Drone:
    """A multirotor in ``scene``: state, commands, and the one control loop :meth:`step`.

    State (local ENU): ``position`` (3,) m, ``velocity`` (3,) m/s, ``accel`` (3,) m/s² (last
    step), ``yaw`` rad, ``yaw_rate`` rad/s, ``t`` s; flags ``armed``, ``landed``; ``mode``.
    ``events`` collects what happened (re-plans, landings, guard stops) as text.
    """

    def __init__(self, scene: Scene, position=(0.0, 0.0), yaw: float = 0.0, limits: DroneLimits = DroneLimits(),
                 planner: PlannerConfig = PlannerConfig()):
        """Place the drone at ``position`` (2,) on the surface below, or (3,) in the air if that
        is more than 0.5 m above the surface (hovering there)."""
        self.scene, self.limits, self.planner = scene, limits, planner
        p = np.asarray(position, np.float64).reshape(-1)
        z_top = p[2] if len(p) == 3 else float(scene.bounds[1, 2]) + 10.0
        ground = surface_below(scene, (p[0], p[1], z_top))
        self.landed = len(p) != 3 or p[2] - ground <= 0.5
        self.position = np.array([p[0], p[1], ground if self.landed else p[2]], np.float64)
        self.velocity = np.zeros(3)
        self.accel = np.zeros(3)
        self.yaw, self.yaw_rate, self.t = float(yaw), 0.0, 0.0
        self.armed = False
        self.home = self.position.copy()
        self.mission: Mission | None = None
        self.plan: FlightPlan | None = None
        self.events: list[str] = []
        self._mode = "GUIDED"
        self._queue: list[tuple[Waypoint, int]] = []
        self._leg_start = self.position.copy()
        self._hold_point = self.position.copy()
        self._hold_until: float | None = None
        self._vel_cmd: np.ndarray | None = None
        self._vel_yaw_rate: float | None = None
        self._mission_done = False
        self._plan_start: np.ndarray | None = None
        self._tilt_acc = np.zeros(3)
        self._rotation = self._attitude()
        self.angular_velocity = np.zeros(3)

    # ------------------------------------------------------------------ status

    @property
    def mode(self) -> str:
        """'GUIDED', 'AUTO', 'LAND' or 'RTL'."""
        return self._mode

    @property
    def done(self) -> bool:
        """True once an AUTO mission has run to its end (landed, or hovering at its last item)."""
        return self._mode == "AUTO" and self._mission_done

    @property
    def current_item(self) -> int:
        """Index of the mission item being flown (AUTO), -1 when none."""
        return self._queue[0][1] if self._queue and self._mode == "AUTO" else -1

    # ------------------------------------------------------------------ commands

    def arm(self) -> None:
        """Arm on the ground; home becomes the current position (as ArduPilot does)."""
        if not self.landed:
            raise RuntimeError("the drone is flying: it is armed already")
        self.armed = True
        self.home = self.position.copy()

    def disarm(self) -> None:
        if not self.landed:
            raise RuntimeError("refusing to disarm in flight: land first")
        self.armed = False

    def set_mode(self, mode: str) -> None:
        """Switch mode: GUIDED hovers where it is, AUTO starts the mission, LAND lands, RTL returns home."""
        if mode == "GUIDED":
            self._set_queue(None, "GUIDED")
        elif mode == "AUTO":
            self.start_mission()
        elif mode == "LAND":
            self.land()
        elif mode == "RTL":
            self.rtl()
        else:
            raise ValueError(f"unknown drone mode {mode!r}; choose one of {DRONE_MODES}")

    def takeoff(self, altitude: float) -> None:
        """Climb vertically to ``altitude`` m above home (GUIDED)."""
        if not self.armed:
            raise RuntimeError("arm the drone before taking off")
        if not self.landed:
            raise RuntimeError("the drone is flying already")
        if not altitude > 0:
            raise ValueError(f"takeoff altitude must be positive, got {altitude}")
        self._set_queue(self._plan([Waypoint(tuple(self.home + [0, 0, altitude]), "takeoff")]), "GUIDED")

    def goto(self, position) -> None:
        """Fly to ``position`` (3,) local ENU m (GUIDED), over obstacles if the direct leg is blocked."""
        self._require_flying("goto")
        self._set_queue(self._plan([Waypoint(tuple(np.asarray(position, np.float64)))]), "GUIDED")

    def set_velocity(self, velocity, yaw_rate: float | None = None) -> None:
        """Hold the velocity ``velocity`` (3,) m/s, world frame (GUIDED), clipped to the limits;
        the drone brakes instead of flying into a surface.  ``yaw_rate`` rad/s, or face travel."""
        self._require_flying("set_velocity")
        self._set_queue(None, "GUIDED")
        self._vel_cmd = np.asarray(velocity, np.float64).reshape(3).copy()
        self._vel_yaw_rate = None if yaw_rate is None else float(yaw_rate)

    def land(self) -> None:
        """Descend vertically where it is and disarm on touchdown (LAND)."""
        if self.landed:
            return
        self._set_queue(self._plan([Waypoint(tuple(self.position), "land")]), "LAND")

    def rtl(self) -> None:
        """Climb to the RTL altitude, fly home, land (RTL)."""
        self._require_flying("rtl")
        self._set_queue(self._plan([Waypoint(tuple(self.home), "rtl")]), "RTL")

    def set_mission(self, mission: Mission) -> FlightPlan:
        """Check and plan ``mission`` from the current position (raises PlanningError); AUTO flies it."""
        if mission.vehicle != "drone":
            raise ValueError(f"mission {mission.name!r} is for a {mission.vehicle}, not a drone")
        self.mission = mission
        self.plan = self._plan(mission.waypoints)
        return self.plan

    def start_mission(self) -> None:
        """Fly the mission from its first item (AUTO); re-planned if the drone has moved since."""
        if self.mission is None:
            raise RuntimeError("no mission: call set_mission first")
        if self.landed and not self.armed:
            raise RuntimeError("arm the drone before starting a mission")
        if self.plan is None or self._plan_start is None or np.linalg.norm(self._plan_start - self.position) > 0.1:
            self.plan = self._plan(self.mission.waypoints)
        for d in self.plan.detours:
            self.events.append(f"t={self.t:.2f}s re-planned: {d.describe()}")
        self._mission_done = False
        self._set_queue(self.plan, "AUTO")

    def _plan(self, waypoints) -> FlightPlan:
        plan = check_and_plan_drone_path(self.scene, waypoints, start=self.position, home=self.home,
                                         config=self.planner, airborne=not self.landed)
        self._plan_start = self.position.copy()
        return plan

    def _require_flying(self, what: str) -> None:
        if self.landed:
            raise RuntimeError(f"{what}: the drone is on the ground; take off first")

    def _set_queue(self, plan: FlightPlan | None, mode: str) -> None:
        self._mode = mode
        self._queue = [] if plan is None else list(zip(plan.waypoints, plan.source))
        self._vel_cmd = None
        self._hold_until = None
        self._leg_start = self.position.copy()
        self._hold_point = self.position.copy()

    # ------------------------------------------------------------------ the control loop

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds (in sub-steps of at most MAX_CONTROL_DT)."""
        n = max(1, int(math.ceil(dt / MAX_CONTROL_DT - 1e-9)))
        for _ in range(n):
            self._control(dt / n)

    def _control(self, dt: float) -> None:
        lim = self.limits
        if self.landed:
            self.velocity[:] = 0.0
            self.accel[:] = 0.0
            self.yaw_rate = 0.0
            if self.armed and self._queue and self._queue[0][0].command == "takeoff":
                self.landed = False
            else:
                self.t += dt
                self._update_attitude(dt)
                return
        v_des, yaw_des = self._desired()
        dv = _clip_norm(v_des - self.velocity, lim.max_accel * dt)
        self.accel = dv / dt
        self.velocity = self.velocity + dv
        self.position = self.position + self.velocity * dt
        if self._queue and self._queue[0][0].command == "land":
            surface = surface_below(self.scene, self.position)
            if self.position[2] - surface <= TOUCHDOWN_HEIGHT_M:
                self._touchdown(surface)
        if self._vel_yaw_rate is not None and self._vel_cmd is not None:
            rate = float(np.clip(self._vel_yaw_rate, -lim.max_yaw_rate, lim.max_yaw_rate))
        elif yaw_des is None:
            rate = 0.0
        else:
            rate = float(np.clip(_wrap(yaw_des - self.yaw) / dt, -lim.max_yaw_rate, lim.max_yaw_rate))
        self.yaw = _wrap(self.yaw + rate * dt)
        self.yaw_rate = rate
        self.t += dt
        self._update_attitude(dt)

    def _touchdown(self, surface: float) -> None:
        self.position[2] = surface
        self.velocity[:] = 0.0
        self.landed = True
        self._queue.pop(0)
        self.events.append(f"t={self.t:.2f}s landed at {np.round(self.position, 2).tolist()}")
        if not self._queue:
            self.armed = False
            self._mission_done = True

    def _desired(self) -> tuple[np.ndarray, float | None]:
        """Desired velocity (3,) m/s and yaw (rad or None to hold) for this step."""
        lim = self.limits
        if self._vel_cmd is not None:
            v = self._clip_velocity(self._vel_cmd)
            if self._guard_blocked(v) or self._guard_blocked(self.velocity):
                if not self.events or not self.events[-1].endswith("guard"):
                    self.events.append(f"t={self.t:.2f}s velocity command stopped by the obstacle guard")
                v = np.zeros(3)
            return v, self._travel_yaw(v)
        while self._queue:
            wp, _ = self._queue[0]
            if wp.command == "land":
                return self._land_velocity(wp), wp.yaw
            if self._hold_until is not None:
                if self.t < self._hold_until:
                    return self._hover_velocity(wp.xyz), wp.yaw
                self._advance()
                continue
            to = wp.xyz - self.position
            dist = float(np.linalg.norm(to))
            v_end = self._corner_speed()
            reached = dist <= lim.acceptance_radius if v_end > 0 else \
                (dist <= STOP_RADIUS_M and np.linalg.norm(self.velocity) <= STOP_SPEED)
            if reached:
                if wp.hold_s > 0:
                    self._hold_until = self.t + wp.hold_s
                    continue
                self._advance()
                continue
            u = to / dist
            up = lim.takeoff_speed if wp.command == "takeoff" else lim.max_climb_speed
            cap = self._cap(u, min(wp.speed or lim.cruise_speed, lim.max_speed), up)
            brake = BRAKE_FRACTION * lim.max_accel
            speed = min(cap, math.sqrt(v_end ** 2 + 2 * brake * dist), v_end + POSITION_GAIN * dist)
            v = u * speed
            yaw = wp.yaw if wp.yaw is not None else self._travel_yaw(v)
            return v, yaw
        if self._mode == "AUTO":
            self._mission_done = True
        return self._hover_velocity(self._hold_point), None

    def _advance(self) -> None:
        wp, _ = self._queue.pop(0)
        self._hold_until = None
        self._leg_start = wp.xyz
        self._hold_point = wp.xyz

    def _cap(self, u: np.ndarray, horizontal: float, up: float) -> float:
        """Largest speed along unit ``u`` within the horizontal and vertical limits."""
        caps = [math.inf]
        h = math.hypot(u[0], u[1])
        if h > 1e-9:
            caps.append(horizontal / h)
        if u[2] > 1e-9:
            caps.append(up / u[2])
        elif u[2] < -1e-9:
            caps.append(self.limits.max_descent_speed / -u[2])
        return min(caps)

    def _corner_speed(self) -> float:
        """Speed (m/s) at which to pass the current target: 0 to stop there."""
        lim = self.limits
        wp = self._queue[0][0]
        if wp.hold_s > 0 or len(self._queue) < 2 or self._queue[1][0].command != "waypoint":
            return 0.0
        nxt = self._queue[1][0]
        d_in, d_out = wp.xyz - self._leg_start, nxt.xyz - wp.xyz
        n_in, n_out = np.linalg.norm(d_in), np.linalg.norm(d_out)
        if n_in < 1e-6 or n_out < 1e-6:
            return 0.0
        cos_t = float(d_in @ d_out) / (n_in * n_out)
        if cos_t <= 0.0:
            return 0.0
        theta = math.acos(min(1.0, cos_t))
        cap = self._cap(d_out / n_out, min(nxt.speed or lim.cruise_speed, lim.max_speed), lim.max_climb_speed)
        if theta < 1e-3:
            return cap
        turn_radius = lim.acceptance_radius / math.tan(theta / 2)
        return min(cap, math.sqrt(BRAKE_FRACTION * lim.max_accel * turn_radius))

    def _hover_velocity(self, point: np.ndarray) -> np.ndarray:
        return self._clip_velocity(HOVER_GAIN * (point - self.position))

    def _land_velocity(self, wp: Waypoint) -> np.ndarray:
        lim = self.limits
        height = self.position[2] - surface_below(self.scene, self.position)
        v = HOVER_GAIN * (wp.xyz - self.position)
        v[2] = -min(lim.land_speed, LAND_GAIN * max(height, 0.0) + TOUCHDOWN_SPEED)
        return self._clip_velocity(v)

    def _clip_velocity(self, v: np.ndarray) -> np.ndarray:
        lim = self.limits
        out = np.empty(3)
        out[:2] = _clip_norm(np.asarray(v[:2], np.float64), lim.max_speed)
        out[2] = float(np.clip(v[2], -lim.max_descent_speed, lim.max_climb_speed))
        return out

    def _travel_yaw(self, v: np.ndarray) -> float | None:
        return math.atan2(v[1], v[0]) if math.hypot(v[0], v[1]) > YAW_FROM_TRAVEL_SPEED else None

    def _guard_blocked(self, v: np.ndarray) -> bool:
        """Whether flying along ``v`` would reach a surface within the stopping distance."""
        speed = float(np.linalg.norm(v))
        if speed < 0.05:
            return False
        reach = speed ** 2 / (2 * self.limits.max_accel) + speed * MAX_CONTROL_DT + GUARD_MARGIN_M
        return not leg_is_clear(self.scene, self.position, self.position + v / speed * reach, self.planner.body_radius)

    # ------------------------------------------------------------------ attitude and pose

    def _attitude(self) -> np.ndarray:
        """Body -> world rotation (3, 3) = Rz(yaw) Ry(pitch) Rx(roll), roll and pitch tilting the
        body z axis along the thrust (gravity + smoothed acceleration); its Z-Y-X yaw is ``yaw``."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        ax, ay, az = self._tilt_acc
        fx, fy, fz = c * ax + s * ay, -s * ax + c * ay, az + GRAVITY     # thrust in the yaw frame
        pitch = math.atan2(fx, fz)
        roll = math.atan2(-fy, math.hypot(fx, fz))
        return quat_to_matrix(quat_from_euler(roll, pitch, self.yaw))

    def _update_attitude(self, dt: float) -> None:
        self._tilt_acc = self._tilt_acc + (self.accel - self._tilt_acc) * min(1.0, dt / TILT_TIME_CONSTANT_S)
        if self.landed:
            self._tilt_acc[:] = 0.0
        r = self._attitude()
        self.angular_velocity = _rotation_rate(self._rotation, r, dt)
        self._rotation = r

    def pose(self) -> Pose:
        """The current state as a :class:`Pose` (timestamp = ``t``)."""
        return Pose(self.t, self.position.copy(), matrix_to_quat(self._rotation), self.velocity.copy(),
                    self.angular_velocity.copy())


def _rotation_rate(r0: np.ndarray, r1: np.ndarray, dt: float) -> np.ndarray:
    """Body-frame angular velocity (3,) rad/s turning ``r0`` into ``r1`` in ``dt`` s."""
    m = r0.T @ r1
    angle = math.acos(float(np.clip((np.trace(m) - 1) / 2, -1.0, 1.0)))
    vee = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    scale = 0.5 if angle < 1e-6 else angle / (2 * math.sin(angle))
    return vee * scale / dt


# ---------------------------------------------------------------------------------------------
# Rover
# ---------------------------------------------------------------------------------------------


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


class Rover:
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

    # ------------------------------------------------------------------ the control loop

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds (in sub-steps of at most MAX_CONTROL_DT)."""
        n = max(1, int(math.ceil(dt / MAX_CONTROL_DT - 1e-9)))
        for _ in range(n):
            self._control(dt / n)

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
        self.yaw = _wrap(y0 + turn)
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
        heading_err = _wrap(self.yaw - h)
        return float(path.curvature[i]) - LATERAL_GAIN * lateral - HEADING_GAIN * math.sin(heading_err)

    def pose(self) -> Pose:
        """The current state as a :class:`Pose` (timestamp = ``t``; level body, yaw only)."""
        v = self.speed * np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
        return Pose(self.t, self.position.copy(), quat_from_euler(0.0, 0.0, self.yaw), v,
                    np.array([0.0, 0.0, self.speed * self._kappa]))


# ---------------------------------------------------------------------------------------------
# Running a mission
# ---------------------------------------------------------------------------------------------


def vehicle_for_mission(mission: Mission, scene: Scene, drone_limits: DroneLimits = DroneLimits(),
                        rover_limits: RoverLimits = RoverLimits(), planner: PlannerConfig = PlannerConfig()):
    """A :class:`Drone` on the ground at the mission's home, or a :class:`Rover` at its route's
    start, armed, with the mission planned and started (AUTO).  Planning errors raise here."""
    if mission.vehicle == "drone":
        vehicle = Drone(scene, mission.home[:2], limits=drone_limits, planner=planner)
    else:
        vehicle = Rover.at_route_start(scene, mission, rover_limits)
    vehicle.arm()
    vehicle.set_mission(mission)
    vehicle.start_mission()
    return vehicle


def fly(mission: Mission, scene: Scene, dt: float = 0.05, *, drone_limits: DroneLimits = DroneLimits(),
        rover_limits: RoverLimits = RoverLimits(), planner: PlannerConfig = PlannerConfig(),
        max_duration_s: float = 3600.0) -> Iterator[Pose]:
    """Run ``mission`` in ``scene`` and yield the vehicle's pose every ``dt`` s, from t = 0 to the end.

    The vehicle is built (and the mission planned) before the first pose, so a mission that
    cannot be flown raises here; one that has not ended after ``max_duration_s`` raises RuntimeError.
    """
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    vehicle = vehicle_for_mission(mission, scene, drone_limits, rover_limits, planner)
    return _run(vehicle, mission.name, dt, max_duration_s)


def _run(vehicle, name: str, dt: float, max_duration_s: float) -> Iterator[Pose]:
    yield vehicle.pose()
    while not vehicle.done:
        if vehicle.t > max_duration_s:
            raise RuntimeError(f"mission {name!r} did not finish within {max_duration_s:.0f} s "
                               f"(mode {vehicle.mode}, at {np.round(vehicle.position, 1).tolist()})")
        vehicle.step(dt)
        yield vehicle.pose()
