"""Angle arithmetic every stage shares: :func:`wrap_angle`.

A top-level leaf beside :mod:`vlwm.labels` (it imports only numpy), so the simulator's vehicles
(:mod:`vlwm.sim.drone`, :mod:`vlwm.sim.rover`) and the dataset's trajectories
(:mod:`vlwm.data.trajectory`, and through it :mod:`vlwm.eval.trajectory`) use one definition without
either layer importing the other.  Angles are radians.
"""

from __future__ import annotations

import math

import numpy as np


def wrap_angle(a):
    """``a`` (rad) wrapped into [-pi, pi).

    A Python float (or int) gives a float, computed in Python's float arithmetic (the vehicles'
    control loops call this once per sub-step); anything else (an array of any shape, a numpy
    scalar) gives float64 of its shape; a torch tensor stays a tensor of its dtype and device (the
    world model's ego motion; ``%`` on a tensor is ``torch.remainder``).  All compute
    ``(a + pi) mod 2 pi - pi`` with the sign of the divisor, so they agree bit for bit at equal
    precision.
    """
    if isinstance(a, (float, int)) and not isinstance(a, np.generic):
        return (a + math.pi) % (2 * math.pi) - math.pi
    if type(a).__module__.startswith("torch"):
        return (a + math.pi) % (2 * math.pi) - math.pi
    return (np.asarray(a, np.float64) + np.pi) % (2 * np.pi) - np.pi
