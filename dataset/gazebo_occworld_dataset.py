"""Tokyo Gazebo data loader, at the path the training guide imports it from.

A thin module: the implementation lives in :mod:`vlwm.data` (one file per concept).  The guide's
debugging snippet, run from the repository root::

    from dataset.gazebo_occworld_dataset import GazeboOccWorldDataset, DatasetConfig
    config = DatasetConfig(history_frames=4, future_frames=6)
    ds = GazeboOccWorldDataset('data/tokyo_gazebo/', config)
    print(f'Dataset size: {len(ds)}')
    sample = ds[0]
    print(f'History occupancy shape: {sample["history_occupancy"].shape}')

See ``docs/dataset.md`` for the sample format, splits, validation, augmentation and mixing.
"""

from vlwm.data.augment import PointCloudNoise, RandomFlip, RandomRotate
from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.data.mixing import ConcatDataset, build_dataset
from vlwm.data.occ3d import Occ3DConfig, Occ3DNuScenesDataset
from vlwm.data.occworld_export import export_occworld

__all__ = ["ConcatDataset", "DatasetConfig", "GazeboOccWorldDataset", "Occ3DConfig", "Occ3DNuScenesDataset",
           "PointCloudNoise", "RandomFlip", "RandomRotate", "build_dataset", "collate_fn", "export_occworld"]
