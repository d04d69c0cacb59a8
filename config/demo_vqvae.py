"""`vlwm demo` stage 1 (CPU, minutes): a small VQ-VAE on the demo's data (config/demo_dataset.py);
pass the recordings with --cfg-options data_root=<folder>.

One downsampling (40 x 40 -> 20 x 20 tokens; a 1.6 m voxel is already coarse) and dead-code
restarts: without them this tokenizer used 9 of its 128 codes and reconstructed the held-out
frames worse than copying the last frame (docs/training.md, "Small tokenizers")."""

_base_ = ['./demo_dataset.py']

max_epochs = 5

model = dict(type='VAERes2D',
             encoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             decoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             vq=dict(num_embeddings=128, embedding_dim=32, restart_dead_codes=10))
