"""Gazebo integration (optional; the Gazebo Harmonic + ArduPilot stack at run time): ``sim-server --backend gazebo``.

:mod:`~vlwm.sim.gazebo.vehicle_models` writes one ArduPilot vehicle model per vehicle with our
sensors; :mod:`~vlwm.sim.gazebo.backend` plans, writes and runs a session.  The simulator's core
never imports this package.
"""
