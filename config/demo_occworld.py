"""`vlwm demo` stage 2 (CPU, minutes): a small world model on the demo grid, VAE frozen
(--cfg-options data_root=<folder> model.vqvae_ckpt=<stage 1>/latest.pth).  The `vae` section
must match config/demo_vqvae.py.

Two temporal attention layers and random flips: with one layer and no augmentation the held-out
code loss rose after epoch 5 (overfitting two short recordings) and the forecast stayed below
copy-last."""

_base_ = ['./demo_dataset.py']

max_epochs = 10

model = dict(
    type='OccWorld',
    vqvae_ckpt=None,
    vae=dict(encoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             decoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             vq=dict(num_embeddings=128, embedding_dim=32)),
    transformer=dict(temporal_attn_layers=2, pose_attn_layers=1, channels=[32, 64, 128], num_heads=4, num_frames=3,
                     pose_output_channel=16),
    freeze_vae=True,
)
transform = {'RandomFlip': {'prob': 0.5}}
