"""Execution options change speed and memory, not results: SDPA vs the reference attention,
nn.MultiheadAttention compatibility, the rollout cache, gradient checkpointing, channels-last,
autocast (quantisation in float32) and torch.compile — on tiny seeded models."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from vlwm.models import build_vqvae, build_world_model, tiny_vae_config, tiny_world_model_config
from vlwm.models.attention import MultiheadAttention, attention, frame_mask


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape, kind", [((3, 2, 7, 8), "causal"), ((3, 2, 7, 8), "mask"), ((2, 1, 50, 16), "none")])
def test_sdpa_equals_reference_attention(shape, kind):
    q, k, v = (torch.randn(shape, generator=_gen(i)) for i in range(3))
    if kind == "mask":
        q = q[..., -3:, :]
        kwargs = dict(mask=frame_mask(3, shape[-2]))
    else:
        kwargs = dict(causal=kind == "causal")
    fast, ref = attention(q, k, v, backend="sdpa", **kwargs), attention(q, k, v, backend="reference", **kwargs)
    assert torch.allclose(fast, ref, atol=1e-5)


def test_frame_mask_is_causal_for_the_last_frames():
    m = frame_mask(3, 5)
    assert m.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert frame_mask(1, 5) is None


@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_multihead_attention_matches_torch_module(backend):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(32, 4, batch_first=True)
    torch.manual_seed(0)
    ours = MultiheadAttention(32, 4, backend)
    for (k1, v1), (k2, v2) in zip(theirs.state_dict().items(), ours.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)                # same names, same seeded init
    q, kv = torch.randn(6, 5, 32, generator=_gen(1)), torch.randn(6, 5, 32, generator=_gen(2))
    blocked = torch.ones(5, 5, dtype=torch.bool).triu(1)       # official mask: True = blocked
    expected = theirs(q, kv, kv, need_weights=False, attn_mask=blocked)[0]
    assert torch.allclose(ours(q, kv, causal=True), expected, atol=1e-5)
    spatial = torch.randn(6, 40, 32, generator=_gen(3))
    assert torch.allclose(ours(q[:, :1], spatial), theirs(q[:, :1], spatial, spatial, need_weights=False)[0], atol=1e-5)


@pytest.fixture(scope="module")
def tiny_world():
    torch.manual_seed(0)
    cfg = tiny_world_model_config(resolution=24, num_frames=6)
    model = build_world_model(cfg)
    with torch.no_grad():   # a codebook spread like a trained one, so tokens differ visibly
        model.vae.vqvae.embedding.weight.normal_(0, 1, generator=_gen(9))
    occ = torch.randint(0, 18, (2, 7, 24, 24, 16), generator=_gen(4))
    motion = torch.randn(2, 7, 2, generator=_gen(5))
    mode = torch.eye(3)[torch.randint(0, 3, (2, 7), generator=_gen(6))]
    return cfg, model, (occ, motion, mode)


def test_rollout_cache_gives_the_recomputed_rollout(tiny_world):
    _, model, (occ, motion, mode) = tiny_world
    with torch.no_grad():
        cached = model.eval().rollout(occ, motion, mode, start=0, mid=3, end=7, use_cache=True)
        full = model.rollout(occ, motion, mode, start=0, mid=3, end=7, use_cache=False)
    assert torch.allclose(cached.code_logits, full.code_logits, atol=1e-5)
    assert torch.equal(cached.code_logits.argmax(2), full.code_logits.argmax(2))
    assert torch.allclose(cached.poses, full.poses, atol=1e-5)
    assert torch.allclose(cached.logits, full.logits, atol=1e-5)


def test_context_of_frames_concatenates(tiny_world):
    """The key/value stream is per frame: context(0..4) == context(0..2) ++ context(3..4)."""
    _, model, (occ, motion, mode) = tiny_world
    with torch.no_grad():
        tokens, _, _ = model.tokenize(occ[:, :5])
        poses = model.encode_poses(motion[:, :5], mode[:, :5])
        whole = model.transformer.context(tokens, poses)
        parts = model.transformer.context(tokens[:, :3], poses[:, :3]).extend(
            model.transformer.context(tokens[:, 3:], poses[:, 3:], first_frame=3))
    for a, b in zip(whole, parts):
        for x, y in zip(a, b):
            assert torch.allclose(x, y, atol=1e-5)
    # The query stream of the last frames alone equals the tail of the full teacher-forced pass.
    with torch.no_grad():
        full_logits, full_pose = model.transformer(tokens, poses)
        tail_logits, tail_pose = model.transformer.predict(tokens[:, 2:], poses[:, 2:], whole)
    assert torch.allclose(tail_logits, full_logits[:, 2:], atol=1e-5)
    assert torch.allclose(tail_pose, full_pose[:, 2:], atol=1e-5)


def _world_grads(cfg, model, inputs):
    twin = build_world_model(cfg)
    twin.load_state_dict(model.state_dict())
    twin.train().freeze_tokenizer()
    out = twin(*inputs)
    (out.code_logits.square().mean() + out.pose_decoded.square().mean()).backward()
    return {k: p.grad for k, p in twin.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients(tiny_world):
    cfg, model, inputs = tiny_world
    plain = _world_grads(cfg, model, inputs)
    ckpt_cfg = replace(cfg, transformer=replace(cfg.transformer, use_checkpoint=True))
    checkpointed = _world_grads(ckpt_cfg, model, inputs)
    assert plain.keys() == checkpointed.keys()
    for key in plain:
        assert torch.allclose(plain[key], checkpointed[key], rtol=1e-5, atol=1e-7), key

    vae_plain, vae_ckpt = build_vqvae(cfg.vae), build_vqvae(replace(cfg.vae, use_checkpoint=True))
    vae_ckpt.load_state_dict(vae_plain.state_dict())
    occ = inputs[0][:, :2]
    for vae in (vae_plain, vae_ckpt):
        out = vae(occ)
        (out.logits.square().mean() + out.embed_loss).backward()
    for (key, p), q in zip(vae_plain.named_parameters(), vae_ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7), key


def test_channels_last_gives_the_same_reconstruction():
    cfg = tiny_vae_config(resolution=24)
    a = build_vqvae(cfg).eval()
    b = build_vqvae(replace(cfg, channels_last=True)).eval()
    b.load_state_dict(a.state_dict())
    assert b.encoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    occ = torch.randint(0, 18, (1, 2, 24, 24, 16), generator=_gen(7))
    with torch.no_grad():
        (za, sizes), (zb, _) = a.encode(occ), b.encode(occ)
        assert torch.allclose(za, zb, atol=1e-5)
        zq = a.vqvae(za).z_q         # decode the same codes (the untrained codebook has near-ties)
        assert torch.allclose(a.decode(zq, sizes, 1), b.decode(zq, sizes, 1), atol=1e-4)


def test_autocast_keeps_quantisation_in_float32(tiny_world):
    _, model, (occ, _, _) = tiny_world
    vq = model.vae.vqvae
    z = torch.randn(4, vq.code_dim, 6, 6, generator=_gen(8))
    with torch.no_grad():
        plain = vq.quantize(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            d = vq.distances(z.permute(0, 2, 3, 1).reshape(-1, vq.code_dim))
            mixed = vq.quantize(z)
            out = model.vae.eval()(occ[:, :2])
    assert d.dtype == torch.float32
    assert torch.equal(mixed.indices, plain.indices)
    assert mixed.z_q.dtype == torch.float32 and mixed.loss.dtype == torch.float32
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()


def test_works_under_torch_compile(tiny_world):
    """Whole-graph capture (no graph breaks) of the tokenizer and the transformer.  The fast
    ``aot_eager`` backend traces and runs the graphs; inductor code generation (slow to compile on
    CPU) is exercised by the benchmark."""
    _, model, (occ, motion, mode) = tiny_world
    model.eval()
    vae = torch.compile(model.vae, backend="aot_eager", fullgraph=True)
    transformer = torch.compile(model.transformer, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        assert torch.allclose(vae(occ[:, :2]).logits, model.vae(occ[:, :2]).logits, atol=1e-5)
        tokens, _, _ = model.tokenize(occ[:, :6])
        poses = model.encode_poses(motion[:, :6], mode[:, :6])
        compiled, eager = transformer(tokens, poses), model.transformer(tokens, poses)
    assert torch.allclose(compiled[0], eager[0], atol=1e-5) and torch.allclose(compiled[1], eager[1], atol=1e-5)
