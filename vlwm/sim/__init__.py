"""The simulator: vehicles fly or drive missions in a scene among traffic, and their sensors are recorded.

The core data path, in reading order: :mod:`~vlwm.sim.mission_types` and :mod:`~vlwm.sim.missions`
(what to do), :mod:`~vlwm.sim.planning` (whether it can be done safely), :mod:`~vlwm.sim.vehicles`
(drone and rover physics), :mod:`~vlwm.sim.traffic` (the other actors), :mod:`~vlwm.sim.camera` and
:mod:`~vlwm.sim.lidar` (sensors), :mod:`~vlwm.sim.simulator` (the lock-step recording loop) and
:mod:`~vlwm.sim.jobs` (``vlwm simulate``'s parallel jobs, from a :mod:`~vlwm.sim.mission_spec`).

The optional integrations live in their own subpackages and are never imported by the core:
:mod:`vlwm.sim.mavlink` (``vlwm sim-server``, the ground-station script) and :mod:`vlwm.sim.gazebo`
(``sim-server --backend gazebo``).  :mod:`vlwm.sim.cli` parses the command lines of all of them.
"""
