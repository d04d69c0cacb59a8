"""Parity of the scene tokenizer with the official ``VAERes2D`` (small-variant fixture, SPEC §11).

The fixture holds the official model's config, its seed-0 weights, an input, eval outputs
(encoder latents, code indices, full logits, predictions, VQ loss) and a training step (MultiLoss
values and full gradients).
"""

import pytest
import torch

from vlwm.models import build_from_official_config, vae_loss
from vlwm.models.vae import occupancy_predictions

TOL = 1e-4


def _model(fx, **execution):
    model = build_from_official_config(fx["config"], **execution)
    model.load_state_dict(fx["state_dict"], strict=True)
    return model


def test_seed0_build_reproduces_official_weights(vae_fixture):
    """Same module tree, parameter order and initialisation order as the official code."""
    torch.manual_seed(0)
    model = build_from_official_config(vae_fixture["config"])
    ours, ref = model.state_dict(), vae_fixture["state_dict"]
    assert list(ours) == list(ref)
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
def test_eval_outputs_match(vae_fixture, cmp, attention):
    fx, out_ref = vae_fixture, vae_fixture["outputs"]
    model = _model(fx, attention=attention).eval()
    x = fx["inputs"]["x"].long()
    with torch.no_grad():
        z, sizes = model.encode(x)
        quantized = model.vqvae.quantize(model.vqvae.quant_conv(z))
        requantized = model.vqvae.quantize(model.vqvae.quant_conv(out_ref["z_encoder"]))
        out = model(x)
    assert [tuple(s) for s in sizes] == [tuple(s) for s in out_ref["encoder_shapes"]]
    assert cmp.max_abs(z, out_ref["z_encoder"]) <= TOL
    assert torch.equal(requantized.indices, out_ref["code_indices"])
    assert torch.equal(quantized.indices, out_ref["code_indices"])
    assert torch.equal(out.code_indices.flatten(0, 1), out_ref["code_indices"])
    assert out.logits.shape == tuple(out_ref["logits_stats"]["shape"])
    assert cmp.max_abs(out.logits, out_ref["logits"]) <= TOL
    cmp.argmax(out.logits, out_ref["logits"], TOL)
    sem_pred, iou_pred = occupancy_predictions(out.logits)
    ties = out_ref["logits"].topk(2, -1).values.diff(dim=-1).abs().squeeze(-1) <= 2 * TOL
    assert torch.equal(sem_pred[~ties].to(torch.uint8), out_ref["sem_pred"][~ties])
    assert abs(int(iou_pred.sum()) - out_ref["iou_pred_occupied_count"]) <= int(ties.sum())
    assert out.embed_loss.item() == pytest.approx(out_ref["eval_embed_loss"].item(), rel=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
def test_training_losses_and_gradients_match(vae_fixture, cmp, attention):
    fx = vae_fixture
    model = _model(fx, attention=attention).train()
    x = fx["inputs"]["x"].long()
    losses = vae_loss(model(x), x)
    ref = fx["losses"]["unweighted_per_loss"]
    assert losses.total.item() == pytest.approx(fx["losses"]["total"], rel=1e-5)
    assert losses.recon.item() == pytest.approx(ref["ReconLoss"], rel=1e-5)
    assert losses.lovasz.item() == pytest.approx(ref["LovaszLoss"], rel=1e-5)
    assert losses.embed.item() == pytest.approx(ref["VQVAEEmbedLoss"], rel=1e-5)
    losses.total.backward()
    grads = fx["grads"]
    assert {k for k, p in model.named_parameters() if p.grad is not None} == set(grads)
    for key, param in model.named_parameters():
        g = grads[key]
        scale = g.abs().max().item()
        if scale < 1e-6:
            # The key biases of the attention blocks: softmax is invariant to them, so their
            # exact gradient is 0 and both sides hold rounding noise (~1e-8).
            assert cmp.max_abs(param.grad, g) <= 1e-6, key
        else:
            assert cmp.max_abs(param.grad, g) <= TOL * scale, key
