"""The UDP ports of simulated vehicle ``i``, by ArduPilot SITL's convention; both backends use them.

SITL instance ``i`` (``-I i``) shifts every port by :data:`PORT_STRIDE` ``* i``: it sends MAVLink
to a ground station on :func:`gcs_port` (``14550 + 10 i``) and, in the Gazebo backend, exchanges
physics with its model's plugin on ``9002 + 10 i``.  The two backends need different second ports,
so each has its own pair, both built on :func:`gcs_port`:

* :func:`endpoint_ports` — built-in backend (:mod:`vlwm.sim.mavlink.endpoint`): (GCS port, port the
  vehicle's own socket binds);
* :func:`sitl_ports` — Gazebo backend (:mod:`vlwm.sim.gazebo.backend`): (GCS port, SITL's FDM port).

Imports nothing, so the Gazebo backend uses it without pymavlink.
"""

from __future__ import annotations

GCS_PORT = 14550             #: SITL's default GCS port: vehicle i sends to GCS_PORT + PORT_STRIDE * i
PORT_STRIDE = 10             #: SITL instance i shifts every port by 10 i
VEHICLE_PORT_OFFSET = 5      #: the built-in vehicle's own socket binds its GCS port + this (for udpout: clients)
FDM_PORT_BASE = 9002         #: ArduPilot SITL's JSON physics port; instance i uses + 10 i (PORT_STRIDE)


def gcs_port(index: int, base: int = GCS_PORT) -> int:
    """UDP port vehicle ``index`` sends MAVLink to (a ground station listens there): ``base + 10 index``."""
    return base + PORT_STRIDE * index


def endpoint_ports(index: int, base: int = GCS_PORT) -> tuple[int, int]:
    """Built-in backend: (GCS port the vehicle sends to, port its own socket binds) of vehicle ``index``."""
    gcs = gcs_port(index, base)
    return gcs, gcs + VEHICLE_PORT_OFFSET


def sitl_ports(index: int, base: int = GCS_PORT) -> tuple[int, int]:
    """Gazebo backend: (GCS port SITL instance ``index`` sends to, its FDM port to the model's plugin)."""
    return gcs_port(index, base), FDM_PORT_BASE + PORT_STRIDE * index
