"""Visualisation: voxel renders, BEV maps, videos of recordings and of forecast windows.

* :mod:`vlwm.viz.voxel_render` — offscreen 3D render of a label grid (Embree ray casting).
* :mod:`vlwm.viz.bev` — bird's-eye maps of grids and lidar, trajectory overlays.
* :mod:`vlwm.viz.video` — panel composition, MP4 / GIF / PNG writers.
* :mod:`vlwm.viz.forecast` — one evaluation window: history, ground truth and prediction.
* :mod:`vlwm.viz.data_video` — a recorded sequence as a video (``vlwm visualize-data``).
"""
