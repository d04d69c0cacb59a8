"""Stage 2: the OccWorld world model with the VQ-VAE frozen (training guide §4.2).

Official architecture (TransVQVAE: U-Net transformer 128/256/512, 6 temporal and 2 pose attention
layers per level, 2-layer pose encoder/decoder).  Point vqvae_ckpt at your stage-1 checkpoint.
"""

_base_ = ['./tokyo_dataset.py']

model = dict(
    type='OccWorld',
    vqvae_ckpt='out/vqvae/epoch_125.pth',
    transformer=dict(
        num_layers=2,
        temporal_attn_layers=6,
    ),
    pose_encoder=dict(num_layers=2),
    freeze_vae=True,  # Keep VQVAE frozen
)

optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
max_epochs = 200
warmup_iters = 50
grad_clip = dict(max_norm=35)

log_config = dict(interval=10, hooks=[dict(type='TextLoggerHook'), dict(type='TensorboardLoggerHook')])
checkpoint_config = dict(interval=1, max_keep_ckpts=-1)
