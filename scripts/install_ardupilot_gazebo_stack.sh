#!/usr/bin/env bash
# Install the simulation stack behind `launch_occworld_simulation.sh --backend gazebo`
# (training guide, section 3.2; docs/gazebo.md) on Ubuntu 22.04 (jammy) or 24.04 (noble):
#
#   1. Gazebo Harmonic (gz-harmonic) from the OSRF apt repository (packages.osrfoundation.org)
#   2. ArduPilot SITL: a clone of ArduPilot at a pinned Copter release with its submodules,
#      Tools/environment_install/install-prereqs-ubuntu.sh -y, ./waf configure --board sitl && ./waf copter rover
#   3. ardupilot_gazebo (ArduPilot's Gazebo plugin, iris models), built against Harmonic, and the
#      wildthumper rover model from ArduPilot/SITL_Models
#   4. the ROS 2 <-> Gazebo bridge (ros_gz), only when ROS 2 humble or jazzy is installed (for --record)
#   5. ~/.occworld_env.sh: GZ_SIM_SYSTEM_PLUGIN_PATH, GZ_SIM_RESOURCE_PATH, PATH to sim_vehicle.py, ROS
#
# Every step first checks whether it is done and says so; running the script again only does
# what is missing.  Run it as a regular user with sudo rights (ArduPilot's own installer refuses
# root).  See --help for the options; --dry-run prints every command without running any.
set -euo pipefail

ARDUPILOT_REF_DEFAULT="Copter-4.6.3"           # ArduPilot stable Copter release tag
ARDUPILOT_URL="https://github.com/ArduPilot/ardupilot.git"
ARDUPILOT_GAZEBO_URL="https://github.com/ArduPilot/ardupilot_gazebo.git"
ARDUPILOT_GAZEBO_REF_DEFAULT="main"
SITL_MODELS_URL="https://github.com/ArduPilot/SITL_Models.git"
ROVER_MODEL_DIR="Gazebo/models/wildthumper"    # the only part of SITL_Models we need
OSRF_KEY_URL="https://packages.osrfoundation.org/gazebo.gpg"
OSRF_KEYRING="/usr/share/keyrings/pkgs-osrf-archive-keyring.gpg"
OSRF_REPO="https://packages.osrfoundation.org/gazebo/ubuntu-stable"
OSRF_LIST="/etc/apt/sources.list.d/gazebo-stable.list"
GZ_VERSION_NAME="harmonic"
BASE_PACKAGES=(curl lsb-release gnupg git ca-certificates)
PLUGIN_PACKAGES=(build-essential cmake libgz-sim8-dev rapidjson-dev libopencv-dev libgstreamer1.0-dev
                 libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-gl)
SUPPORTED="Ubuntu 22.04 (jammy) and Ubuntu 24.04 (noble)"

PROG="$(basename "$0")"
DRY_RUN=0
WITH_ROS=1
PREFIX="${HOME:-}/occworld_stack"
ENV_FILE="${OCCWORLD_ENV_FILE:-${HOME:-}/.occworld_env.sh}"
OS_RELEASE="${OCCWORLD_OS_RELEASE:-/etc/os-release}"
ROS_ROOT="${OCCWORLD_ROS_ROOT:-/opt/ros}"
ARDUPILOT_REF="$ARDUPILOT_REF_DEFAULT"
ARDUPILOT_GAZEBO_REF="$ARDUPILOT_GAZEBO_REF_DEFAULT"
JOBS="$(nproc 2>/dev/null || echo 2)"

usage() {
    cat <<EOF
Usage: $PROG [--dry-run] [--prefix DIR] [--no-ros] [--env-file FILE] [--ardupilot-ref TAG] [--jobs N]

Installs Gazebo Harmonic, ArduPilot SITL ($ARDUPILOT_REF_DEFAULT), ardupilot_gazebo and, when ROS 2
(humble or jazzy) is under $ROS_ROOT, ros_gz; then writes the environment file.  Supported: $SUPPORTED.

Options:
  --dry-run            print every step and command (and the environment file) without running anything
  --prefix DIR         where ArduPilot, ardupilot_gazebo and SITL_Models are cloned and built
                       (default: ~/occworld_stack)
  --no-ros             skip the ROS 2 bridge even if ROS 2 is installed (no --record then)
  --env-file FILE      environment file to write (default: ~/.occworld_env.sh, or \$OCCWORLD_ENV_FILE)
  --ardupilot-ref TAG  ArduPilot tag or branch to check out (default: $ARDUPILOT_REF_DEFAULT)
  --ardupilot-gazebo-ref REF  ardupilot_gazebo branch or tag (default: $ARDUPILOT_GAZEBO_REF_DEFAULT)
  --jobs N             parallel build jobs (default: number of CPUs)
  -h, --help           this help

Environment: OCCWORLD_OS_RELEASE (default /etc/os-release) and OCCWORLD_ROS_ROOT (default /opt/ros)
override where the system and ROS 2 are looked up.
Afterwards:  source ~/.occworld_env.sh
             scripts/launch_occworld_simulation.sh --backend gazebo --drones 1 --rovers 1 --headless
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --no-ros) WITH_ROS=0 ;;
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; PREFIX="$2"; shift ;;
        --prefix=*) PREFIX="${1#*=}" ;;
        --env-file) [[ $# -ge 2 ]] || die "--env-file needs a file"; ENV_FILE="$2"; shift ;;
        --env-file=*) ENV_FILE="${1#*=}" ;;
        --ardupilot-ref) [[ $# -ge 2 ]] || die "--ardupilot-ref needs a tag"; ARDUPILOT_REF="$2"; shift ;;
        --ardupilot-ref=*) ARDUPILOT_REF="${1#*=}" ;;
        --ardupilot-gazebo-ref) [[ $# -ge 2 ]] || die "--ardupilot-gazebo-ref needs a ref"; ARDUPILOT_GAZEBO_REF="$2"; shift ;;
        --ardupilot-gazebo-ref=*) ARDUPILOT_GAZEBO_REF="${1#*=}" ;;
        --jobs) [[ $# -ge 2 ]] || die "--jobs needs a number"; JOBS="$2"; shift ;;
        --jobs=*) JOBS="${1#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$PROG: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n "$PREFIX" ]] || die "no --prefix and no \$HOME to default to"
[[ -n "$ENV_FILE" ]] || die "no --env-file and no \$HOME to default to"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$JOBS'"
[[ "$PREFIX" == /* ]] || PREFIX="$PWD/$PREFIX"      # absolute: it goes into the environment file
PREFIX="${PREFIX%/}"
ARDUPILOT_DIR="$PREFIX/ardupilot"
ARDUPILOT_GAZEBO_DIR="$PREFIX/ardupilot_gazebo"
SITL_MODELS_DIR="$PREFIX/SITL_Models"

# ------------------------------------------------------------------------------ helpers

SUDO=()
if [[ $EUID -ne 0 ]]; then SUDO=(sudo); fi

step() { echo; echo "==> $*"; }
done_already() { echo "    already done: $*"; }
installed_already() { echo "    already installed: $*"; }

run() {     # run a command (with --dry-run: only print it)
    local shown
    shown="$(printf '%q ' "$@")"
    echo "    + ${shown% }"
    [[ $DRY_RUN -eq 1 ]] || "$@"
}

run_shell() {   # the same for a shell pipeline given as one string
    echo "    + $1"
    [[ $DRY_RUN -eq 1 ]] || bash -c "$1"
}

sudo_run() { run "${SUDO[@]}" "$@"; }

package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing_packages() {    # prints the packages of "$@" that are not installed
    local p
    for p in "$@"; do package_installed "$p" || printf '%s ' "$p"; done
}

apt_install() {     # apt_install WHAT PACKAGE...: install what is missing
    local what="$1"; shift
    local missing
    missing="$(missing_packages "$@")"
    if [[ -z "$missing" ]]; then
        installed_already "$what ($*)"
        return
    fi
    # shellcheck disable=SC2086
    sudo_run apt-get install -y $missing
}

os_release_value() {    # KEY: the value in $OS_RELEASE, quotes removed (the file is read, not sourced)
    local line
    [[ -r "$OS_RELEASE" ]] || return 0
    line="$(grep -E "^$1=" "$OS_RELEASE" | head -n 1 || true)"
    line="${line#*=}"
    line="${line%\"}"; line="${line#\"}"
    line="${line%\'}"; line="${line#\'}"
    printf '%s' "$line"
}

# ------------------------------------------------------------------------------ 0. the system

step "Checking the system ($OS_RELEASE)"
OS_ID="$(os_release_value ID)"
CODENAME="$(os_release_value VERSION_CODENAME)"
[[ -n "$CODENAME" ]] || CODENAME="$(os_release_value UBUNTU_CODENAME)"
PRETTY="$(os_release_value PRETTY_NAME)"
if [[ ! -r "$OS_RELEASE" ]]; then
    PRETTY="unknown (no readable $OS_RELEASE)"
fi
if [[ "$OS_ID" != "ubuntu" || ( "$CODENAME" != "jammy" && "$CODENAME" != "noble" ) ]]; then
    echo "$PROG: unsupported system: ${PRETTY:-unknown} (ID=${OS_ID:-?}, VERSION_CODENAME=${CODENAME:-?})." >&2
    echo "$PROG: this installer supports $SUPPORTED, the systems Gazebo Harmonic is packaged for." >&2
    echo "$PROG: on other systems install Gazebo Harmonic, ArduPilot SITL and ardupilot_gazebo by hand" \
         "(docs/gazebo.md), or use the built-in simulator: launch_occworld_simulation.sh --backend builtin." >&2
    exit 1
fi
echo "    $PRETTY ($CODENAME): supported"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
if [[ "$ARCH" != "amd64" ]]; then
    echo "    note: Gazebo Harmonic is supported on amd64; $ARCH is best-effort"
fi
if [[ $EUID -eq 0 ]]; then
    if [[ $DRY_RUN -eq 1 ]]; then
        echo "    note: running as root: a real run stops here, ArduPilot's install-prereqs-ubuntu.sh refuses root"
    else
        die "do not run this as root: ArduPilot's install-prereqs-ubuntu.sh refuses root; run it as a regular user with sudo rights"
    fi
elif [[ $DRY_RUN -eq 0 ]] && ! command -v sudo >/dev/null 2>&1; then
    die "sudo is needed to install packages (install it, or ask an administrator)"
fi
[[ $DRY_RUN -eq 1 ]] && echo "    dry run: nothing below is executed or written"

ROS_DISTRO_FOUND=""
if [[ $WITH_ROS -eq 1 ]]; then
    preferred=(humble jazzy)
    [[ "$CODENAME" == "noble" ]] && preferred=(jazzy humble)
    for distro in "${preferred[@]}"; do
        if [[ -f "$ROS_ROOT/$distro/setup.bash" ]]; then ROS_DISTRO_FOUND="$distro"; break; fi
    done
fi

# ------------------------------------------------------------------------------ 1. Gazebo Harmonic

step "Base tools (${BASE_PACKAGES[*]})"
if [[ -n "$(missing_packages "${BASE_PACKAGES[@]}")" ]]; then
    sudo_run apt-get update
fi
apt_install "base tools" "${BASE_PACKAGES[@]}"

step "OSRF apt repository for Gazebo ($OSRF_REPO $CODENAME)"
if [[ -s "$OSRF_KEYRING" ]]; then
    done_already "keyring $OSRF_KEYRING"
else
    sudo_run curl -fsSL "$OSRF_KEY_URL" -o "$OSRF_KEYRING"
fi
REPO_LINE="deb [arch=$ARCH signed-by=$OSRF_KEYRING] $OSRF_REPO $CODENAME main"
if [[ -f "$OSRF_LIST" ]] && grep -qF "$OSRF_REPO $CODENAME main" "$OSRF_LIST"; then
    done_already "$OSRF_LIST"
else
    run_shell "echo '$REPO_LINE' | ${SUDO[*]:+${SUDO[*]} }tee $OSRF_LIST > /dev/null"
fi

step "Gazebo Harmonic (gz-harmonic)"
if package_installed gz-harmonic; then
    installed_already "gz-harmonic"
else
    sudo_run apt-get update
    sudo_run apt-get install -y gz-harmonic
fi

step "Build dependencies of ardupilot_gazebo (Harmonic: libgz-sim8-dev, rapidjson-dev, OpenCV, GStreamer)"
apt_install "plugin build dependencies" "${PLUGIN_PACKAGES[@]}"

# ------------------------------------------------------------------------------ 2. ArduPilot SITL

step "ArduPilot $ARDUPILOT_REF with submodules ($ARDUPILOT_DIR)"
if [[ -d "$ARDUPILOT_DIR/.git" ]]; then
    current="$(git -C "$ARDUPILOT_DIR" describe --tags --exact-match 2>/dev/null \
               || git -C "$ARDUPILOT_DIR" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
    if [[ "$current" == "$ARDUPILOT_REF" ]]; then
        done_already "cloned at $ARDUPILOT_REF"
    else
        echo "    note: $ARDUPILOT_DIR exists at '$current', not $ARDUPILOT_REF: left as it is" \
             "(check out $ARDUPILOT_REF there, or remove the folder, and run again)"
    fi
else
    run mkdir -p "$PREFIX"
    run git clone --recurse-submodules --branch "$ARDUPILOT_REF" "$ARDUPILOT_URL" "$ARDUPILOT_DIR"
fi

step "ArduPilot build prerequisites (Tools/environment_install/install-prereqs-ubuntu.sh -y)"
STAMP_DIR="$PREFIX/.occworld_stamps"
PREREQ_STAMP="$STAMP_DIR/ardupilot-prereqs-$ARDUPILOT_REF"
if [[ -f "$PREREQ_STAMP" ]]; then
    done_already "prerequisites installed for $ARDUPILOT_REF ($PREREQ_STAMP)"
else
    run_shell "cd '$ARDUPILOT_DIR' && Tools/environment_install/install-prereqs-ubuntu.sh -y"
    run mkdir -p "$STAMP_DIR"
    run touch "$PREREQ_STAMP"
fi

step "ArduPilot SITL build (./waf configure --board sitl && ./waf copter rover)"
if [[ -x "$ARDUPILOT_DIR/build/sitl/bin/arducopter" && -x "$ARDUPILOT_DIR/build/sitl/bin/ardurover" ]]; then
    done_already "$ARDUPILOT_DIR/build/sitl/bin/{arducopter,ardurover} built"
else
    # On Ubuntu 24.04 the prerequisites live in ~/venv-ardupilot, which waf's Python needs.
    run_shell "cd '$ARDUPILOT_DIR' && { [ ! -f \"\$HOME/venv-ardupilot/bin/activate\" ] || . \"\$HOME/venv-ardupilot/bin/activate\"; } && ./waf configure --board sitl && ./waf copter rover -j $JOBS"
fi

# ------------------------------------------------------------------------------ 3. ardupilot_gazebo

step "ardupilot_gazebo plugin ($ARDUPILOT_GAZEBO_DIR, GZ_VERSION=$GZ_VERSION_NAME)"
if [[ -d "$ARDUPILOT_GAZEBO_DIR/.git" ]]; then
    done_already "cloned"
else
    run mkdir -p "$PREFIX"
    run git clone --branch "$ARDUPILOT_GAZEBO_REF" "$ARDUPILOT_GAZEBO_URL" "$ARDUPILOT_GAZEBO_DIR"
fi
if [[ -f "$ARDUPILOT_GAZEBO_DIR/build/libArduPilotPlugin.so" ]]; then
    done_already "built ($ARDUPILOT_GAZEBO_DIR/build/libArduPilotPlugin.so)"
else
    run_shell "cd '$ARDUPILOT_GAZEBO_DIR' && export GZ_VERSION=$GZ_VERSION_NAME && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j $JOBS"
fi

step "Rover model: $ROVER_MODEL_DIR from ArduPilot/SITL_Models ($SITL_MODELS_DIR)"
if [[ -f "$SITL_MODELS_DIR/$ROVER_MODEL_DIR/model.sdf" ]]; then
    done_already "$SITL_MODELS_DIR/$ROVER_MODEL_DIR"
else
    if [[ ! -d "$SITL_MODELS_DIR/.git" ]]; then
        run git clone --depth 1 --filter=blob:none --sparse "$SITL_MODELS_URL" "$SITL_MODELS_DIR"
    fi
    run git -C "$SITL_MODELS_DIR" sparse-checkout set "$ROVER_MODEL_DIR"
fi

# ------------------------------------------------------------------------------ 4. ROS 2 bridge

step "ROS 2 <-> Gazebo bridge (ros_gz)"
if [[ $WITH_ROS -eq 0 ]]; then
    echo "    skipped (--no-ros): the gazebo backend runs, but --record (ROS 2 bag) needs ros_gz"
elif [[ -z "$ROS_DISTRO_FOUND" ]]; then
    echo "    skipped: no ROS 2 humble or jazzy under $ROS_ROOT.  --record needs ROS 2 and ros_gz; install ROS 2" \
         "(jazzy on 24.04, humble on 22.04) and run this again."
else
    # Jazzy pairs with Harmonic in ROS's own repository; Humble's default ros-humble-ros-gz pairs with
    # Gazebo Fortress, its Harmonic build is ros-humble-ros-gzharmonic from the OSRF repository.
    if [[ "$ROS_DISTRO_FOUND" == "humble" ]]; then ROS_GZ_PACKAGE="ros-humble-ros-gzharmonic"
    else ROS_GZ_PACKAGE="ros-$ROS_DISTRO_FOUND-ros-gz"; fi
    echo "    ROS 2 $ROS_DISTRO_FOUND found ($ROS_ROOT/$ROS_DISTRO_FOUND)"
    apt_install "$ROS_GZ_PACKAGE" "$ROS_GZ_PACKAGE"
fi

# ------------------------------------------------------------------------------ 5. environment file

env_file_content() {
    cat <<EOF
# VLWM simulation stack (Gazebo Harmonic + ArduPilot SITL + ardupilot_gazebo), written by
# scripts/install_ardupilot_gazebo_stack.sh.  Source it (bash) in every shell that runs
# scripts/launch_occworld_simulation.sh --backend gazebo:   source $ENV_FILE
_occworld_prepend() {   # _occworld_prepend VAR DIR: put DIR first on the path list VAR, once
    case ":\${!1:-}:" in *":\$2:"*) ;; *) export "\$1=\$2\${!1:+:\${!1}}" ;; esac
}
export OCCWORLD_STACK_PREFIX="$PREFIX"
export OCCWORLD_ARDUPILOT_DIR="$ARDUPILOT_DIR"
export GZ_VERSION=$GZ_VERSION_NAME
_occworld_prepend GZ_SIM_SYSTEM_PLUGIN_PATH "$ARDUPILOT_GAZEBO_DIR/build"
_occworld_prepend GZ_SIM_RESOURCE_PATH "$SITL_MODELS_DIR/Gazebo/models"
_occworld_prepend GZ_SIM_RESOURCE_PATH "$ARDUPILOT_GAZEBO_DIR/worlds"
_occworld_prepend GZ_SIM_RESOURCE_PATH "$ARDUPILOT_GAZEBO_DIR/models"
# sim_vehicle.py (ArduPilot's Tools/autotest); on Ubuntu 24.04 its Python packages are in
# ~/venv-ardupilot (source ~/venv-ardupilot/bin/activate before using sim_vehicle.py by hand).
_occworld_prepend PATH "$ARDUPILOT_DIR/Tools/autotest"
unset -f _occworld_prepend
EOF
    if [[ -n "$ROS_DISTRO_FOUND" ]]; then
        cat <<EOF
# ROS 2 $ROS_DISTRO_FOUND: ros_gz_bridge and ros2 bag for --record
if [ -f "$ROS_ROOT/$ROS_DISTRO_FOUND/setup.bash" ]; then
    . "$ROS_ROOT/$ROS_DISTRO_FOUND/setup.bash"
fi
EOF
    else
        echo "# No ROS 2 at install time: --record is unavailable until ROS 2 and ros_gz are installed."
    fi
}

step "Environment file $ENV_FILE"
CONTENT="$(env_file_content)"
if [[ -f "$ENV_FILE" ]] && [[ "$(cat "$ENV_FILE")" == "$CONTENT" ]]; then
    done_already "$ENV_FILE is up to date"
elif [[ $DRY_RUN -eq 1 ]]; then
    echo "    would write $ENV_FILE:"
    printf '%s\n' "$CONTENT" | sed 's/^/    | /'
else
    mkdir -p "$(dirname "$ENV_FILE")"
    printf '%s\n' "$CONTENT" > "$ENV_FILE"
    echo "    wrote $ENV_FILE"
fi

echo
if [[ $DRY_RUN -eq 1 ]]; then
    echo "Dry run finished: nothing was installed or written."
else
    echo "Done.  Next:"
fi
echo "  source $ENV_FILE"
echo "  scripts/launch_occworld_simulation.sh --backend gazebo --drones 1 --rovers 1 --headless --dry-run"
