#!/usr/bin/env bash
# Launch the OccWorld data-collection simulation (training guide, section 3.2).
#
#   scripts/launch_occworld_simulation.sh --drones 1 --rovers 1 --record --headless --fast \
#       [--world procedural|SCENE.npz|FILE.gml ...] [--duration S] [--out DIR] [--seed N] \
#       [--backend builtin|gazebo] [--dry-run] [--ardupilot-dir DIR]
#
# A thin wrapper over `vlwm sim-server` (vlwm/sim/cli.py, vlwm/sim/mavlink/server.py): every option is passed on;
# `--help` lists them.  Each vehicle is an ArduPilot-SITL-style MAVLink endpoint: vehicle i (drones
# first) sends to UDP 127.0.0.1:(14550 + 10 i), so in another terminal
#
#   python3 scripts/data_collection_mission.py --vehicle drone --pattern survey --size 100 --spacing 15 --altitude 30
#
# flies vehicle 0.  The built-in backend (default) needs nothing else.  --backend gazebo runs
# Gazebo Harmonic + one ArduPilot SITL per vehicle (vlwm/sim/gazebo/backend.py, docs/gazebo.md) on
# the same ports; install that stack with scripts/install_ardupilot_gazebo_stack.sh.  Its
# environment (~/.occworld_env.sh, or $OCCWORLD_ENV_FILE) is sourced here when `gz` is not on PATH
# yet; --dry-run prints the launch plan without writing or starting anything.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"

backend=builtin
prev=""
for arg in "$@"; do
    case "$arg" in
        --backend=*) backend="${arg#--backend=}" ;;
        *) [[ "$prev" == "--backend" ]] && backend="$arg" ;;
    esac
    prev="$arg"
done
ENV_FILE="${OCCWORLD_ENV_FILE:-${HOME:-}/.occworld_env.sh}"
if [[ "$backend" == "gazebo" ]] && ! command -v gz >/dev/null 2>&1 && [[ -f "$ENV_FILE" ]]; then
    echo "$(basename "$0"): gz is not on PATH: sourcing $ENV_FILE" >&2
    set +u                      # ROS setup scripts read unset variables
    # shellcheck source=/dev/null
    source "$ENV_FILE"
    set -u
fi
exec "$PYTHON" -m vlwm.cli sim-server "$@"
