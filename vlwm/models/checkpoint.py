"""Loading official OccWorld checkpoints, strictly, with a report of anything that does not fit.

Official checkpoints (``pretrained/vqvae/epoch_125.pth``, ``pretrained/occworld/latest.pth``) are
the dict ``train.py`` saves (SPEC §6): ``state_dict`` (the raw model's, no ``module.`` prefix),
``optimizer``, ``scheduler``, ``epoch``, ``global_iter``.  Files from users are read with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary objects.

Loading is strict by default: every key of the model must be in the checkpoint with the same
shape, and nothing else may be there.  A mismatch raises :class:`CheckpointMismatchError` whose
message lists missing, unexpected and shape-mismatched keys and says what to do (adapt the depth,
extend the pose input, load a VQ-VAE checkpoint into ``model.vae``, the token-grid constraint).
``strict=False`` loads what fits and *returns* the report; nothing is skipped silently.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

MODULE_PREFIX = "module."
"""Prefix of state dicts saved from a DistributedDataParallel wrapper."""


@dataclass
class LoadReport:
    """What matched between a model and a state dict."""

    source: str
    """Where the state dict came from (file path or a description)."""
    loaded: list[str] = field(default_factory=list)
    """Keys copied into the model."""
    missing: list[str] = field(default_factory=list)
    """Model keys absent from the checkpoint."""
    unexpected: list[str] = field(default_factory=list)
    """Checkpoint keys the model does not have."""
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    """(key, checkpoint shape, model shape) of keys present in both with different shapes."""
    notes: list[str] = field(default_factory=list)
    """Transformations applied while reading (e.g. a stripped ``module.`` prefix)."""

    @property
    def ok(self) -> bool:
        """True when the state dict fits the model key for key and shape for shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    def hints(self) -> list[str]:
        """What to do about the mismatches, as far as they have a known cause."""
        hints = []
        keys = [k for k, _, _ in self.mismatched]
        if any(k.endswith(("encoder.conv_in.weight", "decoder.conv_out.weight", "decoder.conv_out.bias"))
               for k in keys):
            hints.append("the VAE's first/last convolutions differ in size: the checkpoint has another number "
                         "of height levels (D x expansion channels).  Initialise with "
                         "vlwm.models.adapt.adapt_depth(state_dict, depth=...) first.")
        if any(k.startswith(("pose_encoder.", "pose_decoder.")) for k in keys):
            hints.append("the pose heads differ in size: the checkpoint has 5-d pose inputs (dx, dy, 3 commands).  "
                         "For drone poses use vlwm.models.adapt.extend_pose_inputs(state_dict, motion_dims=4).")
        if any(k.startswith("transformer.") and ".ln." in k for k in keys):
            hints.append("transformer LayerNorm shapes differ: they contain the token grid (50x50 tokens for "
                         "200x200 occupancy grids).  A checkpoint for one token grid cannot load into a "
                         "transformer built for another; match img_shape to the checkpoint.")
        vae_parts = ("encoder.", "decoder.", "class_embeds.", "vqvae.")
        world_parts = ("vae.", "transformer.", "pose_encoder.", "pose_decoder.")
        if any(k.startswith("vae.") for k in self.missing) and self.unexpected \
                and all(k.startswith(vae_parts) for k in self.unexpected):
            hints.append("this is a VQ-VAE checkpoint and the model is a world model: load it into model.vae "
                         "(the official stage-2 load_from with revise_ckpt=3).")
        if any(k.startswith(vae_parts) for k in self.missing) and self.unexpected \
                and all(k.startswith(world_parts) for k in self.unexpected):
            hints.append("this is a world-model checkpoint and the model is a VQ-VAE: take its VAE part with "
                         "vlwm.models.checkpoint.sub_state_dict(state_dict, 'vae.').")
        return hints

    def __str__(self) -> str:
        lines = [f"state dict from {self.source}: {len(self.loaded)} keys loaded, {len(self.missing)} missing, "
                 f"{len(self.unexpected)} unexpected, {len(self.mismatched)} with other shapes"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += _listing("missing from the checkpoint", self.missing)
        lines += _listing("not in the model", self.unexpected)
        lines += _listing("shape mismatch (checkpoint vs model)",
                          [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in self.mismatched])
        lines += [f"  hint: {h}" for h in self.hints()]
        return "\n".join(lines)


class CheckpointMismatchError(RuntimeError):
    """A strict load found missing, unexpected or shape-mismatched keys; ``.report`` has them."""

    def __init__(self, report: LoadReport):
        super().__init__(str(report))
        self.report = report


def _listing(title: str, items: list[str], limit: int = 20) -> list[str]:
    if not items:
        return []
    shown = [f"    {k}" for k in items[:limit]]
    if len(items) > limit:
        shown.append(f"    ... and {len(items) - limit} more")
    return [f"  {title} ({len(items)}):", *shown]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_checkpoint(path: str | PathLike) -> dict:
    """The whole checkpoint dict, loaded safely (``weights_only=True``) onto the CPU.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` when the file holds Python
    objects that safe loading refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects that safe loading (weights_only=True) refuses: {err}.  Re-save "
                         "only tensors, e.g. torch.save({'state_dict': model.state_dict()}, path), from a "
                         "process that trusts the file.") from err
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} holds a {type(ckpt).__name__}, expected a dict "
                         "(a train.py checkpoint or a state dict)")
    return ckpt


def official_state_dict(ckpt: Mapping, notes: list[str] | None = None) -> dict[str, Tensor]:
    """The model weights of a checkpoint dict: its ``state_dict`` entry, or the dict itself when it
    is a bare state dict (official ``load_from`` logic); a ``module.`` prefix on every key is removed."""
    sd = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"not a state dict: entries {bad[:5]} are not tensors (top-level keys: {list(ckpt)[:8]})")
    if sd and all(k.startswith(MODULE_PREFIX) for k in sd):
        sd = {k[len(MODULE_PREFIX):]: v for k, v in sd.items()}
        if notes is not None:
            notes.append(f"stripped the '{MODULE_PREFIX}' prefix (DistributedDataParallel checkpoint)")
    return dict(sd)


def sub_state_dict(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Entries under ``prefix`` with the prefix removed (``'vae.'``: a world model's tokenizer)."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def compare_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "<state dict>") -> LoadReport:
    """Match a state dict against a model's (persistent) state, without loading anything."""
    own = model.state_dict()
    report = LoadReport(source=source)
    for key, value in own.items():
        if key not in state_dict:
            report.missing.append(key)
        elif tuple(state_dict[key].shape) != tuple(value.shape):
            report.mismatched.append((key, tuple(state_dict[key].shape), tuple(value.shape)))
        else:
            report.loaded.append(key)
    report.unexpected = [k for k in state_dict if k not in own]
    return report


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, Tensor], strict: bool = True,
                            source: str = "<state dict>", notes: list[str] | None = None) -> LoadReport:
    """Load ``state_dict`` into ``model`` and return the report.

    ``strict=True``: raise :class:`CheckpointMismatchError` (nothing loaded) unless the fit is exact.
    ``strict=False``: load the keys that fit, warn with the report, and return it for the caller
    to check.
    """
    report = compare_state_dict(model, state_dict, source)
    report.notes.extend(notes or [])
    if strict and not report.ok:
        raise CheckpointMismatchError(report)
    if report.ok:
        model.load_state_dict(state_dict, strict=True)
        return report
    fitting = {k: state_dict[k] for k in report.loaded}
    result = model.load_state_dict(fitting, strict=False)
    skipped = set(report.missing) | {k for k, _, _ in report.mismatched}
    if result.unexpected_keys or set(result.missing_keys) != skipped:   # torch's view must agree with ours
        raise RuntimeError(f"partial load of {source} did not load what the report says: {result}")
    warnings.warn(f"partial load (strict=False):\n{report}", stacklevel=2)
    return report


def load_official_checkpoint(model: nn.Module, path: str | PathLike, strict: bool = True) -> LoadReport:
    """Load an official OccWorld checkpoint file (or a bare state-dict file) into ``model``.

    For a VQ-VAE checkpoint into a world model pass ``model.vae`` (official stage-2 ``load_from``).
    """
    notes: list[str] = []
    sd = official_state_dict(read_checkpoint(path), notes)
    return load_state_dict_checked(model, sd, strict=strict, source=str(path), notes=notes)
