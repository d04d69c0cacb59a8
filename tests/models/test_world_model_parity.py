"""Parity of the world model with the official ``TransVQVAE`` (small-variant fixture, SPEC §11).

The fixture holds the official config, seed-0 weights, a 16-frame input with poses, the
teacher-forced training and eval outputs, the autoregressive rollout on 12 frames (0 / 5 / 11)
and a training step (losses and the gradients of the 546 trainable tensors).

About the gradient tolerance: with these seed-0 weights the transformer is badly conditioned —
its first LayerNorm normalises tokens whose spatial variance (codebook init ±1/64 on top of a
temporal embedding that is constant over space) is at or below LayerNorm's eps, and dead ReLU
channels feed exactly constant fields to later LayerNorms.  Float32 rounding is amplified ~10⁴×:
the official float32 gradients themselves differ from the exact (float64) gradient by 5e-4
overall and up to 1e-2 for single tensors.  The test therefore compares against that noise floor
(measured with our model in float64), and asserts 1e-4 where the floor allows it.
"""

import pytest
import torch

from vlwm.models import build_from_official_config, poses_from_metas, world_model_loss

TOL = 1e-4


def _model(fx, dtype=torch.float32, **execution):
    model = build_from_official_config(fx["config"], **execution)
    model.load_state_dict(fx["state_dict"], strict=True)
    return model.to(dtype)


def _inputs(fx):
    rel, mode = poses_from_metas(fx["inputs"]["metas"])
    return fx["inputs"]["x"].long(), rel, mode


def test_seed0_build_reproduces_official_weights(wm_fixture):
    torch.manual_seed(0)
    model = build_from_official_config(wm_fixture["config"])
    ours, ref = model.state_dict(), wm_fixture["state_dict"]
    assert list(ours) == list(ref)
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
def test_teacher_forced_eval_matches(wm_fixture, cmp, attention):
    ref = wm_fixture["outputs"]["eval"]
    model = _model(wm_fixture, attention=attention).eval()
    x, rel, mode = _inputs(wm_fixture)
    with torch.no_grad():
        out = model(x, rel, mode, decode=True)
        codes_ref = ref["ce_inputs"].argmax(1).unflatten(0, (1, -1))
        logits_from_ref_codes, sem_from_ref_codes, _ = model.decode_codes(codes_ref, model.vae.grid_sizes(40, 40))
    code_logits = out.code_logits.flatten(0, 1)
    assert cmp.max_abs(code_logits, ref["ce_inputs"]) <= TOL
    assert torch.equal(out.code_labels.flatten(0, 1), ref["ce_labels"])
    assert cmp.max_abs(out.pose_decoded, ref["pose_decoded"]) <= TOL
    cmp.argmax(code_logits, ref["ce_inputs"], TOL, dim=1)
    # The decoder path, from the official argmax codes (3 of 1500 tokens are exact ties at 3e-7):
    # identical classes wherever our own top-2 margin rules out a flip.
    flat = logits_from_ref_codes.reshape(-1, 18)
    assert cmp.max_abs(flat[ref["logits_sample_voxel_flat_index"]], ref["logits_sample"]) <= TOL
    top2 = logits_from_ref_codes.topk(2, -1).values
    decided = top2[..., 0] - top2[..., 1] > 2 * TOL
    assert torch.equal(sem_from_ref_codes[decided].to(torch.uint8), ref["sem_pred"][decided])
    assert out.logits.shape == tuple(ref["logits_stats"]["shape"])


@pytest.mark.parametrize("attention", ["sdpa", "reference"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_rollout_matches(wm_fixture, cmp, attention, use_cache):
    ref = wm_fixture["outputs"]["autoreg"]
    model = _model(wm_fixture, attention=attention).eval()
    x, rel, mode = _inputs(wm_fixture)
    with torch.no_grad():
        r = model.rollout(x[:, :12], rel[:, :12], mode[:, :12], start=0, mid=5, end=11, use_cache=use_cache)
    assert torch.equal(r.code_labels.flatten(0, 1), ref["ce_labels"])
    code_logits = r.code_logits.flatten(0, 1)
    assert cmp.max_abs(code_logits, ref["ce_inputs"]) <= TOL
    assert cmp.argmax(code_logits, ref["ce_inputs"], TOL, dim=1) == 0      # min margin 4.8e-4: no ties
    assert cmp.max_abs(r.poses, ref["poses_"]) <= TOL
    assert cmp.max_abs(r.pose_decoded, ref["pose_decoded"]) <= TOL
    assert cmp.max_abs(r.logits, ref["logits"]) <= TOL
    ties = cmp.argmax(r.logits, ref["logits"], TOL)
    decided = ref["logits"].topk(2, -1).values.diff(dim=-1).abs().squeeze(-1) > 2 * TOL
    assert torch.equal(r.sem_pred[decided].to(torch.uint8), ref["sem_pred"][decided])
    assert int((r.iou_pred.to(torch.uint8) != ref["iou_pred"]).sum()) <= ties
    assert torch.equal(r.target_rel_poses.double(), torch.as_tensor(ref["gt_poses_"]).float().double())
    assert torch.equal(r.target_occs, x[:, 5:11])


def _gradients(model, x, rel, mode):
    model.train()
    model.freeze_tokenizer()
    losses = world_model_loss(model(x, rel.to(model.vae.class_embeds.weight.dtype), mode))
    losses.total.backward()
    return losses, {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


@pytest.fixture(scope="module")
def exact_gradients(wm_fixture):
    """Our model's gradients in float64: the exact gradient the float32 runs approximate."""
    x, rel, mode = _inputs(wm_fixture)
    _, grads = _gradients(_model(wm_fixture, torch.float64, attention="reference"), x, rel.double(), mode.double())
    return grads


def test_official_gradients_are_our_exact_gradients(wm_fixture, exact_gradients, cmp):
    """The official float32 gradients agree with our float64 ones up to float32 noise."""
    ref = wm_fixture["grads"]
    assert set(exact_gradients) == set(ref)
    flat = lambda g: torch.cat([g[k].double().flatten() for k in ref])  # noqa: E731
    assert cmp.rel_err(flat(exact_gradients), flat(ref)) <= 1e-3
    assert max(cmp.rel_err(exact_gradients[k], ref[k]) for k in ref) <= 2e-2
    assert sum(cmp.rel_err(exact_gradients[k], ref[k]) <= TOL for k in ref) >= 150   # pose stream, heads


# Measured over several revisions of the (numerically equivalent) code: overall 6e-4..2e-3, worst
# tensor 2.4..12x its noise floor — rounding differences anywhere (even in the frozen VAE that makes
# the tokens) move these gradients by that much; the flash kernel of SDPA rounds a little
# differently from the official math path.  A structural error gives O(1) differences.
@pytest.mark.parametrize("attention, factor", [("reference", 12.0), ("sdpa", 25.0)])
def test_training_losses_and_gradients_match(wm_fixture, exact_gradients, cmp, attention, factor):
    fx = wm_fixture
    model = _model(fx, attention=attention)
    x, rel, mode = _inputs(fx)
    with torch.no_grad():
        out = model.train()(x, rel, mode)
    train = fx["outputs"]["train"]
    assert cmp.max_abs(out.code_logits.flatten(0, 1), train["ce_inputs"]) <= TOL
    assert torch.equal(out.code_labels.flatten(0, 1), train["ce_labels"])
    assert cmp.max_abs(out.pose_decoded, train["pose_decoded"]) <= TOL

    losses, grads = _gradients(model, x, rel, mode)
    unweighted = fx["losses"]["unweighted_per_loss"]
    assert losses.total.item() == pytest.approx(fx["losses"]["total"], rel=1e-5)
    assert losses.ce.item() == pytest.approx(unweighted["CeLoss"], rel=1e-5)
    assert losses.plan_reg.item() == pytest.approx(unweighted["PlanRegLossLidar"], rel=1e-5)

    ref = fx["grads"]
    assert set(grads) == set(ref)                       # the frozen VAE gets none, as officially
    flat = lambda g: torch.cat([g[k].double().flatten() for k in ref])  # noqa: E731
    assert cmp.rel_err(flat(grads), flat(ref)) <= 4e-3
    for key in ref:
        noise = cmp.rel_err(exact_gradients[key], ref[key])      # the official run's float32 noise
        assert cmp.rel_err(grads[key], ref[key]) <= TOL + factor * noise, key
