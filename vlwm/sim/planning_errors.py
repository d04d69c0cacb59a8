"""The error both planners raise (:class:`PlanningError`) and how their messages name places.

A planner that cannot make a mission or route safe refuses with a :class:`PlanningError` whose
message says where (mission item, leg, road node, point) and why; :func:`fmt_point` writes the
points in it.
"""

from __future__ import annotations


class PlanningError(ValueError):
    """A mission or route cannot be flown or driven safely; the message says where and why."""


def fmt_point(p) -> str:
    """``p`` (k,) local ENU metres as ``"(x, y, z)"`` with one decimal, for messages."""
    return "(" + ", ".join(f"{float(v):.1f}" for v in p) + ")"
