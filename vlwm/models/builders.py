"""Explicit builders of the OccWorld models, from our typed configs or the official ``model`` dicts.

No registry: :func:`build_from_official_config` reads ``type`` and calls one of the two builders.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from vlwm.models.config import VAEConfig, WorldModelConfig, official_vae_config, official_world_model_config
from vlwm.models.official_config import vae_config_from_official, world_model_config_from_official
from vlwm.models.vae import VAERes2D
from vlwm.models.world_model import TransVQVAE


def build_vqvae(cfg: VAEConfig | None = None) -> VAERes2D:
    """The scene tokenizer (official size when ``cfg`` is None)."""
    model = VAERes2D(cfg or official_vae_config())
    if model.cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def build_world_model(cfg: WorldModelConfig | None = None) -> TransVQVAE:
    """The world model (official size when ``cfg`` is None)."""
    model = TransVQVAE(cfg or official_world_model_config())
    if model.cfg.vae.channels_last:
        model.vae.to(memory_format=torch.channels_last)
    return model


def build_from_official_config(model_cfg: Mapping[str, Any], **execution) -> nn.Module:
    """Build the model an official config's ``model`` dict describes (``VAERes2D`` or ``TransVQVAE``).

    Parameters
    ----------
    model_cfg : the ``model`` dict of ``config/train_vqvae.py``, ``config/train_occworld.py`` or
        ``config/occworld.py`` (plain dicts or mmengine ``ConfigDict``s).
    execution : execution options that do not change the state dict: ``attention`` ("sdpa" or
        "reference"), ``use_checkpoint``, ``channels_last``.

    Returns
    -------
    :class:`VAERes2D` or :class:`TransVQVAE`, state-dict compatible with the official model.
    """
    kind = model_cfg.get("type") if isinstance(model_cfg, Mapping) else None
    if kind == "VAERes2D":
        return build_vqvae(vae_config_from_official(model_cfg, **execution))
    if kind == "TransVQVAE":
        return build_world_model(world_model_config_from_official(model_cfg, **execution))
    raise ValueError(f"model type {kind!r} is not an OccWorld model; expected 'VAERes2D' or 'TransVQVAE'")
