"""Stage 4, the dataset: recordings and their occupancy ground truth as training samples.

* :mod:`vlwm.data.config` — :class:`DatasetConfig` (the guide's fields, unknown keys are errors).
* :mod:`vlwm.data.dataset` — :class:`GazeboOccWorldDataset` and :func:`collate_fn`.
* :mod:`vlwm.data.layout`, :mod:`vlwm.data.validation` — reading and checking recording folders.
* :mod:`vlwm.data.splits` — train / val / test by sequence.
* :mod:`vlwm.data.trajectory` — ego motion and the 3-way driving command.
* :mod:`vlwm.data.augment` — RandomFlip, RandomRotate, PointCloudNoise.
* :mod:`vlwm.data.occ3d` — Occ3D-nuScenes in OccWorld's layout (``gts/`` + info pickle).
* :mod:`vlwm.data.mixing` — weighted ConcatDataset and the config builder.
* :mod:`vlwm.data.occworld_export` — our layout to OccWorld's own format.
* :mod:`vlwm.data.check` and :mod:`vlwm.data.cli` — ``vlwm data check`` / ``vlwm data export-occworld``.

``dataset/gazebo_occworld_dataset.py`` (the guide's import path) re-exports the public names.
"""
