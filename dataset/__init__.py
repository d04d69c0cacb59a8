"""The guide's dataset package (``from dataset.gazebo_occworld_dataset import ...``); thin, see :mod:`vlwm.data`."""
