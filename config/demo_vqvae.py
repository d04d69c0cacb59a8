"""`vlwm demo` stage 1 (CPU, minutes): a small VQ-VAE on the demo's small aerial grid
(64 m x 64 m x 40 m at 1.6 x 1.6 x 2 m: 40 x 40 x 20), drone and rover together; pass the
recordings with --cfg-options data_root=<folder>.

One downsampling (40 x 40 -> 20 x 20 tokens; a 1.6 m voxel is already coarse) and dead-code
restarts: without them this tokenizer used 9 of its 128 codes and reconstructed the held-out
frames worse than copying the last frame (docs/training.md, "Small tokenizers")."""

_base_ = ['./tiny_vqvae.py']

point_cloud_range = [-32.0, -32.0, -2.0, 32.0, 32.0, 38.0]
voxel_size = [1.6, 1.6, 2.0]
agent_type = 'both'
history_frames = 2
future_frames = 2
frame_skip = 1
batch_size = 4
max_epochs = 5

model = dict(type='VAERes2D',
             encoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             decoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             vq=dict(num_embeddings=128, embedding_dim=32, restart_dead_codes=10))
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
