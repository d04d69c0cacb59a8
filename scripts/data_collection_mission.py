#!/usr/bin/env python3
"""Fly a data-collection mission over MAVLink (training guide, section 3.2).

    python3 scripts/data_collection_mission.py --vehicle drone --pattern survey --size 100 --spacing 15 \
        --altitude 30 [--connect udp:127.0.0.1:14550]

Works against `scripts/launch_occworld_simulation.sh` (vehicle i sends to UDP 14550 + 10 i) and
against ArduPilot SITL alike.  A thin wrapper over :mod:`vlwm.sim.mavlink.client` (the options
are parsed by :func:`vlwm.sim.cli.mission_main`; `--help` lists them); run by a Python without the
project's packages, it re-runs itself with the repository's ``.venv`` (scripts/_bootstrap.py).
"""

import sys

from _bootstrap import ensure_environment

ensure_environment(__file__, ("numpy", "pymavlink"))

from vlwm.sim.cli import mission_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(mission_main())
