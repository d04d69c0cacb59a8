"""Parity of the scene tokenizer with the official ``VAERes2D`` (small-variant fixture, SPEC §11).

The fixture holds the official model's config, its seed-0 weights, an input, eval outputs
(encoder latents, code indices, full logits, predictions, VQ loss) and a training step (MultiLoss
values and full gradients), all float32.

As in ``test_world_model_parity.py``: structure is checked with our model in float64 (exact on any
CPU, so the comparison with the official numbers measures only their own float32 rounding, a
constant of the fixture), float32 execution against our float64 on the same machine, bounded by
:func:`tests.helpers.reference.f32_bound` (10x the official float32 error of the same output).
"""

import pytest
import torch

from tests.helpers.reference import NOISE_FACTOR, assert_seed0_weights_match, f32_bound
from vlwm.models import build_from_official_config, vae_loss
from vlwm.models.vae import occupancy_predictions

#: Bound on |ours − official| in float64: the official float32 rounding of these outputs is
#: ≤ 4e-5 on logits of magnitude ~10 and ≤ 2e-5 of each gradient tensor's largest entry (constants
#: of the fixture); a structural error changes them by O(1) relative.
TOL = 1e-4


def _model(fx, dtype=torch.float32, **execution):
    model = build_from_official_config(fx["config"], **execution)
    model.load_state_dict(fx["state_dict"], strict=True)
    return model.to(dtype)


def test_seed0_build_reproduces_official_weights(vae_fixture):
    """Same module tree, parameter order and initialisation order as the official code (bit for
    bit on FMA kernel sets, within float32 rounding of the random kernels elsewhere; see
    :func:`tests.helpers.reference.assert_seed0_weights_match`)."""
    torch.manual_seed(0)
    model = build_from_official_config(vae_fixture["config"])
    assert_seed0_weights_match(model.state_dict(), vae_fixture["state_dict"])


def _eval(fx, dtype, attention):
    model = _model(fx, dtype, attention=attention).eval()
    x = fx["inputs"]["x"].long()
    with torch.no_grad():
        z, sizes = model.encode(x)
        quantized = model.vqvae.quantize(model.vqvae.quant_conv(z))
        requantized = model.vqvae.quantize(model.vqvae.quant_conv(fx["outputs"]["z_encoder"].to(dtype)))
        out = model(x)
    return z, sizes, quantized, requantized, out


@pytest.fixture(scope="module")
def exact_eval(vae_fixture):
    """Our float64 eval pass (reference attention): the exact numbers the float32 runs approximate."""
    return _eval(vae_fixture, torch.float64, "reference")


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
def test_eval_outputs_match(vae_fixture, exact_eval, cmp, attention):
    out_ref = vae_fixture["outputs"]
    z64, sizes64, quantized64, requantized64, out64 = exact_eval
    z, sizes, quantized, requantized, out = _eval(vae_fixture, torch.float32, attention)
    for s, q, rq, o in ((sizes64, quantized64, requantized64, out64), (sizes, quantized, requantized, out)):
        assert [tuple(t) for t in s] == [tuple(t) for t in out_ref["encoder_shapes"]]
        assert torch.equal(rq.indices, out_ref["code_indices"])
        assert torch.equal(q.indices, out_ref["code_indices"])
        assert torch.equal(o.code_indices.flatten(0, 1), out_ref["code_indices"])
        assert o.logits.shape == tuple(out_ref["logits_stats"]["shape"])
    # structure: float64 against the official numbers
    assert cmp.max_abs(z64, out_ref["z_encoder"]) <= TOL
    assert cmp.max_abs(out64.logits, out_ref["logits"]) <= TOL
    # float32 execution: against our float64 on this machine; hence |float32 − official| <= bound + TOL
    assert cmp.max_abs(z, z64) <= f32_bound(z64, out_ref["z_encoder"])
    bound = f32_bound(out64.logits, out_ref["logits"])
    assert cmp.max_abs(out.logits, out64.logits) <= bound
    tol = bound + TOL
    cmp.argmax(out.logits, out_ref["logits"], tol)
    sem_pred, iou_pred = occupancy_predictions(out.logits)
    ties = out_ref["logits"].topk(2, -1).values.diff(dim=-1).abs().squeeze(-1) <= 2 * tol
    assert torch.equal(sem_pred[~ties].to(torch.uint8), out_ref["sem_pred"][~ties])
    assert abs(int(iou_pred.sum()) - out_ref["iou_pred_occupied_count"]) <= int(ties.sum())
    # a mean over all latents: float32 rounding ~1e-7 relative, not amplified
    assert out.embed_loss.item() == pytest.approx(out_ref["eval_embed_loss"].item(), rel=1e-5)


def _training_step(fx, dtype, attention):
    model = _model(fx, dtype, attention=attention).train()
    x = fx["inputs"]["x"].long()
    losses = vae_loss(model(x), x)
    losses.total.backward()
    return losses, {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


@pytest.fixture(scope="module")
def exact_gradients(vae_fixture):
    """Our float64 training step (reference attention): the exact gradients."""
    return _training_step(vae_fixture, torch.float64, "reference")[1]


def test_official_gradients_are_our_exact_gradients(vae_fixture, exact_gradients, cmp):
    """Structure in float64: every gradient tensor within TOL of its largest entry."""
    grads = vae_fixture["grads"]
    assert set(exact_gradients) == set(grads)
    for key, g in grads.items():
        scale = g.abs().max().item()
        if scale < 1e-6:
            # The key biases of the attention blocks: softmax is invariant to them, so their
            # exact gradient is 0 and the official one holds rounding noise (~1e-8).
            assert cmp.max_abs(exact_gradients[key], g) <= 1e-6, key
        else:
            assert cmp.max_abs(exact_gradients[key], g) <= TOL * scale, key


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
def test_training_losses_and_gradients_match(vae_fixture, exact_gradients, cmp, attention):
    fx = vae_fixture
    losses, grads = _training_step(fx, torch.float32, attention)
    # means of well-conditioned terms: float32 rounding ~1e-7 relative, not amplified
    ref = fx["losses"]["unweighted_per_loss"]
    assert losses.total.item() == pytest.approx(fx["losses"]["total"], rel=1e-5)
    assert losses.recon.item() == pytest.approx(ref["ReconLoss"], rel=1e-5)
    assert losses.lovasz.item() == pytest.approx(ref["LovaszLoss"], rel=1e-5)
    assert losses.embed.item() == pytest.approx(ref["VQVAEEmbedLoss"], rel=1e-5)
    # float32 execution: against our float64 gradients on this machine.  Per tensor, the error
    # relative to its largest entry is bounded by NOISE_FACTOR x the official run's worst such error
    # over all tensors (which tensor is worst depends on the summation order; see f32_bound).
    assert set(grads) == set(fx["grads"])
    worst = max(cmp.max_abs(exact_gradients[k], g) / g.abs().max().item()
                for k, g in fx["grads"].items() if g.abs().max().item() >= 1e-6)
    for key, g in fx["grads"].items():
        scale = g.abs().max().item()
        if scale < 1e-6:                          # exact gradient 0 (see above): rounding noise only
            assert cmp.max_abs(grads[key], exact_gradients[key]) <= 1e-6, key
        else:
            assert cmp.max_abs(grads[key], exact_gradients[key]) <= NOISE_FACTOR * worst * scale, key
