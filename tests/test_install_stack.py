"""scripts/install_ardupilot_gazebo_stack.sh, run with --dry-run against fake /etc/os-release files.

Nothing can be installed here, so the script is checked by what it says it would do (and that
it writes nothing): the OSRF repository and gz-harmonic, the pinned ArduPilot clone and SITL
build, the ardupilot_gazebo build, ros_gz only when ROS 2 is there, and the environment file,
which is also sourced to check the variables it sets.  Unsupported systems are refused.
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install_ardupilot_gazebo_stack.sh"

OS_RELEASES = {
    "jammy": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
             'ID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n',
    "noble": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n'
             'ID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n',
    "focal": 'PRETTY_NAME="Ubuntu 20.04.6 LTS"\nNAME="Ubuntu"\nVERSION_ID="20.04"\nVERSION_CODENAME=focal\n'
             'ID=ubuntu\nID_LIKE=debian\n',
    "bookworm": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                'VERSION_CODENAME=bookworm\nID=debian\n',
}


def install(tmp_path, system: str, *args, ros: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the script with --dry-run on ``system``, ``ros`` distros faked under a ROS root, all paths in tmp."""
    os_release = tmp_path / f"os-release-{system}"
    os_release.write_text(OS_RELEASES[system])
    ros_root = tmp_path / "opt_ros"
    for distro in ros:
        (ros_root / distro).mkdir(parents=True, exist_ok=True)
        (ros_root / distro / "setup.bash").write_text(f"export FAKE_ROS_DISTRO={distro}\n")
    env = {**os.environ, "OCCWORLD_OS_RELEASE": str(os_release), "OCCWORLD_ROS_ROOT": str(ros_root),
           "HOME": str(tmp_path / "home")}
    env.pop("OCCWORLD_ENV_FILE", None)
    return subprocess.run(["bash", str(SCRIPT), "--dry-run", "--prefix", str(tmp_path / "stack"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def env_file_text(stdout: str) -> str:
    """The environment file a dry run prints (its '    | ' lines)."""
    return "\n".join(line[6:] for line in stdout.splitlines() if line.startswith("    | ")) + "\n"


def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_help(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    for option in ("--dry-run", "--prefix", "--no-ros", "--env-file"):
        assert option in run.stdout
    bad = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option '--frobnicate'" in bad.stderr


@pytest.mark.parametrize("system", ["jammy", "noble"])
def test_dry_run_on_supported_ubuntu_lists_every_step(tmp_path, system):
    run = install(tmp_path, system)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert f"({system}): supported" in out
    # Gazebo Harmonic from the OSRF repository
    assert "curl -fsSL https://packages.osrfoundation.org/gazebo.gpg -o " \
           "/usr/share/keyrings/pkgs-osrf-archive-keyring.gpg" in out
    assert f"https://packages.osrfoundation.org/gazebo/ubuntu-stable {system} main" in out
    assert "/etc/apt/sources.list.d/gazebo-stable.list" in out
    assert "apt-get install -y gz-harmonic" in out
    # ArduPilot SITL at the pinned release
    stack = tmp_path / "stack"
    assert (f"git clone --recurse-submodules --branch Copter-4.6.3 https://github.com/ArduPilot/ardupilot.git "
            f"{stack}/ardupilot") in out
    assert "Tools/environment_install/install-prereqs-ubuntu.sh -y" in out
    assert "./waf configure --board sitl && ./waf copter rover" in out
    # ardupilot_gazebo for Harmonic, and the rover model
    assert "libgz-sim8-dev" in out and "rapidjson-dev" in out
    assert f"https://github.com/ArduPilot/ardupilot_gazebo.git {stack}/ardupilot_gazebo" in out
    assert "export GZ_VERSION=harmonic && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo" in out
    assert "sparse-checkout set Gazebo/models/wildthumper" in out
    # no ROS 2 here: no bridge, and the environment file says so
    assert "ros-gz" not in out and "skipped: no ROS 2" in out
    assert "Dry run finished: nothing was installed or written." in out
    assert not stack.exists() and not (tmp_path / "home").exists()


def test_environment_file_sets_the_paths(tmp_path):
    run = install(tmp_path, "jammy", "--env-file", str(tmp_path / "env.sh"))
    assert run.returncode == 0, run.stderr
    text = env_file_text(run.stdout)
    stack = tmp_path / "stack"
    script = tmp_path / "printed_env.sh"
    script.write_text(text)
    # Sourced twice (a user re-sourcing it): every variable set, no entry duplicated.
    probe = subprocess.run(
        ["bash", "-c", f'set -u; GZ_SIM_RESOURCE_PATH=/user/models; source "{script}"; source "{script}"; '
                       'printf "%s\\n" "$GZ_SIM_SYSTEM_PLUGIN_PATH" "$GZ_SIM_RESOURCE_PATH" "$PATH" '
                       '"$OCCWORLD_ARDUPILOT_DIR" "$GZ_VERSION"'],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert probe.returncode == 0, probe.stderr
    plugin_path, resource_path, path, ardupilot, gz_version = probe.stdout.splitlines()
    assert plugin_path == f"{stack}/ardupilot_gazebo/build"
    assert resource_path.split(":") == [f"{stack}/ardupilot_gazebo/models", f"{stack}/ardupilot_gazebo/worlds",
                                        f"{stack}/SITL_Models/Gazebo/models", "/user/models"]
    assert path.split(":")[0] == f"{stack}/ardupilot/Tools/autotest" and path.count("Tools/autotest") == 1
    assert ardupilot == f"{stack}/ardupilot" and gz_version == "harmonic"
    assert not (tmp_path / "env.sh").exists()


@pytest.mark.parametrize("system, distro, package", [("noble", "jazzy", "ros-jazzy-ros-gz"),
                                                     ("jammy", "humble", "ros-humble-ros-gzharmonic")])
def test_ros_bridge_only_with_ros(tmp_path, system, distro, package):
    run = install(tmp_path, system, ros=(distro,))
    assert run.returncode == 0, run.stderr
    assert f"apt-get install -y {package}" in run.stdout
    text = env_file_text(run.stdout)
    assert f'. "{tmp_path}/opt_ros/{distro}/setup.bash"' in text
    no_ros = install(tmp_path, system, "--no-ros", ros=(distro,))
    assert no_ros.returncode == 0 and "ros-gz" not in no_ros.stdout and "skipped (--no-ros)" in no_ros.stdout
    assert "setup.bash" not in env_file_text(no_ros.stdout)


def test_finished_steps_are_skipped(tmp_path):
    stack = tmp_path / "stack"
    for path in ("ardupilot/build/sitl/bin/arducopter", "ardupilot/build/sitl/bin/ardurover"):
        (stack / path).parent.mkdir(parents=True, exist_ok=True)
        (stack / path).write_text("#!/bin/sh\n")
        (stack / path).chmod(0o755)
    (stack / ".occworld_stamps").mkdir()
    (stack / ".occworld_stamps" / "ardupilot-prereqs-Copter-4.6.3").write_text("")
    (stack / "ardupilot_gazebo" / ".git").mkdir(parents=True)
    (stack / "ardupilot_gazebo" / "build").mkdir()
    (stack / "ardupilot_gazebo" / "build" / "libArduPilotPlugin.so").write_bytes(b"")
    (stack / "SITL_Models" / "Gazebo" / "models" / "wildthumper").mkdir(parents=True)
    (stack / "SITL_Models" / "Gazebo" / "models" / "wildthumper" / "model.sdf").write_text("<sdf/>")
    first = install(tmp_path, "noble", "--env-file", str(tmp_path / "env.sh"))
    (tmp_path / "env.sh").write_text(env_file_text(first.stdout))      # as a real run would have written it
    run = install(tmp_path, "noble", "--env-file", str(tmp_path / "env.sh"))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    sections = {s.split("\n", 1)[0]: s for s in out.split("==> ")[1:]}
    for title, done in (("ArduPilot build prerequisites", "prerequisites installed for Copter-4.6.3"),
                        ("ArduPilot SITL build", "build/sitl/bin/{arducopter,ardurover} built"),
                        ("ardupilot_gazebo plugin", "libArduPilotPlugin.so)"),
                        ("Rover model", "Gazebo/models/wildthumper"),
                        ("Environment file", "is up to date")):
        section = next(text for head, text in sections.items() if head.startswith(title))
        assert "already done: " in section and done in section, section
        assert "    + " not in section, section                       # no command left to run
    assert "cmake -S" not in out and "would write" not in out


@pytest.mark.parametrize("system, named", [("bookworm", "Debian GNU/Linux 12 (bookworm)"),
                                           ("focal", "Ubuntu 20.04.6 LTS")])
def test_unsupported_systems_are_refused(tmp_path, system, named):
    run = install(tmp_path, system)
    assert run.returncode == 1
    assert f"unsupported system: {named}" in run.stderr
    assert "Ubuntu 22.04 (jammy) and Ubuntu 24.04 (noble)" in run.stderr
    assert "--backend builtin" in run.stderr
    assert "gz-harmonic" not in run.stdout and not (tmp_path / "stack").exists()


def test_missing_os_release_is_unsupported(tmp_path):
    env = {**os.environ, "OCCWORLD_OS_RELEASE": str(tmp_path / "nope"), "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1 and f"no readable {tmp_path / 'nope'}" in run.stderr


def test_shellcheck_is_not_required():
    """The scripts are checked with `bash -n` above; shellcheck is optional and used only if installed."""
    import shutil

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (optional)")
    for script in ("install_ardupilot_gazebo_stack.sh", "launch_occworld_simulation.sh"):
        run = subprocess.run(["shellcheck", "-S", "error", str(REPO / "scripts" / script)], capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stdout
