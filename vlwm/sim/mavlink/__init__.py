"""MAVLink integration (optional, needs pymavlink): the simulator's vehicles as ArduPilot-SITL-style endpoints.

:mod:`~vlwm.sim.mavlink.ports` (the UDP port layout, shared with the Gazebo backend),
:mod:`~vlwm.sim.mavlink.items` (mission items), :mod:`~vlwm.sim.mavlink.endpoint` (one vehicle),
:mod:`~vlwm.sim.mavlink.server` (``vlwm sim-server``) and :mod:`~vlwm.sim.mavlink.client` (the
ground-station script).  The simulator's core (vehicles, missions, traffic, sensors, recorder)
never imports this package.
"""
