"""Camera image files: RGB JPEG, 16-bit depth PNG (millimetres) and 8-bit semantic PNG.

``images/NNNNNN_<CAM>.jpg``, ``images/NNNNNN_<CAM>_depth.png`` (z-depth along the optical axis,
uint16 millimetres; 0 = no hit or beyond 65.535 m) and ``images/NNNNNN_<CAM>_sem.png`` (occupancy
label ids, 17 = free / sky): the recording's image files (:mod:`vlwm.io.recording`).  Pillow does the
encoding; every writer takes a path or a binary file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vlwm.io.recording import frame_stem

DEPTH_SCALE_MM = 1000.0    #: depth PNG units per metre
DEPTH_MAX_MM = 65535       #: largest storable depth (65.535 m); farther pixels store 0
NO_DEPTH = 0               #: depth value of pixels without a (storable) hit


@dataclass
class CameraImage:
    """What one camera sees at one instant.

    rgb : (H, W, 3) uint8 colour image.
    depth_mm : (H, W) uint16 z-depth along the optical axis, millimetres; 0 = no hit or > 65.535 m.
    semantic : (H, W) uint8 occupancy label id per pixel (17 = free: sky or beyond ``max_range``).
    """

    rgb: np.ndarray
    depth_mm: np.ndarray
    semantic: np.ndarray

def save_rgb_jpeg(path: str | os.PathLike | BinaryIO, rgb: np.ndarray, quality: int = 90) -> None:
    """Write ``rgb`` (H, W, 3) uint8 as a JPEG of ``quality`` (1..95) to a path or binary file."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{path}: rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="JPEG", quality=int(quality))  # mode RGB


def save_depth_png(path: str | os.PathLike | BinaryIO, depth_mm: np.ndarray) -> None:
    """Write ``depth_mm`` (H, W) uint16 millimetres as a 16-bit greyscale PNG to a path or binary file."""
    from PIL import Image

    depth_mm = np.asarray(depth_mm)
    if depth_mm.dtype != np.uint16 or depth_mm.ndim != 2:
        raise ValueError(f"{path}: depth must be (H, W) uint16 millimetres, got {depth_mm.shape} {depth_mm.dtype}")
    Image.fromarray(np.ascontiguousarray(depth_mm)).save(path, format="PNG")  # mode I;16


def save_semantic_png(path: str | os.PathLike | BinaryIO, semantic: np.ndarray) -> None:
    """Write ``semantic`` (H, W) uint8 label ids as an 8-bit greyscale PNG to a path or binary file."""
    from PIL import Image

    semantic = np.asarray(semantic)
    if semantic.dtype != np.uint8 or semantic.ndim != 2:
        raise ValueError(f"{path}: semantic must be (H, W) uint8 label ids, got {semantic.shape} {semantic.dtype}")
    Image.fromarray(np.ascontiguousarray(semantic)).save(path, format="PNG")  # mode L


def load_rgb(path: str | os.PathLike | BinaryIO) -> np.ndarray:
    """(H, W, 3) uint8 image from a JPEG or PNG file."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def load_depth_png(path: str | os.PathLike | BinaryIO) -> np.ndarray:
    """(H, W) uint16 depth in millimetres from a 16-bit PNG written by :func:`save_depth_png`."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("I;16", "I;16B", "I"):
            raise ValueError(f"{path}: expected a 16-bit depth PNG, got mode {im.mode}")
        return np.asarray(im).astype(np.uint16)


def load_semantic_png(path: str | os.PathLike | BinaryIO) -> np.ndarray:
    """(H, W) uint8 label ids from an 8-bit PNG written by :func:`save_semantic_png`."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode != "L":
            raise ValueError(f"{path}: expected an 8-bit label PNG, got mode {im.mode}")
        return np.asarray(im, np.uint8)


def image_paths(images_dir: str | os.PathLike, frame: int, name: str) -> tuple[Path, Path, Path]:
    """``(rgb .jpg, depth .png, semantic .png)`` paths of camera ``name`` at 1-based ``frame``."""
    stem = Path(images_dir) / f"{frame_stem(frame)}_{name}"
    return stem.with_name(stem.name + ".jpg"), stem.with_name(stem.name + "_depth.png"), \
        stem.with_name(stem.name + "_sem.png")


def save_camera_image(images_dir: str | os.PathLike, frame: int, name: str, image: CameraImage,
                      quality: int = 90) -> tuple[Path, Path, Path]:
    """Write one camera's three files into ``images_dir`` (created if missing); returns their paths."""
    paths = image_paths(images_dir, frame, name)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    save_rgb_jpeg(paths[0], image.rgb, quality)
    save_depth_png(paths[1], image.depth_mm)
    save_semantic_png(paths[2], image.semantic)
    return paths


def load_camera_image(images_dir: str | os.PathLike, frame: int, name: str) -> CameraImage:
    """Read back what :func:`save_camera_image` wrote (RGB through JPEG, so not bit-exact)."""
    rgb, depth, sem = image_paths(images_dir, frame, name)
    return CameraImage(load_rgb(rgb), load_depth_png(depth), load_semantic_png(sem))
