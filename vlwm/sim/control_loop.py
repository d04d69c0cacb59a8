"""The fixed-step control loop the drone and the rover share.

Both vehicles advance with ``step(dt)``: the caller's ``dt`` (seconds) is cut into equal sub-steps
no longer than :data:`MAX_CONTROL_DT`, and the vehicle's own ``_control(dt)`` runs once per
sub-step.  Angles are radians, counter-clockwise from east (local ENU frame); they are wrapped
with :func:`vlwm.angles.wrap_angle`.
"""

from __future__ import annotations

import abc
import math

MAX_CONTROL_DT = 0.05          #: step(dt) runs the control loop in sub-steps no longer than this (s)


class ControlLoop(abc.ABC):
    """Base of the vehicles: :meth:`step` runs the subclass's ``_control(dt)`` in sub-steps."""

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds (in sub-steps of at most MAX_CONTROL_DT)."""
        n = max(1, int(math.ceil(dt / MAX_CONTROL_DT - 1e-9)))
        for _ in range(n):
            self._control(dt / n)

    @abc.abstractmethod
    def _control(self, dt: float) -> None:
        """One control sub-step of ``dt`` seconds; the vehicle classes implement it."""
