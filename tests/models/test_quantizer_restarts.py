"""Dead-code restarts of the vector quantiser (a training option, off by default)."""

from __future__ import annotations

import torch

from vlwm.models.config import VAEConfig
from vlwm.models.quantizer import VectorQuantizer
from vlwm.models.vae import VAERes2D


def _collapsed(restart_after: int) -> tuple[VectorQuantizer, torch.Tensor]:
    """A quantiser whose codes all sit far away except code 0, and latents near code 0."""
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=8, code_dim=4, z_channels=4, restart_after=restart_after)
    with torch.no_grad():
        q.embedding.weight.fill_(100.0)
        q.embedding.weight[0] = 0.0
    z = torch.randn(2, 4, 3, 3)                                 # (N, code_dim, h, w), all nearest to code 0
    return q, z


def test_idle_codes_move_onto_batch_latents_and_get_used():
    q, z = _collapsed(restart_after=2)
    q.train()
    first = q.quantize(z)
    assert torch.unique(first.indices).tolist() == [0]          # collapsed: one code in use
    assert q.restarts == 0 and q.idle_steps[1:].tolist() == [1] * 7 and q.idle_steps[0] == 0
    q.quantize(z)                                               # idle 2 steps now, not yet restarted
    assert q.restarts == 0
    third = q.quantize(z)                                       # restarted before this lookup
    assert q.restarts == 7
    rows = z.permute(0, 2, 3, 1).reshape(-1, 4)
    for k in range(1, 8):                                       # each restarted code is one of the latents
        assert torch.isclose(q.embedding.weight[k][None], rows).all(dim=1).any()
    assert len(torch.unique(third.indices)) > 1                 # and the latents now spread over them


def test_no_restart_by_default_in_eval_or_when_frozen():
    for restart_after, train, grad in ((0, True, True), (1, False, True), (1, True, False)):
        q, z = _collapsed(restart_after)
        q.train(train)
        q.embedding.weight.requires_grad_(grad)
        before = q.embedding.weight.detach().clone()
        for _ in range(3):
            q.quantize(z)
        assert q.restarts == 0 and torch.equal(q.embedding.weight.detach(), before)


def test_restarts_keep_the_state_dict_official():
    cfg = dict(ch=8, z_channels=8, codebook_size=16, code_dim=8, depth=4, resolution=8, attn_resolutions=())
    plain = VAERes2D(VAEConfig(**cfg)).state_dict()
    restarting = VAERes2D(VAEConfig(**cfg, restart_dead_codes=5)).state_dict()
    assert list(plain) == list(restarting)
    assert {k: v.shape for k, v in plain.items()} == {k: v.shape for k, v in restarting.items()}
