"""Scaled dot-product attention: a fused kernel and the explicit reference, behind one function.

Every attention of the OccWorld models goes through :func:`attention`:

* ``backend="sdpa"`` calls :func:`torch.nn.functional.scaled_dot_product_attention` (flash /
  memory-efficient kernels on CPU and CUDA, works under ``torch.compile`` and autocast);
* ``backend="reference"`` computes softmax(q kᵀ · scale + mask) v step by step, like the official
  ``AttnBlock`` (``vae_2d_resnet.py:152-169``); the tests check that both agree.

:class:`MultiheadAttention` is state-dict compatible with ``nn.MultiheadAttention(E, heads,
batch_first=True)`` (keys ``in_proj_weight``, ``in_proj_bias``, ``out_proj.{weight,bias}``) and
initialised the same way, but computes with :func:`attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, mask: Tensor | None = None,
              backend: str = "sdpa") -> Tensor:
    """Softmax attention over the last two axes.

    Parameters
    ----------
    q : (..., L, E) float
        Queries.
    k, v : (..., S, E) float
        Keys and values.
    causal : bool
        Query i attends keys 0..i (needs L == S; the official causal mask, SPEC §3.3).
    mask : (L, S) bool or None
        True where a query may attend a key.  Exclusive with ``causal``.
    backend : {"sdpa", "reference"}

    Returns
    -------
    (..., L, E) float, the dtype of ``q``.
    """
    if causal and mask is not None:
        raise ValueError("give either causal=True or an explicit mask, not both")
    if backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    if backend != "reference":
        raise ValueError(f"unknown attention backend {backend!r}; use 'sdpa' or 'reference'")
    scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)  # (..., L, S)
    if causal:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)


def frame_mask(num_queries: int, num_keys: int, device: torch.device | None = None) -> Tensor | None:
    """Causal mask of the last ``num_queries`` frames of a ``num_keys``-frame window.

    Query a is frame ``num_keys - num_queries + a`` and attends key frames up to its own.

    Returns
    -------
    (num_queries, num_keys) bool (True = attend), or None when nothing is masked
    (a single query for the last frame).
    """
    if num_queries > num_keys:
        raise ValueError(f"{num_queries} query frames but only {num_keys} key frames")
    if num_queries == 1:
        return None
    first = num_keys - num_queries
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril(first)


class MultiheadAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (batch first, in-proj bias).

    Parameters
    ----------
    embed_dim : int
        Width E of queries, keys, values and output.
    num_heads : int
        Heads; E must be divisible by it.
    backend : {"sdpa", "reference"}
    """

    def __init__(self, embed_dim: int, num_heads: int, backend: str = "sdpa"):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.backend = embed_dim, num_heads, backend
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        # Same creation and init order as nn.MultiheadAttention: out_proj (default Linear init)
        # first, then xavier in-projection and zero biases.
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, *, causal: bool = False,
                mask: Tensor | None = None) -> Tensor:
        """Attend ``query`` to ``key`` (which also serves as value, as everywhere in OccWorld).

        Parameters
        ----------
        query : (N, L, E) float
        key : (N, S, E) float
        causal, mask : see :func:`attention`.

        Returns
        -------
        (N, L, E) float
        """
        n, length, e = query.shape
        s = key.shape[1]
        h = self.num_heads
        w, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(query, w[:e], b[:e])                       # (N, L, E)
        kv = F.linear(key, w[e:], b[e:])                        # (N, S, 2E)
        k, v = kv.chunk(2, dim=-1)
        q = q.reshape(n, length, h, e // h).transpose(1, 2)     # (N, h, L, E/h)
        k = k.reshape(n, s, h, e // h).transpose(1, 2)          # (N, h, S, E/h)
        v = v.reshape(n, s, h, e // h).transpose(1, 2)
        out = attention(q, k, v, causal=causal, mask=mask, backend=self.backend)
        out = out.transpose(1, 2).reshape(n, length, e)         # (N, L, E)
        return self.out_proj(out)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, backend={self.backend!r}"

