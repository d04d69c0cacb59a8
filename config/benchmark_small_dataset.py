"""The data of the vlwm-tokyo-v1 `small` preset (docs/benchmark.md), shared by its two training
stages (config/benchmark_small_vqvae.py, config/benchmark_small_occworld.py): the preset's grid
(32 m x 32 m x 32 m at 0.5 x 0.5 x 1.0 m: 64 x 64 x 32), drones and rovers together, 4 history + 6
future frames at 2 Hz.  The splits are folders (held out by district), so each dataset takes every
sequence of its folder (its ratio is 1).  Point them at your build with
--cfg-options data.train.data_root=<DIR>/splits/train data.val.data_root=<DIR>/splits/val."""

_base_ = ['./tiny_dataset.py']

point_cloud_range = [-16.0, -16.0, -2.0, 16.0, 16.0, 30.0]     # = vlwm.benchmark.presets.SMALL (tested)
voxel_size = [0.5, 0.5, 1.0]
agent_type = 'both'
history_frames = 4
future_frames = 6
frame_skip = 4
batch_size = 4
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
log_config = dict(interval=20, hooks=[dict(type='TextLoggerHook')])

data = dict(
    train=dict(type='GazeboOccWorldDataset', data_root='data/vlwm-tokyo-v1-small/splits/train/',
               config=dict(split='train', train_ratio=1.0, val_ratio=0.0, test_ratio=0.0, split_fallback='error')),
    val=dict(type='GazeboOccWorldDataset', data_root='data/vlwm-tokyo-v1-small/splits/val/',
             config=dict(split='val', train_ratio=0.0, val_ratio=1.0, test_ratio=0.0, split_fallback='error',
                         frame_skip=8)),
)
