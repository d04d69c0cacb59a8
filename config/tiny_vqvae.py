"""Tiny stage 1 (CPU, seconds): the VQ-VAE with 8 base channels and 32 codes of 16 dimensions."""

_base_ = ['./tiny_dataset.py']

model = dict(type='VAERes2D', encoder=dict(base_channel=8, z_channels=16),
             decoder=dict(base_channel=8, z_channels=16), vq=dict(num_embeddings=32, embedding_dim=16))
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
