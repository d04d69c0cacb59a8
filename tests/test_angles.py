"""vlwm.angles.wrap_angle: one definition for the vehicles (Python floats) and the trajectories (arrays)."""

import math

import numpy as np

from vlwm.angles import wrap_angle


def test_floats_and_arrays_wrap_into_the_same_half_open_interval_bit_for_bit():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(-50.0, 50.0, 1000), [0.0, math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 2e5]])
    wrapped = wrap_angle(a)
    assert wrapped.dtype == np.float64 and wrapped.shape == a.shape
    assert np.all(wrapped >= -math.pi) and np.all(wrapped < math.pi)
    scalars = [wrap_angle(float(v)) for v in a]
    assert all(type(s) is float for s in scalars)
    assert np.array_equal(np.array(scalars), wrapped)        # same arithmetic, not just close


def test_wrapping_keeps_the_angle_modulo_a_turn():
    a = np.linspace(-20.0, 20.0, 401)
    w = wrap_angle(a)
    turns = (a - w) / (2 * math.pi)
    # a - w is a whole number of turns, up to the rounding of a + pi (|a| <= 20: < 1e-14 turns).
    assert np.allclose(turns, np.round(turns), rtol=0, atol=1e-14)
    assert wrap_angle(math.pi) == -math.pi and wrap_angle(-math.pi) == -math.pi
    assert wrap_angle(np.float64(1.0)) == 1.0
