"""Stage 1: the VQ-VAE scene tokenizer (training guide §4.1).

The guide's highlights call it 'TransVQVAE' with a 64-d codebook; the released tokenizer is
VAERes2D with 512 codes of 128 dimensions, which is what this file builds (so the official
weights load).  Set vq=dict(embedding_dim=64) to build the guide's 64-d codebook instead.
"""

_base_ = ['./tokyo_dataset.py']

model = dict(
    type='VAERes2D',
    encoder=dict(base_channel=64),
    decoder=dict(base_channel=64),
    vq=dict(num_embeddings=512, embedding_dim=128),
)

optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-6, warmup='linear', warmup_iters=200)
grad_clip = dict(max_norm=35)
max_epochs = 200
batch_size = 1

log_config = dict(interval=10, hooks=[dict(type='TextLoggerHook'), dict(type='TensorboardLoggerHook')])
checkpoint_config = dict(interval=1, max_keep_ckpts=-1)  # every epoch, as officially
