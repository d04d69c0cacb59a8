"""Frames of labelled panels, written as MP4 (libx264, yuv420p), GIF and PNG files, atomically.

A frame is a grid of panels: ``[[(title, image or None), ...], ...]``; every image is resized
(keeping its aspect) to the row's panel height and a title strip is drawn above it with Pillow.
``None`` cells are blank.  Video sizes are padded to even numbers (yuv420p needs them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from vlwm.io.atomic import atomic_path, atomic_write

PANEL_HEIGHT = 360          #: default image height of a panel, pixels
TITLE_HEIGHT = 22           #: height of the title strip above each panel, pixels
PAD = 4                     #: gap between panels, pixels
CANVAS = (255, 255, 255)
TITLE_BG = (40, 40, 40)
TITLE_FG = (255, 255, 255)

Cell = tuple[str, "np.ndarray | None"]


class VideoFiles(NamedTuple):
    """What :func:`write_video` wrote (None for outputs not asked for)."""

    mp4: Path | None
    gif: Path | None
    png_dir: Path | None
    frames: int
    size: tuple[int, int]       # (width, height)


def _resize(image: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BILINEAR))


def label_panel(image: np.ndarray | None, title: str, height: int = PANEL_HEIGHT,
                width: int | None = None) -> np.ndarray:
    """(TITLE_HEIGHT + height, W, 3) uint8: ``image`` scaled to ``height`` under a title strip.

    ``image`` None gives a blank panel of ``width`` (default ``height``) pixels.
    """
    from PIL import Image, ImageDraw

    if image is None:
        body = np.full((height, width or height, 3), 235, np.uint8)
    else:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"panel {title!r}: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        body = _resize(image, height)
    strip = Image.new("RGB", (body.shape[1], TITLE_HEIGHT), TITLE_BG)
    ImageDraw.Draw(strip).text((4, 4), title, fill=TITLE_FG)
    return np.concatenate([np.asarray(strip), body], axis=0)


def compose(rows: Sequence[Sequence[Cell]], height: int = PANEL_HEIGHT) -> np.ndarray:
    """One (H, W, 3) uint8 frame of labelled panels, rows stacked, panels left to right."""
    strips = []
    for row in rows:
        panels = [label_panel(img, title, height) for title, img in row]
        gap = np.full((TITLE_HEIGHT + height, PAD, 3), CANVAS, np.uint8)
        parts = [p for panel in panels for p in (panel, gap)][:-1]
        strips.append(np.concatenate(parts, axis=1))
    width = max(s.shape[1] for s in strips)
    out = []
    for s in strips:
        out.append(np.pad(s, ((0, PAD), (0, width - s.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=0)[:-PAD]


def pad_frames(frames: Sequence[np.ndarray], multiple: int = 2) -> list[np.ndarray]:
    """Frames padded (white, bottom/right) to one common size whose sides are multiples of ``multiple``."""
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    return [np.pad(f, ((0, h - f.shape[0]), (0, w - f.shape[1]), (0, 0)), constant_values=255) for f in frames]


def write_mp4(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 2.0, quality: int = 8) -> Path:
    """H.264 (libx264, yuv420p) MP4 of ``frames`` (each (H, W, 3) uint8), written atomically."""
    import imageio.v2 as imageio

    path = Path(path)
    frames = pad_frames(frames, 2)
    with atomic_path(path, suffix=f".tmp{path.suffix}") as tmp:    # ffmpeg picks the container by name
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                quality=quality, macro_block_size=1) as w:
            for f in frames:
                w.append_data(f)
    return path


def write_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 2.0, max_width: int = 960) -> Path:
    """Looping GIF of ``frames`` (downscaled to at most ``max_width`` pixels wide), written atomically."""
    from PIL import Image

    path = Path(path)
    frames = pad_frames(frames, 1)
    ims = []
    for f in frames:
        im = Image.fromarray(f)
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.BILINEAR)
        ims.append(im)
    atomic_write(path, lambda fh: ims[0].save(fh, format="GIF", save_all=True, append_images=ims[1:],
                                              duration=round(1000 / fps), loop=0))
    return path


def write_pngs(folder: str | os.PathLike, frames: Sequence[np.ndarray]) -> Path:
    """``folder/000001.png`` … one PNG per frame (each written atomically)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for n, f in enumerate(frames, start=1):
        path = folder / f"{n:06d}.png"
        atomic_write(path, lambda fh, f=f: Image.fromarray(np.ascontiguousarray(f)).save(fh, format="PNG"))
    return folder


def write_video(mp4: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 2.0, gif: bool = True,
                png_dir: str | os.PathLike | None = None) -> VideoFiles:
    """Write ``frames`` as ``mp4`` plus (with ``gif``) the same name with ``.gif`` and PNGs into ``png_dir``."""
    if not len(frames):
        raise ValueError(f"{mp4}: no frames to write")
    mp4 = Path(mp4)
    if mp4.suffix.lower() != ".mp4":
        raise ValueError(f"{mp4}: the video file must end in .mp4")
    mp4.parent.mkdir(parents=True, exist_ok=True)
    padded = pad_frames(frames, 2)
    write_mp4(mp4, padded, fps)
    gif_path = write_gif(mp4.with_suffix(".gif"), padded, fps) if gif else None
    png = write_pngs(png_dir, padded) if png_dir is not None else None
    return VideoFiles(mp4, gif_path, png, len(padded), (padded[0].shape[1], padded[0].shape[0]))
