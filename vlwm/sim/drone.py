"""The multirotor drone: a point mass under acceleration-limited velocity control, one ``step(dt)``.

The drone lives in the scene's local ENU frame (x east, y north, z up; metres, seconds, radians;
yaw counter-clockwise from east) and reports :class:`vlwm.io.frames.Pose`.  It flies a
:class:`Mission` on its own (mode AUTO) or takes commands from outside — the methods a MAVLink
endpoint maps its messages onto (``arm``, ``takeoff``, ``goto``, ``set_velocity``, ``land``,
``rtl``, ``set_mode``).  A command that cannot be carried out safely raises
(:class:`PlanningError` for unsafe geometry, ``RuntimeError`` for a wrong state).

Each step the desired velocity (towards the current target, slowing to a corner speed or a stop
so that it never needs more than half its acceleration to brake) is approached with
``|dv| <= max_accel*dt``; horizontal speed, climb and descent speeds and yaw rate are clipped to
:class:`DroneLimits`.  Since every desired velocity lies in the (convex) set of allowed
velocities, so does the velocity.  Body attitude: yaw as commanded, roll/pitch tilting the
thrust axis along the (smoothed) acceleration.  Missions are checked and re-planned by
:mod:`vlwm.sim.flight_planning` before they start; commanded velocities are guarded by a ray
cast along the stopping distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlwm.angles import wrap_angle
from vlwm.sim.control_loop import MAX_CONTROL_DT, ControlLoop
from vlwm.sim.flight_planning import FlightPlan, PlannerConfig, check_and_plan_drone_path, leg_is_clear, surface_below
from vlwm.io.frames import Pose, matrix_to_quat, quat_from_euler, quat_to_matrix
from vlwm.sim.mission_types import Mission, Waypoint
from vlwm.world.scene import Scene

GRAVITY = 9.81                 #: m/s²
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


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    """``v`` scaled down to norm ``limit`` if it is longer."""
    n = float(np.linalg.norm(v))
    return v if n <= limit or n == 0 else v * (limit / n)


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


class Drone(ControlLoop):
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

    # ------------------------------------------------------------------ the control loop (ControlLoop.step runs it)

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
            rate = float(np.clip(wrap_angle(yaw_des - self.yaw) / dt, -lim.max_yaw_rate, lim.max_yaw_rate))
        self.yaw = wrap_angle(self.yaw + rate * dt)
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
