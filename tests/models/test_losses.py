"""Losses: parity with the official loss classes (``metric_fixture.pt``) and properties on tiny
seeded inputs."""

import math

import pytest
import torch

from vlwm.models.losses import (code_cross_entropy, lovasz_loss, lovasz_softmax, plan_regression,
                                voxel_cross_entropy)
from vlwm.models.pose import poses_from_metas


@pytest.fixture(scope="module")
def loss_inputs(metric_fixture):
    return metric_fixture["losses"]["inputs"], metric_fixture["losses"]["outputs"]


def test_official_loss_values(loss_inputs):
    """BaseLoss.forward returns weight x loss: the fixture values include the weight."""
    inp, ref = loss_inputs
    rel, mode = poses_from_metas(inp["metas"])
    assert code_cross_entropy(inp["ce_inputs"], inp["ce_labels"]).item() == pytest.approx(ref["CeLoss_w1"], rel=1e-6)
    assert 0.1 * plan_regression(inp["rel_pose"], rel, mode, "l2").item() == pytest.approx(
        ref["PlanRegLossLidar_l2_w0.1"], rel=1e-6)
    assert plan_regression(inp["rel_pose"], rel, mode, "l1").item() == pytest.approx(
        ref["PlanRegLossLidar_l1_w1"], rel=1e-6)
    assert 10 * voxel_cross_entropy(inp["logits"], inp["labels"]).item() == pytest.approx(
        ref["ReconLoss_w10"], rel=1e-6)
    assert lovasz_loss(inp["logits"], inp["labels"]).item() == pytest.approx(ref["LovaszLoss_w1"], rel=1e-6)


def test_code_cross_entropy_accepts_frames_axis():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 4, 4, generator=g)
    labels = torch.randint(0, 8, (2, 3, 4, 4), generator=g)
    flat = code_cross_entropy(logits.flatten(0, 1), labels.flatten(0, 1))
    assert torch.equal(code_cross_entropy(logits, labels), flat)
    uniform = code_cross_entropy(torch.zeros(5, 8, 2, 2), torch.randint(0, 8, (5, 2, 2), generator=g))
    assert uniform.item() == pytest.approx(math.log(8), rel=1e-6)


def test_lovasz_is_zero_for_perfect_predictions_and_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (200,), generator=g)
    perfect = torch.nn.functional.one_hot(labels, 5).float()
    assert lovasz_softmax(perfect, labels).item() == pytest.approx(0.0, abs=1e-7)
    noisy = torch.rand(200, 5, generator=g).softmax(-1)
    assert 0.0 < lovasz_softmax(noisy, labels).item() <= 1.0


def test_lovasz_only_averages_present_classes():
    """Adding a class that never occurs in the labels (all its probabilities zero) changes nothing."""
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (100,), generator=g)
    probs = torch.rand(100, 3, generator=g).softmax(-1)
    padded = torch.cat([probs, torch.zeros(100, 1)], dim=1)
    assert lovasz_softmax(padded, labels).item() == pytest.approx(lovasz_softmax(probs, labels).item(), rel=1e-6)


def test_lovasz_gradient_matches_float64():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 4, 18, generator=g, requires_grad=True)
    labels = torch.randint(0, 18, (2, 3, 4, 4), generator=g)
    lovasz_loss(logits, labels).backward()
    logits64 = logits.detach().double().requires_grad_()
    lovasz_loss(logits64, labels).backward()
    assert torch.allclose(logits.grad.double(), logits64.grad, atol=1e-7)


def test_plan_regression_trains_only_the_commanded_mode():
    """Positions are cumulative per mode; with one command over the window, an exact commanded
    mode gives zero loss whatever the other modes predict."""
    g = torch.Generator().manual_seed(4)
    gt = torch.randn(2, 6, 2, generator=g)
    mode = torch.nn.functional.one_hot(torch.tensor([[1] * 6, [2] * 6]), 3).float()
    pred = torch.randn(2, 6, 3, 2, generator=g)
    exact = pred.clone()
    exact[mode.bool()] = gt.reshape(-1, 2)
    assert plan_regression(exact, gt, mode).item() == pytest.approx(0.0, abs=1e-6)
    assert plan_regression(pred, gt, mode).item() > 0.0
    shifted = exact.clone()
    shifted[0, 0, 1, 0] += 1.0          # +1 m at frame 0 of the commanded mode: all 6 positions off by 1
    assert plan_regression(shifted, gt, mode).item() == pytest.approx(6.0 / (2 * 6), rel=1e-5)


def test_plan_regression_handles_drone_motion():
    """With 4 motion components (dx, dy, dz, dyaw) the l2 error covers all of them."""
    gt = torch.zeros(1, 2, 4)
    mode = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0]]])
    pred = torch.zeros(1, 2, 3, 4)
    pred[0, 0, 0, 2] = 3.0   # dz error of 3 m at frame 0 -> cumulative error 3 at frames 0 and 1
    assert plan_regression(pred, gt, mode).item() == pytest.approx((3.0 + 3.0) / 2)
