"""Tokyo Gazebo Dataset Configuration for OccWorld Fine-tuning (training guide §5.1).

The guide's grid z in [-2, 150] m at 1.25 m is 121.6 levels; the valid grid, the `aerial` preset
the ground-truth stage writes, is z in [-2, 149.25] m: 200 x 200 x 121 voxels.
"""

# Dataset settings
data_root = 'data/tokyo_gazebo/'
agent_type = 'both'  # 'drone', 'rover', or 'both'

# Extended occupancy range for aerial vehicles
point_cloud_range = [-40, -40, -2, 40, 40, 149.25]  # Extended Z for drones (121 levels)
voxel_size = [0.4, 0.4, 1.25]  # Coarser Z voxels for extended range

# Temporal settings
history_frames = 4
future_frames = 6
frame_skip = 1

# Data splits
train_ratio = 0.8
val_ratio = 0.1
test_ratio = 0.1

# Dataloader settings
batch_size = 1  # Increase if GPU memory allows
num_workers = 4
