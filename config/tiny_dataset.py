"""A tiny grid (20 x 20 x 8 at 0.4 m) for CPU tests and smoke runs; pass the data with
--cfg-options data_root=<folder of recordings>."""

data_root = 'data/tiny/'
agent_type = 'both'
point_cloud_range = [-4.0, -4.0, -1.0, 4.0, 4.0, 2.2]
voxel_size = [0.4, 0.4, 0.4]
history_frames = 2
future_frames = 2
frame_skip = 3
train_ratio = 0.6
val_ratio = 0.2
test_ratio = 0.2
batch_size = 1
num_workers = 0
device = 'cpu'
seed = 0

max_epochs = 2
lr_config = dict(policy='CosineAnnealing', min_lr=1e-5, warmup='linear', warmup_iters=2, warmup_ratio=0.1)
grad_clip = dict(max_norm=35)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook'), dict(type='TensorboardLoggerHook')])
checkpoint_config = dict(interval=1, max_keep_ckpts=1)
evaluation = dict(interval=1)
