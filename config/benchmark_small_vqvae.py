"""vlwm-tokyo-v1 `small`, stage 1 (CPU): a small VQ-VAE on the training split's frames
(config/benchmark_small_dataset.py): one downsampling (64 x 64 -> 32 x 32 tokens), dead-code
restarts as in config/demo_vqvae.py."""

_base_ = ['./benchmark_small_dataset.py']

max_epochs = 3

model = dict(type='VAERes2D',
             encoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             decoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             vq=dict(num_embeddings=128, embedding_dim=32, restart_dead_codes=10))
