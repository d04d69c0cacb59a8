"""Mixed training: several datasets, drawn with configured weights (the guide's §5.6 tip 2).

::

    data = dict(train=dict(
        type='ConcatDataset',
        datasets=[dict(type='NuScenesDataset', data_root='data/nuscenes/',
                       info_path='data/nuscenes_infos_train_temporal_v3_scene.pkl'),
                  dict(type='GazeboOccWorldDataset', data_root='data/tokyo_gazebo/',
                       config=dict(point_cloud_range=[-40, -40, -1, 40, 40, 5.4], voxel_size=[0.4, 0.4, 0.4]))],
        sample_weights=[0.7, 0.3]))       # 70 % nuScenes, 30 % Tokyo draws

:func:`build_dataset` turns such a dict into datasets (an explicit table of the three types, no
registry); :meth:`ConcatDataset.sampler` gives the weighted sampler — each draw picks dataset ``d``
with probability ``w_d / sum(w)`` and then one of its windows uniformly, so the mix does not depend
on how many windows each dataset holds.  The datasets must produce stackable samples: the same
grid shape and window length, and the same optional fields (masks, images, lidar) — checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset as TorchConcatDataset
from torch.utils.data import Dataset, WeightedRandomSampler

from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset
from vlwm.data.occ3d import Occ3DConfig, Occ3DNuScenesDataset


def _shape_signature(ds: Dataset) -> tuple:
    cfg = ds.config
    return ds.grid.shape, cfg.history_frames, cfg.future_frames


class ConcatDataset(TorchConcatDataset):
    """Datasets one after another (indices as :class:`torch.utils.data.ConcatDataset`), drawn by weight.

    Parameters
    ----------
    datasets : sequence of GazeboOccWorldDataset / Occ3DNuScenesDataset
        Same grid shape, history / future lengths and sample fields.
    sample_weights : sequence of float, optional
        Share of draws per dataset (normalised); None = proportional to dataset sizes.
    """

    def __init__(self, datasets: Sequence[Dataset], sample_weights: Sequence[float] | None = None):
        datasets = list(datasets)
        if not datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        sigs = [_shape_signature(d) for d in datasets]
        if len(set(sigs)) > 1:
            lines = [f"  {type(d).__name__}: grid {s[0]}, history {s[1]}, future {s[2]}" for d, s in zip(datasets, sigs)]
            raise ValueError("ConcatDataset: the datasets' samples cannot be stacked together:\n" + "\n".join(lines) +
                             "\n(Occ3D-nuScenes is 200 x 200 x 16: generate the Gazebo ground truth with the occ3d "
                             "grid to mix them)")
        keys = [d.sample_keys for d in datasets]
        if len(set(keys)) > 1:
            diff = sorted(set.union(*map(set, keys)) - set.intersection(*map(set, keys)))
            raise ValueError(f"ConcatDataset: the datasets return different fields ({diff} only in some): "
                             f"configure masks / images / lidar alike")
        empty = [type(d).__name__ for d in datasets if len(d) == 0]
        if empty:
            raise ValueError(f"ConcatDataset: empty dataset(s) {empty}: nothing to draw from")
        super().__init__(datasets)
        if sample_weights is None:
            sample_weights = [len(d) for d in datasets]
        w = np.asarray(sample_weights, np.float64)
        if w.shape != (len(datasets),) or np.any(w < 0) or not w.sum() > 0 or not np.all(np.isfinite(w)):
            raise ValueError(f"ConcatDataset: sample_weights must be {len(datasets)} non-negative numbers with a "
                             f"positive sum, got {list(sample_weights)}")
        self.sample_weights = w / w.sum()

    @property
    def grid(self):
        return self.datasets[0].grid

    @property
    def config(self):
        return self.datasets[0].config

    @property
    def sample_keys(self) -> frozenset[str]:
        return self.datasets[0].sample_keys

    def per_sample_weights(self) -> torch.Tensor:
        """(len(self),) float64 draw weight of every window: ``w_d / len(d)`` for the windows of dataset d."""
        parts = [torch.full((len(d),), float(w) / len(d), dtype=torch.float64)
                 for d, w in zip(self.datasets, self.sample_weights)]
        return torch.cat(parts)

    def sampler(self, num_samples: int | None = None, generator: torch.Generator | None = None) -> WeightedRandomSampler:
        """A sampler drawing ``num_samples`` windows (default ``len(self)`` per epoch) with replacement, by weight."""
        return WeightedRandomSampler(self.per_sample_weights(), num_samples or len(self), replacement=True,
                                     generator=generator)

    def dataset_index(self, index: int) -> int:
        """Which dataset window ``index`` belongs to."""
        return int(np.searchsorted(self.cumulative_sizes, index, side="right"))


DATASET_TYPES = ("GazeboOccWorldDataset", "NuScenesDataset", "Occ3DNuScenesDataset", "ConcatDataset")


def _take(cfg: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(cfg) - allowed - {"type"})
    missing = sorted(required - set(cfg))
    if unknown or missing:
        raise ValueError(f"{what}: unknown keys {unknown}, missing keys {missing}; allowed: {sorted(allowed)}")
    return {k: v for k, v in cfg.items() if k != "type"}


def build_dataset(cfg: Mapping[str, Any]) -> Dataset:
    """A dataset from a config dict (``type`` one of :data:`DATASET_TYPES`; unknown keys are errors).

    * ``GazeboOccWorldDataset``: ``data_root``, ``config`` (a :class:`DatasetConfig` dict).
    * ``NuScenesDataset`` / ``Occ3DNuScenesDataset``: ``data_root`` (the folder with ``gts/``),
      ``info_path`` (the info pickle), ``config`` (an :class:`Occ3DConfig` dict).
    * ``ConcatDataset``: ``datasets`` (a list of the above), ``sample_weights``.
    """
    kind = cfg.get("type")
    if kind == "GazeboOccWorldDataset":
        kw = _take(cfg, {"data_root", "config"}, {"data_root"}, kind)
        return GazeboOccWorldDataset(Path(kw["data_root"]), DatasetConfig.from_dict(kw.get("config") or {}))
    if kind in ("NuScenesDataset", "Occ3DNuScenesDataset"):
        kw = _take(cfg, {"data_root", "info_path", "config"}, {"data_root", "info_path"}, kind)
        return Occ3DNuScenesDataset(kw["data_root"], kw["info_path"], Occ3DConfig.from_dict(kw.get("config") or {}))
    if kind == "ConcatDataset":
        kw = _take(cfg, {"datasets", "sample_weights"}, {"datasets"}, kind)
        return ConcatDataset([build_dataset(d) for d in kw["datasets"]], kw.get("sample_weights"))
    raise ValueError(f"unknown dataset type {kind!r}; known: {list(DATASET_TYPES)}")
