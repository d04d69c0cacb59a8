"""The simulator's package shape: one mission config, one port layout, a core that never imports the integrations."""

import ast
from pathlib import Path

import pytest

from vlwm.sim.mavlink.ports import GCS_PORT, endpoint_ports, gcs_port, sitl_ports
from vlwm.sim.mission_spec import PATTERNS, ROVER_PATTERNS, MissionSpec

SIM = Path(__file__).resolve().parents[2] / "vlwm" / "sim"
INTEGRATIONS = ("vlwm.sim.mavlink", "vlwm.sim.gazebo")


def _imports(path: Path) -> set[str]:
    """Every vlwm module ``path`` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("vlwm")}


def test_core_simulator_never_imports_mavlink_or_gazebo():
    core = [p for p in SIM.glob("*.py") if p.name != "cli.py"]
    assert len(core) > 15
    offenders = {p.name: sorted(m for m in _imports(p) if m.startswith(INTEGRATIONS)) for p in core}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_gazebo_uses_only_the_port_layout_of_the_mavlink_package():
    used = set().union(*(_imports(p) for p in (SIM / "gazebo").glob("*.py")))
    assert {m for m in used if m.startswith("vlwm.sim.mavlink")} <= {"vlwm.sim.mavlink.ports",
                                                                      "vlwm.sim.mavlink.ports.GCS_PORT",
                                                                      "vlwm.sim.mavlink.ports.sitl_ports"}


def test_both_backends_share_the_gcs_port_and_differ_in_the_second():
    for i in range(4):
        gcs, own = endpoint_ports(i)
        gcs2, fdm = sitl_ports(i)
        assert gcs == gcs2 == gcs_port(i) == GCS_PORT + 10 * i
        assert own == gcs + 5 and fdm == 9002 + 10 * i
    assert endpoint_ports(2, 20000) == (20020, 20025) and sitl_ports(2, 20000) == (20020, 9022)


@pytest.mark.parametrize("kw, message", [
    (dict(vehicle="boat"), "vehicle must be 'drone' or 'rover'"),
    (dict(pattern="spiral"), "pattern 'spiral' is not one of"),
    (dict(vehicle="rover", pattern="survey"), "a rover cannot fly a 'survey'"),
    (dict(pattern="waypoints"), "needs a QGC WPL file"),
    (dict(speed=0.0), "speed must be a positive number"),
])
def test_mission_spec_refuses_what_cannot_be_flown(kw, message):
    with pytest.raises(ValueError, match=message):
        MissionSpec(**kw)


def test_every_rover_pattern_is_accepted_and_flight_patterns_are_not():
    for pattern in PATTERNS:
        kw = dict(vehicle="rover", pattern=pattern, waypoints_file="m.waypoints")
        if pattern in ROVER_PATTERNS:
            assert MissionSpec(**kw).pattern == pattern
        else:
            with pytest.raises(ValueError):
                MissionSpec(**kw)


def test_client_config_adds_only_what_the_link_needs():
    pytest.importorskip("pymavlink")
    from vlwm.sim.mavlink.client import ClientConfig

    assert ClientConfig().mission == MissionSpec()
    with pytest.raises(ValueError, match="needs the scene's buildings and roads: give --scene"):
        ClientConfig(MissionSpec(vehicle="rover", pattern="route", goal=(50.0, 0.0)))
    with pytest.raises(ValueError, match="starts where the rover is"):
        ClientConfig(MissionSpec(vehicle="rover", pattern="route", start=(0.0, 0.0)), scene="city.npz")
    with pytest.raises(ValueError, match="is not one of"):   # the mission's own checks, once
        ClientConfig(MissionSpec(pattern="spiral"))
