"""OccWorld Fine-tuning Configuration for Tokyo Gazebo Dataset (training guide §5.2).

load_from takes the released OccWorld checkpoint; its 16-level VAE layers are adapted to the
121-level grid automatically (adapt_depth), everything else loads strictly.
"""

_base_ = ['./train_occworld.py']

# ============ Dataset Override ============
data_root = 'data/tokyo_gazebo/'

# Use the custom Gazebo dataset loader
dataset_type = 'GazeboOccWorldDataset'

# Extended point cloud range for drone altitude (z to 149.25 m: 121 levels of 1.25 m)
point_cloud_range = [-40, -40, -2, 40, 40, 149.25]
voxel_size = [0.4, 0.4, 1.25]

# Override data config
data = dict(
    train=dict(
        type=dataset_type,
        data_root=data_root,
        config=dict(
            history_frames=4,
            future_frames=6,
            agent_type='both',
            split='train',
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
        ),
    ),
    val=dict(
        type=dataset_type,
        data_root=data_root,
        config=dict(
            history_frames=4,
            future_frames=6,
            agent_type='both',
            split='val',
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
        ),
    ),
)

# ============ Model Override ============
# Load pretrained OccWorld weights
load_from = 'pretrained/occworld/latest.pth'

# Optionally unfreeze more layers for fine-tuning
model = dict(
    freeze_vae=True,           # Keep VQVAE frozen
    freeze_transformer=False,  # Fine-tune transformer
    freeze_pose=False,         # Fine-tune pose modules
)

# ============ Training Override ============
# Lower learning rate for fine-tuning
optimizer = dict(
    type='AdamW',
    lr=1e-4,           # Reduced from 1e-3
    weight_decay=0.01,
)

# Fewer epochs for fine-tuning
max_epochs = 50

# Learning rate schedule
lr_config = dict(
    policy='CosineAnnealing',
    min_lr=1e-6,
    warmup='linear',
    warmup_iters=100,
    warmup_ratio=0.1,
)

# Gradient clipping (important for stability)
grad_clip = dict(max_norm=35)

# Logging
log_config = dict(
    interval=10,
    hooks=[
        dict(type='TextLoggerHook'),
        dict(type='TensorboardLoggerHook'),
    ],
)

# Checkpointing
checkpoint_config = dict(
    interval=5,
    max_keep_ckpts=3,
)
