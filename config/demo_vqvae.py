"""`vlwm demo` stage 1 (CPU, minutes): the tiny VQ-VAE on the demo's small aerial grid
(64 m x 64 m x 40 m at 1.6 x 1.6 x 2 m: 40 x 40 x 20), drone and rover together; pass the
recordings with --cfg-options data_root=<folder>."""

_base_ = ['./tiny_vqvae.py']

point_cloud_range = [-32.0, -32.0, -2.0, 32.0, 32.0, 38.0]
voxel_size = [1.6, 1.6, 2.0]
agent_type = 'both'
history_frames = 2
future_frames = 2
frame_skip = 1
batch_size = 4
max_epochs = 4
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
