"""vlwm-tokyo-v1 `small`, stage 2 (CPU): the OccWorld architecture, small, on the training split
(config/benchmark_small_dataset.py), VAE frozen (--cfg-options model.vqvae_ckpt=<stage 1>/latest.pth).
The `vae` section must match config/benchmark_small_vqvae.py.  `vlwm benchmark eval --checkpoint`
uses this config by default.  The transformer holds 6 frames: the rollout of 6 future frames from
4 history frames needs at least T_h + T_f - 1 - (T_h - 1) = 6."""

_base_ = ['./benchmark_small_dataset.py']

max_epochs = 3

model = dict(
    type='OccWorld',
    vqvae_ckpt=None,
    vae=dict(encoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             decoder=dict(base_channel=16, z_channels=32, ch_mult=(1, 2)),
             vq=dict(num_embeddings=128, embedding_dim=32)),
    transformer=dict(temporal_attn_layers=2, pose_attn_layers=1, channels=[32, 64, 128], num_heads=4, num_frames=6,
                     pose_output_channel=16),
    freeze_vae=True,
)
transform = {'RandomFlip': {'prob': 0.5}}
