"""The folder layout of the training guide (§2.1, §3), created under a ``--dest`` folder."""

from __future__ import annotations

import os
from pathlib import Path

GUIDE_DIRS = (
    "pretrained/vqvae",          # epoch_125.pth
    "pretrained/occworld",       # latest.pth
    "data",                      # nuscenes_infos_*_temporal_v3_scene.pkl
    "data/tokyo_gazebo",         # recordings (guide §3.2)
    "data/plateau/tokyo23ku",    # PLATEAU CityGML: udx/{bldg,tran,veg,dem}
    "out",                       # training runs
)
PLATEAU_RELDIR = "data/plateau/tokyo23ku"
"""Where the PLATEAU CityGML is extracted under ``--dest``."""


def prepare_layout(root: str | os.PathLike) -> list[Path]:
    """Create the guide's folders under ``root`` (existing ones are kept); return them."""
    paths = [Path(root) / d for d in GUIDE_DIRS]
    for p in paths:
        p.mkdir(parents=True, exist_ok=True)
    return paths
