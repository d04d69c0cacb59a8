"""VLWM: PLATEAU Tokyo cities to 4D occupancy training data, and OccWorld-style world models.

Stages (each a subpackage; data flows one way): ``world`` (scenes) -> ``sim`` -> ``gt`` ->
``data`` -> ``models``/``train`` -> ``eval`` -> ``viz``.  The label space lives in
:mod:`vlwm.labels`.
"""

__version__ = "0.1.0"
