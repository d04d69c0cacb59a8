"""Is a file the official OccWorld checkpoint?  The structural check behind ``vlwm download --models``.

A checkpoint is trusted only if it loads with ``torch.load(weights_only=True)``
(:func:`vlwm.models.checkpoint.read_checkpoint`) and its state dict has exactly the official keys
and shapes.  Those are read off our builders on the ``meta`` device (no memory, no computation;
``tests/models`` check the builders against the official shape lists), so the architecture is
described once.  The download pipeline (:mod:`vlwm.io.pretrained`) stays generic: it calls
:func:`verify_official_checkpoint` as the check it is given, before recording a file's sha256.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

import torch
from torch import nn

from vlwm.io.pretrained import CheckpointStructureError
from vlwm.models.builders import build_vqvae, build_world_model
from vlwm.models.checkpoint import official_state_dict, read_checkpoint

OFFICIAL_BUILDERS: dict[str, Callable[[], nn.Module]] = {"vqvae": build_vqvae, "world_model": build_world_model}
"""Checkpoint kinds of the official release (:data:`vlwm.io.pretrained.OFFICIAL_CHECKPOINTS`) and the
builders of their models at the released sizes."""

MAX_LISTED_KEYS = 10        #: keys listed per kind of mismatch in an error message


def official_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official state dict of ``kind`` (``"vqvae"`` or ``"world_model"``)."""
    if kind not in OFFICIAL_BUILDERS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {sorted(OFFICIAL_BUILDERS)}")
    with torch.device("meta"):
        model = OFFICIAL_BUILDERS[kind]()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def verify_checkpoint(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]]) -> int:
    """Check that ``path`` loads safely and has exactly the keys and shapes of ``expected``.

    Returns the number of tensors; raises :class:`~vlwm.io.pretrained.CheckpointStructureError`
    listing missing, unexpected and mis-shaped keys (at most :data:`MAX_LISTED_KEYS` of each).
    """
    try:
        sd = official_state_dict(read_checkpoint(path))
    except (ValueError, RuntimeError, EOFError, KeyError) as err:
        raise CheckpointStructureError(f"{path} is not a loadable checkpoint (weights_only=True): {err}") from None
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k}: {tuple(sd[k].shape)} instead of {tuple(s)}" for k, s in expected.items()
                  if k in sd and tuple(sd[k].shape) != tuple(s)]
    if missing or unexpected or mismatched:
        lines = [f"{path} does not have the official structure ({len(sd)} tensors, {len(expected)} expected):"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("other shape", mismatched)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:MAX_LISTED_KEYS])
                             + (" ..." if len(items) > MAX_LISTED_KEYS else ""))
        raise CheckpointStructureError("\n".join(lines))
    return len(sd)


def verify_official_checkpoint(kind: str, path: str | os.PathLike) -> int:
    """:func:`verify_checkpoint` against the official structure of ``kind``; the check that
    :func:`vlwm.io.pretrained.download_models` is given by ``vlwm download``."""
    return verify_checkpoint(path, official_shapes(kind))
