"""SDF / XML element text: the one owner of the helpers every SDF writer builds its files with.

The world exporter (:mod:`vlwm.world.export`: the city model, ``model.config``, ``world.sdf``) and
the Gazebo vehicle models (:mod:`vlwm.sim.gazebo.vehicle_models`) write their elements with
:func:`sub` and their numbers with :func:`num` / :func:`vec` (used as ``sdf.sub`` etc.).

Numbers: the shortest text that reads back as the same float64 (``repr``), written without ``.0``
when integral (``1``, ``0.001``, ``-9.80665``).  A writer whose values are computed (e.g. angles
converted from degrees) may first round them to ``digits`` decimals, so float noise does not
reach the file: the vehicle models use 9 decimals (1 nm, 1 nrad); the world files write exact values.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable


def sub(parent: ET.Element, tag: str, text: object | None = None, **attrib: str) -> ET.Element:
    """A new ``<tag>`` child of ``parent`` with attributes ``attrib`` and, unless None, text ``str(text)``."""
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = str(text)
    return el


def num(x: float, digits: int | None = None) -> str:
    """``x`` as SDF text: ``repr`` of the float64 (rounded to ``digits`` decimals first unless None),
    integers without a trailing ``.0``."""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return repr(x if digits is None else round(x, digits))


def vec(values: Iterable[float], digits: int | None = None) -> str:
    """Space-separated :func:`num` of each value (an SDF vector or pose)."""
    return " ".join(num(v, digits) for v in values)
