"""Which predicted step is "1 s", "2 s", "3 s": the horizons every forecasting metric reports.

OccWorld predicts 6 frames at 2 Hz (0.5 s … 3 s) and reports steps 1, 3 and 5 (0-based) as
1 s / 2 s / 3 s, plus their mean (SPEC §7.2).  Our recordings may run at another rate
(``sample["frame_rate_hz"]``), so the step of a horizon is derived from the rate: future step
``k`` (0-based) lies ``(k + 1) / rate`` seconds after the last history frame.  Training's validation
(:mod:`vlwm.train.validation`) and the evaluation metrics (:mod:`vlwm.eval`) both report these.
"""

from __future__ import annotations

from typing import Sequence

from vlwm.data.config import OCCWORLD_FRAME_RATE_HZ

#: The horizons the field reports (seconds after the last observed frame).
DEFAULT_HORIZONS_S: tuple[float, ...] = (1.0, 2.0, 3.0)
#: A horizon must fall this close (in steps) to a whole step.
STEP_TOLERANCE = 1e-6


def horizon_label(seconds: float) -> str:
    """``1.0 -> "1s"``, ``1.5 -> "1.5s"``: the key a horizon is reported under."""
    return f"{seconds:g}s"


def horizon_steps(num_steps: int, frame_rate_hz: float = OCCWORLD_FRAME_RATE_HZ,
                  horizons_s: Sequence[float] = DEFAULT_HORIZONS_S) -> dict[str, int]:
    """0-based step index of each horizon that the prediction reaches.

    Parameters
    ----------
    num_steps : int
        Predicted future frames ``T_f``.
    frame_rate_hz : float
        Rate of the predicted frames (Hz).
    horizons_s : sequence of float
        Horizons in seconds.

    Returns
    -------
    ``{"1s": 1, "2s": 3, "3s": 5}`` for 6 steps at 2 Hz; horizons beyond the last step are left out.

    Raises
    ------
    ValueError
        When a horizon does not fall on a whole step at this rate (e.g. 1 s at 2.5 Hz).
    """
    if num_steps < 1:
        raise ValueError(f"horizon_steps: num_steps must be at least 1, got {num_steps}")
    if not frame_rate_hz > 0:
        raise ValueError(f"horizon_steps: frame_rate_hz must be positive, got {frame_rate_hz}")
    out: dict[str, int] = {}
    for h in horizons_s:
        steps = h * frame_rate_hz
        if abs(steps - round(steps)) > STEP_TOLERANCE * max(1.0, steps):
            raise ValueError(f"horizon {h:g} s is {steps:g} steps at {frame_rate_hz:g} Hz, not a whole step; "
                             f"choose horizons that are multiples of {1 / frame_rate_hz:g} s or resample the "
                             f"frames (DatasetConfig.frame_stride)")
        k = int(round(steps)) - 1
        if 0 <= k < num_steps:
            out[horizon_label(h)] = k
    return out

