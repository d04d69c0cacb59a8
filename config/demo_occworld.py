"""`vlwm demo` stage 2 (CPU, minutes): the tiny world model on the demo grid, VAE frozen
(--cfg-options data_root=<folder> model.vqvae_ckpt=<stage 1>/latest.pth)."""

_base_ = ['./tiny_occworld.py']

point_cloud_range = [-32.0, -32.0, -2.0, 32.0, 32.0, 38.0]
voxel_size = [1.6, 1.6, 2.0]
agent_type = 'both'
history_frames = 2
future_frames = 2
frame_skip = 1
batch_size = 4
max_epochs = 6
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
