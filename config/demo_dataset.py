"""The data of `vlwm demo`, shared by its two stages (config/demo_vqvae.py, config/demo_occworld.py):
the small aerial grid (64 m x 64 m x 40 m at 1.6 x 1.6 x 2 m: 40 x 40 x 20) that `vlwm demo`
writes its ground truth on, drone and rover together, 2 history + 2 future frames at 2 Hz; pass
the recordings with --cfg-options data_root=<folder>."""

_base_ = ['./tiny_dataset.py']

point_cloud_range = [-32.0, -32.0, -2.0, 32.0, 32.0, 38.0]
voxel_size = [1.6, 1.6, 2.0]
agent_type = 'both'
history_frames = 2
future_frames = 2
frame_skip = 1
batch_size = 4
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
