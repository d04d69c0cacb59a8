"""The official OccWorld reference fixtures (``shared/reference/occworld/``, SPEC §11) and tensor comparisons.

The fixtures were produced by the official code; they are ours, so they are read with
``weights_only=False``.  The world-model fixture pickles its config as mmengine ``ConfigDict``
objects; a restricted unpickler maps that one class to a dict so mmengine is not needed.
"""

from __future__ import annotations

import pickle
import types

import torch

from tests.helpers.shared import REFERENCE, require_path


class _ConfigDict(dict):
    """Stand-in for ``mmengine.config.config.ConfigDict`` (a dict subclass) when unpickling."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("mmengine") and name == "ConfigDict":
            return _ConfigDict
        return super().find_class(module, name)


_pickle_module = types.ModuleType("occworld_fixture_pickle")
_pickle_module.Unpickler = _Unpickler
_pickle_module.load = pickle.load


def load_reference(name: str) -> dict:
    """The fixture ``shared/reference/occworld/<name>`` (skips, or fails under CI, when it is missing)."""
    path = require_path(REFERENCE / name, f"reference file {name}")
    return torch.load(path, weights_only=False, pickle_module=_pickle_module)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| in float64."""
    return (a.double() - b.double()).abs().max().item()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ (float64)."""
    b = b.double()
    return ((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item()


def assert_argmax_parity(ours: torch.Tensor, ref: torch.Tensor, tol: float, dim: int = -1) -> int:
    """Our argmax equals the reference's wherever its top-2 margin exceeds ``2 tol``; at the
    near-ties below that, our choice must score within ``2 tol`` of the reference maximum.

    ``ours`` and ``ref`` are logits whose max |difference| is known to be <= tol.  Returns the
    number of near-tie positions.
    """
    top2 = ref.topk(2, dim=dim).values
    margin = top2.select(dim, 0) - top2.select(dim, 1)
    ours_arg, ref_arg = ours.argmax(dim=dim), ref.argmax(dim=dim)
    decided = margin > 2 * tol
    assert torch.equal(ours_arg[decided], ref_arg[decided]), \
        f"{(ours_arg[decided] != ref_arg[decided]).sum().item()} argmax differences away from ties"
    chosen = ref.gather(dim, ours_arg.unsqueeze(dim)).squeeze(dim)
    assert bool((top2.select(dim, 0) - chosen <= 2 * tol).all())
    return int((~decided).sum())


#: Unit roundoff of float32 (half its machine epsilon).
U32 = 2.0 ** -24

#: Float32 execution is compared with our float64 run, bounded by ``NOISE_FACTOR`` times the
#: official run's float32 error of the same output (float64 against the fixture: deterministic,
#: the same on every CPU).  Two float32 runs of one computation have errors of the same order, but
#: which element or tensor is worst depends on the kernels' summation order; on default / avx2 /
#: avx512, ours is 0.6-1.7x the official error on the world model's forward outputs, 1.4-3.2x
#: overall and 1.2-3.5x on the worst tensor of its (badly conditioned) gradients, 0.8-1.5x on the
#: worst tensor of the VAE gradients (relative to each tensor's largest entry).  An order of
#: magnitude covers such orders, while the bounds stay ≥ 10x below a structural error (O(1)
#: relative; ≥ 1e-2 on logits of magnitude ~1).
NOISE_FACTOR = 10.0

#: The kernel sets whose random-number kernels are built with fused multiply-adds, as the ones that
#: made the fixtures' seed-0 weights were: there the weights are reproduced bit for bit.
FMA_CAPABILITIES = ("AVX2", "AVX512")

#: Tolerance of the seed-0 weights, in units of ``U32 · max|w|`` per tensor (see
#: :func:`assert_seed0_weights_match`).
INIT_ULPS = 32


def assert_seed0_weights_match(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    """Our seed-0 ``state_dict`` reproduces the official one: same keys in the same order (the
    module tree and the order of initialisation), shapes, dtypes; values bit for bit where the
    kernels are exact, within float32 rounding of the random-number kernels elsewhere.

    Why values can differ: ATen compiles its CPU random kernels once per kernel set
    (``ATEN_CPU_CAPABILITY``).  ``uniform_`` (kaiming init, biases, the codebook) returns
    ``u * (to - from) + from``; built with ``-mfma`` (AVX2 / AVX-512) the compiler contracts that
    into one fused multiply-add, the ``default`` build rounds the product and the sum separately
    (measured: the kaiming weights differ by exactly one such rounding, 2⁻²⁹ for a bound of 0.03)
    — at most one rounding of ``u (to - from)``, i.e. ≤ ulp(2 b) ≤ 4 U32 max|w| for a U(−b, b)
    tensor (its largest draw exceeds b / 2 with probability 1 − 2⁻ⁿ).  ``normal_`` (embeddings)
    uses Box–Muller with vectorised Sleef ``log`` / ``cos`` / ``sin`` (≤ 1 ulp each) in the AVX
    builds and libm in ``default``; with the argument 2π·u₂ rounded differently by up to one ulp of
    2π (≈ 8 U32) the difference is ≤ (8 + 4) U32 · R, R = √(z_cos² + z_sin²) ≤ √2 max|w| (both
    values of a pair are in the tensor): ≤ 17 U32 max|w| (measured ≤ 7.4).  The tolerance, ``INIT_ULPS`` = 32 U32
    max|w| (4e-6 relative), covers both with a factor ~2; a structural error (another init scheme,
    another order of the draws, a missing module) moves the values by O(max|w|), 10⁵ times more.

    The fixtures were made by FMA kernels: on ``FMA_CAPABILITIES`` the weights must be equal bit for
    bit; on every kernel set, constants (norm weights 1, biases 0) must be exactly equal.
    """
    assert list(ours) == list(ref)
    exact = torch.backends.cpu.get_cpu_capability() in FMA_CAPABILITIES
    for key, want in ref.items():
        got = ours[key]
        assert got.shape == want.shape and got.dtype == want.dtype, key
        if exact or not want.is_floating_point() or want.numel() == 0 or bool((want == want.flatten()[0]).all()):
            assert torch.equal(got, want), key
        else:
            tol = INIT_ULPS * U32 * want.abs().max().item()
            assert max_abs(got, want) <= tol, (key, max_abs(got, want), tol)


def f32_bound(exact: torch.Tensor, official: torch.Tensor) -> float:
    """Bound on max |our float32 − our float64| of one output: ``NOISE_FACTOR`` × max |float64 −
    official| (the official float32 error), floored at one float32 rounding of its largest value
    (``U32 · max|official|``) for outputs the official run got exactly."""
    return NOISE_FACTOR * max(max_abs(exact, official), U32 * official.abs().max().item())
