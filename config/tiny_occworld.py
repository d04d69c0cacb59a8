"""Tiny stage 2 (CPU, seconds): a small world model on the tiny grid, VAE frozen."""

_base_ = ['./tiny_dataset.py']

model = dict(
    type='OccWorld',
    vqvae_ckpt=None,
    vae=dict(encoder=dict(base_channel=8, z_channels=16),
             decoder=dict(base_channel=8, z_channels=16), vq=dict(num_embeddings=32, embedding_dim=16)),
    transformer=dict(temporal_attn_layers=1, pose_attn_layers=1, channels=[16, 32, 64], num_heads=4, num_frames=3,
                     pose_output_channel=16),
    freeze_vae=True,
)
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
