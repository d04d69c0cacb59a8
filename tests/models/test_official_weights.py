"""The structural check of the official checkpoints (``vlwm download --models``)."""

import json
from pathlib import Path

import pytest
import torch

from vlwm.io.pretrained import CheckpointStructureError
from vlwm.models.official_weights import official_shapes, verify_checkpoint, verify_official_checkpoint

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "occworld"
SMALL_CKPT = REFERENCE / "ckpt_small_vqvae_epoch_1.pth"


def test_official_shapes_match_the_official_lists():
    if not REFERENCE.is_dir():
        pytest.skip("shared/reference/occworld not found")
    for kind, name in (("vqvae", "vae"), ("world_model", "occworld")):
        listed = json.loads((REFERENCE / f"{name}_state_dict_shapes.json").read_text())["state_dict"]
        assert official_shapes(kind) == {k: tuple(v["shape"]) for k, v in listed.items()}


def test_real_small_training_checkpoint_verifies():
    if not SMALL_CKPT.is_file():
        pytest.skip("small reference checkpoint not found")
    sd = torch.load(SMALL_CKPT, weights_only=True)["state_dict"]
    assert verify_checkpoint(SMALL_CKPT, {k: tuple(v.shape) for k, v in sd.items()}) == 222
    with pytest.raises(CheckpointStructureError, match="other shape"):
        verify_official_checkpoint("vqvae", SMALL_CKPT)                 # small widths, not the release


def test_unloadable_file_and_unknown_kind_fail_clearly(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointStructureError, match="not a loadable checkpoint"):
        verify_official_checkpoint("vqvae", path)
    with pytest.raises(ValueError, match="unknown checkpoint kind 'vae'"):
        official_shapes("vae")
