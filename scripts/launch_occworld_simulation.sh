#!/usr/bin/env bash
# Launch the OccWorld data-collection simulation (training guide, section 3.2).
#
#   scripts/launch_occworld_simulation.sh --drones 1 --rovers 1 --record --headless --fast \
#       [--world procedural|SCENE.npz|FILE.gml ...] [--duration S] [--out DIR] [--seed N] [--backend builtin|gazebo]
#
# A thin wrapper over `vlwm sim-server` (vlwm/sim/mavlink_server.py): every option is passed on;
# `--help` lists them.  Each vehicle is an ArduPilot-SITL-style MAVLink endpoint: vehicle i (drones
# first) sends to UDP 127.0.0.1:(14550 + 10 i), so in another terminal
#
#   python3 scripts/data_collection_mission.py --vehicle drone --pattern survey --size 100 --spacing 15 --altitude 30
#
# flies vehicle 0.  --backend gazebo (ArduPilot SITL + Gazebo) needs scripts/install_ardupilot_gazebo_stack.sh.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$PYTHON" -m vlwm.cli sim-server "$@"
