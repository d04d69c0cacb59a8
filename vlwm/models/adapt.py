"""Adapting official (nuScenes, 16-level, car) weights to VLWM data: grid depth and drone poses.

Both functions take a state dict (of a VQ-VAE, or of a world model whose VAE keys carry ``vae.``)
and return a new one plus an :class:`AdaptReport` naming every tensor they changed; every other
tensor is passed through unchanged, so the result loads with ``strict=True`` into a model built for
the new depth / pose size.

**Depth** (SPEC §9).  The height axis enters only the VAE's first and last convolutions, through
the fold ``channel = d · expansion + e``.  :func:`adapt_depth` reshapes their channel axis to
(height, embedding) and resamples along height, treating both grids as covering the same vertical
extent (level d of D spans [d/D, (d+1)/D] of it), with the exact overlap of old and new levels:

* ``encoder.conv_in.weight`` (input side) is *mass-preserving*: each old level's kernel is split
  over the new levels it overlaps in proportion to the overlap, so a column whose classes do not
  change with height gives exactly the pre-activations of the original model;
* ``decoder.conv_out.{weight,bias}`` (output side) are *averaged*: each new level gets the
  overlap-weighted mean of the old levels it covers, so such a column decodes to the same logits
  at every height.

**Drone poses.**  The official pose input is 5-d (dx, dy, 3-way command) and the decoder predicts
(dx, dy) per mode.  :func:`extend_pose_inputs` makes them (dx, dy, dz, dyaw, command) and
(dx, dy, dz, dyaw) per mode: the pretrained columns/rows are moved to their new places and the
dz/dyaw input columns and output rows are zero, so at initialisation the extended model gives
exactly the pretrained outputs (dz, dyaw predicted as 0 and ignored on input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import Tensor

ENCODER_IN = "encoder.conv_in.weight"
DECODER_OUT_W = "decoder.conv_out.weight"
DECODER_OUT_B = "decoder.conv_out.bias"
POSE_ENCODER_IN = "pose_encoder.pose_encoder.0.weight"
POSE_DECODER_PREFIX = "pose_decoder.pose_decoder."


@dataclass
class AdaptReport:
    """Tensors an adaptation changed: (key, old shape, new shape, how)."""

    adapted: list[tuple[str, tuple[int, ...], tuple[int, ...], str]] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [k for k, _, _, _ in self.adapted]

    def __str__(self) -> str:
        lines = [f"{len(self.adapted)} tensors adapted:"]
        lines += [f"  {k}: {tuple(a)} -> {tuple(b)} ({how})" for k, a, b, how in self.adapted]
        return "\n".join(lines)


def level_overlap(old: int, new: int) -> Tensor:
    """Overlap of the levels of two partitions of the same unit interval.

    Returns
    -------
    (new, old) float64: ``O[j, i] = |[j/new, (j+1)/new] ∩ [i/old, (i+1)/old]|``; each row sums to
    1/new, each column to 1/old.
    """
    lo_n = torch.arange(new, dtype=torch.float64)[:, None] / new
    lo_o = torch.arange(old, dtype=torch.float64)[None, :] / old
    hi = torch.minimum(lo_n + 1.0 / new, lo_o + 1.0 / old)
    lo = torch.maximum(lo_n, lo_o)
    return (hi - lo).clamp_min(0.0)


def _vae_prefix(state_dict: Mapping[str, Tensor]) -> str:
    for prefix in ("", "vae."):
        if prefix + ENCODER_IN in state_dict:
            return prefix
    raise KeyError(f"no VAE found: neither '{ENCODER_IN}' nor 'vae.{ENCODER_IN}' is in the state dict")


def adapt_depth(state_dict: Mapping[str, Tensor], depth: int) -> tuple[dict[str, Tensor], AdaptReport]:
    """Initialise a ``depth``-level VAE from weights for another number of height levels.

    Parameters
    ----------
    state_dict : a VQ-VAE state dict, or a world model's (``vae.`` prefix).
    depth : the new number of height levels (e.g. 121).

    Returns
    -------
    The new state dict (other tensors shared, not copied) and the report of the three adapted tensors.
    """
    prefix = _vae_prefix(state_dict)
    expansion = state_dict[prefix + "class_embeds.weight"].shape[1]
    w_in = state_dict[prefix + ENCODER_IN]                        # (ch, D·E, 3, 3)
    old = w_in.shape[1] // expansion
    if old * expansion != w_in.shape[1]:
        raise ValueError(f"{prefix + ENCODER_IN} has {w_in.shape[1]} input channels, not a multiple of the "
                         f"class-embedding width {expansion}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    overlap = level_overlap(old, depth)
    split = overlap * old        # (new, old), columns sum to 1: mass-preserving (input side)
    average = overlap * depth    # (new, old), rows sum to 1: overlap-weighted mean (output side)

    out = dict(state_dict)
    report = AdaptReport()

    def put(key: str, value: Tensor, how: str) -> None:
        report.adapted.append((key, tuple(state_dict[key].shape), tuple(value.shape), how))
        out[key] = value

    o = w_in.shape[0]
    w = w_in.double().reshape(o, old, expansion, *w_in.shape[2:])                 # (ch, D, E, 3, 3)
    w = torch.einsum("ji,oie...->oje...", split, w).reshape(o, depth * expansion, *w_in.shape[2:])
    put(prefix + ENCODER_IN, w.to(w_in.dtype), f"height {old}->{depth}, mass-preserving")
    for key in (DECODER_OUT_W, DECODER_OUT_B):
        t = state_dict[prefix + key]                                              # (D·E, ...) 
        v = t.double().reshape(old, expansion, *t.shape[1:])
        v = torch.einsum("ji,ie...->je...", average, v).reshape(depth * expansion, *t.shape[1:])
        put(prefix + key, v.to(t.dtype), f"height {old}->{depth}, averaged")
    return out, report


def extend_pose_inputs(state_dict: Mapping[str, Tensor], motion_dims: int = 4) -> tuple[dict[str, Tensor], AdaptReport]:
    """Extend a world model's pose heads from (dx, dy) to ``motion_dims`` components per frame.

    Input layout before: (dx, dy, cmd…); after: (dx, dy, <new components>, cmd…), new columns 0.
    Decoder output per mode before: (dx, dy); after: (dx, dy, <new components>), new rows 0.

    Returns
    -------
    The new state dict and the report of the adapted tensors (encoder input weight, decoder
    output weight and bias).
    """
    if POSE_ENCODER_IN not in state_dict:
        raise KeyError(f"'{POSE_ENCODER_IN}' is not in the state dict: not a world model")
    dec_layers = sorted({int(k[len(POSE_DECODER_PREFIX):].split(".")[0]) for k in state_dict
                         if k.startswith(POSE_DECODER_PREFIX)})
    dec_w, dec_b = (f"{POSE_DECODER_PREFIX}{dec_layers[-1]}.{p}" for p in ("weight", "bias"))
    w_enc = state_dict[POSE_ENCODER_IN]                                            # (C, P + M)
    w_dec, b_dec = state_dict[dec_w], state_dict[dec_b]                            # (M·P, C), (M·P,)
    modes = w_enc.shape[1] - 2
    if modes < 1 or w_dec.shape[0] != 2 * modes:
        raise ValueError(f"expected official 2-d pose heads: {POSE_ENCODER_IN} {tuple(w_enc.shape)} and "
                         f"{dec_w} {tuple(w_dec.shape)} do not fit (dx, dy) + {modes} modes")
    if motion_dims < 2:
        raise ValueError(f"motion_dims must be >= 2 (dx, dy first), got {motion_dims}")

    out = dict(state_dict)
    report = AdaptReport()
    enc = w_enc.new_zeros(w_enc.shape[0], motion_dims + modes)
    enc[:, :2] = w_enc[:, :2]
    enc[:, motion_dims:] = w_enc[:, 2:]
    out[POSE_ENCODER_IN] = enc
    report.adapted.append((POSE_ENCODER_IN, tuple(w_enc.shape), tuple(enc.shape),
                           f"input columns (dx, dy, {modes} modes) -> (dx, dy, {motion_dims - 2} zero columns, modes)"))
    for key, t in ((dec_w, w_dec), (dec_b, b_dec)):
        per_mode = t.reshape(modes, 2, *t.shape[1:])
        new = t.new_zeros(modes, motion_dims, *t.shape[1:])
        new[:, :2] = per_mode
        out[key] = new.reshape(modes * motion_dims, *t.shape[1:])
        report.adapted.append((key, tuple(t.shape), tuple(out[key].shape),
                               f"per-mode outputs (dx, dy) -> (dx, dy, {motion_dims - 2} zero rows)"))
    return out, report
