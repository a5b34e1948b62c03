"""Hypothesis strategies for property-based gradient tests.

Thin wrappers over :mod:`hypothesis.extra.numpy` with small defaults: a numerical gradient
check costs two forward passes per input element, and finite-difference error grows with
the number of elements, so tiny arrays are both faster and more trustworthy.

Three facts shape the value strategies:

- Hypothesis shrinks floats toward 0 — exactly where ``relu`` and ``abs`` have their kink.
  An unguarded test's "minimal" failing example often sits on the kink, where the
  numerical derivative is meaningless (relu at 0 gives 0.5). :func:`away_from` builds values
  as ``point ± (margin + offset)``, so they shrink to ``point ± margin``, never onto it.
- ``hypothesis.extra.numpy.arrays`` fills most of a small array with one repeated value
  (HypothesisWorks/hypothesis#1691); repeated values are ties for ``max``/``maximum``. Our
  :func:`arrays` draws every element (``fill=st.nothing()``) and :func:`separated` gives
  grid values that are at least ``step`` apart when drawn distinct.
- An unseeded ``np.random.default_rng()`` differs between runs and makes Hypothesis report
  "Flaky"; draw generators with :func:`rngs` instead.

Draw shapes first and values second (as every strategy here does), so that a failure shrinks
to the smallest shape before the values are simplified.

Requires ``hypothesis`` (``pip install tinygrad_seq[testing]``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "arrays",
    "away_from",
    "axes",
    "broadcastable_shapes",
    "cell_params",
    "keepdims",
    "matmul_shapes",
    "mutually_broadcastable_shapes",
    "positives",
    "reals",
    "rngs",
    "separated",
    "sequences",
    "shapes",
    "tensors",
    "upstream_grads",
]

Shape = tuple[int, ...]

# Gates per cell kind, in PyTorch's weight layout: (i, f, g, o) for LSTM, (r, z, n) for GRU.
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------------- shapes


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims``–``max_dims`` axes of size ``min_side``–``max_side``.

    Shrinks toward ``()`` (a 0-d array) and sides of ``min_side``. Sides are at least 1 by
    default: test size-0 arrays on purpose, separately.
    """
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    shape: Shape, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Shapes that broadcast together with ``shape`` (the other operand of a binary op).

    The common shape ``np.broadcast_shapes(drawn, shape)`` may be larger than ``shape``:
    extra leading axes and size-1 axes of ``shape`` stretched, both of which backward must
    sum away again.
    """
    return hnp.broadcastable_shapes(
        tuple(shape), min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def mutually_broadcastable_shapes(
    num_shapes: int = 2,
    base_shape: Shape = (),
    min_dims: int = 0,
    max_dims: int = 3,
    min_side: int = 1,
    max_side: int = 4,
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """An n-tuple of shapes that broadcast together, e.g. ``((3, 1), (4,))`` for a binary op.

    Their common shape is ``np.broadcast_shapes(*shapes)``. Size-1 axes and missing leading
    axes both occur, which is where un-broadcasting gradients goes wrong.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        base_shape=tuple(base_shape),
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda drawn: drawn.input_shapes)


def matmul_shapes(max_batch_dims: int = 2, max_side: int = 4) -> st.SearchStrategy[Shape]:
    """A pair of shapes ``(a, b)`` that ``a @ b`` accepts, from numpy's matmul signature.

    ``"(m?,n),(n,p?)->(m?,p?)"``: either operand may be 1-D (a row vector on the left, a
    column vector on the right), and up to ``max_batch_dims`` leading batch axes broadcast.
    """
    return hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=max_batch_dims, max_side=max_side
    ).map(lambda drawn: drawn.input_shapes)


# --------------------------------------------------------------------------- values


def reals(lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy[float]:
    """Finite floats in [lo, hi], no NaN, no infinity, no subnormals.

    Bounded because exp/tanh saturate and finite differences lose precision on large values;
    no subnormals because they are slow and their derivatives are mostly rounding noise.
    Shrinks toward 0 (so guard kinks with :func:`away_from`).
    """
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def positives(lo: float = 0.1, hi: float = 5.0) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] with lo > 0: inputs for log, sqrt, division and powers.

    The lower bound keeps 1/x and 1/√x (their derivatives) of moderate size, where
    central differences are accurate.
    """
    if not lo > 0:
        raise ValueError(f"positives: lo must be > 0, got lo={lo}")
    return reals(lo, hi)


def away_from(
    *points: float, margin: float = 0.05, lo: float = -3.0, hi: float = 3.0
) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] at least ``margin`` from every one of ``points`` (kink-free values).

    ``away_from(0)`` for relu/abs, ``away_from(low, high)`` for clip. A value is built as
    ``point + sign·(margin + offset)`` with offset ≥ 0, so it shrinks to ``point ± margin`` —
    next to the kink, where bugs in the branch logic show, but never onto it. Keep
    ``margin`` well above the gradcheck ``eps`` so the central difference never straddles
    a kink.
    """
    if not points:
        raise ValueError("away_from: give at least one point to stay away from")
    if not margin > 0 or not lo < hi:
        raise ValueError(f"away_from: need margin > 0 and lo < hi, got {margin=}, {lo=}, {hi=}")
    kinks = sorted(float(p) for p in points)
    # One "ray" per (point, side): the values p + sign·m that stay in [lo, hi] and do not
    # enter the exclusion zone of the neighbouring point on that side.
    rays = []
    for k, p in enumerate(kinks):
        upper = min(hi, kinks[k + 1] - margin) if k + 1 < len(kinks) else hi
        lower = max(lo, kinks[k - 1] + margin) if k > 0 else lo
        for sign, near, far in (
            (1.0, max(lo, p + margin), upper),
            (-1.0, min(hi, p - margin), lower),
        ):
            if sign * (far - near) >= 0:
                rays.append((p, sign, abs(near - p), abs(far - p)))
    if not rays:
        raise ValueError(
            f"away_from: no value in [{lo}, {hi}] is {margin} away from all of {kinks}"
        )

    @st.composite
    def build(draw: st.DrawFn) -> float:
        p, sign, nearest, farthest = draw(st.sampled_from(rays))
        offset = draw(reals(0.0, farthest - nearest))
        return _nudge_out(p + sign * (nearest + offset), p, sign, margin, lo, hi)

    return build()


def _nudge_out(x: float, p: float, sign: float, margin: float, lo: float, hi: float) -> float:
    """Undo a rounding that put ``x`` a few ulps inside the margin or outside [lo, hi]."""
    while abs(x - p) < margin:
        x = float(np.nextafter(x, sign * math.inf))
    return min(max(x, lo), hi)


def separated(step: float = 0.25, lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy[float]:
    """Values on the grid ``k·step`` inside [lo, hi]; shrinks toward 0.

    Drawn distinct (``arrays(..., elements=separated(), distinct=True)``) any two values are
    at least ``step`` apart: no ties for max/min/maximum/sort, and a central difference with
    eps < step/2 never swaps the order of two elements.
    """
    if not step > 0:
        raise ValueError(f"separated: step must be > 0, got step={step}")
    first, last = math.ceil(lo / step), math.floor(hi / step)
    if first > last:
        raise ValueError(f"separated: no multiple of step={step} lies in [{lo}, {hi}]")
    return st.integers(first, last).map(lambda k: k * step)


def arrays(
    shape: Shape | st.SearchStrategy[Shape],
    dtype: Any = np.float64,
    elements: st.SearchStrategy[float] | None = None,
    distinct: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """ndarrays of ``shape`` (a tuple or a strategy) whose every element is drawn.

    ``elements`` defaults to :func:`reals`. Unlike ``hypothesis.extra.numpy.arrays`` there is
    no fill value, so a small array is not mostly one repeated value (ties, zeros).
    ``distinct=True`` makes all elements different.
    """
    return hnp.arrays(
        dtype,
        shape,
        elements=reals() if elements is None else elements,
        fill=st.nothing(),
        unique=distinct,
    )


@st.composite
def tensors(
    draw: st.DrawFn,
    shape: Shape | st.SearchStrategy[Shape] | None = None,
    dtype: Any = np.float64,
    elements: st.SearchStrategy[float] | None = None,
    requires_grad: bool | st.SearchStrategy[bool] = True,
    distinct: bool = False,
) -> Any:
    """``tinygrad_seq`` Tensors built from :func:`arrays` (shape defaults to :func:`shapes`).

    ``dtype`` and ``requires_grad`` may be plain values or strategies, e.g.
    ``requires_grad=st.booleans()`` to test that constants get no gradient.
    """
    import tinygrad_seq as ts

    shape = shapes() if shape is None else shape
    dtype = draw(dtype) if isinstance(dtype, st.SearchStrategy) else dtype
    data = draw(arrays(shape, dtype, elements, distinct))
    grad = draw(requires_grad) if isinstance(requires_grad, st.SearchStrategy) else requires_grad
    return ts.tensor(data, requires_grad=grad)


def upstream_grads(
    shape: Shape, lo: float = -1.0, hi: float = 1.0
) -> st.SearchStrategy[np.ndarray]:
    """Non-uniform upstream gradients ∂L/∂y of ``shape``: distinct values, none near 0.

    A uniform upstream (all ones) hides a backward that sums where it should weight, and a
    zero entry hides that element's gradient; these shrink to ±0.1 and are all different.
    """
    return arrays(shape, np.float64, away_from(0.0, margin=0.1, lo=lo, hi=hi), distinct=True)


# --------------------------------------------------------------------------- reductions


@st.composite
def axes(draw: st.DrawFn, ndim: int) -> int | tuple[int, ...] | None:
    """A valid ``axis`` argument for a reduction over an ``ndim``-d array.

    None (all axes), a single int in [-ndim, ndim) (negative counts from the end), or a tuple
    of distinct axes, each possibly negative. A 0-d array only accepts None and ().
    """
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(hnp.valid_tuple_axes(ndim))
    negative = draw(st.lists(st.booleans(), min_size=len(chosen), max_size=len(chosen)))
    # valid_tuple_axes may already give negative axes: normalise, then pick the spelling.
    return tuple(
        a % ndim - ndim if neg else a % ndim for a, neg in zip(chosen, negative, strict=True)
    )


def keepdims() -> st.SearchStrategy[bool]:
    """The ``keepdims`` flag of a reduction (shrinks to False)."""
    return st.booleans()


# --------------------------------------------------------------------------- randomness


class _SeededGenerator(np.random.Generator):
    """``np.random.default_rng(seed)`` that prints as such in a falsifying example."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(seed))
        self.seed = seed

    def __repr__(self) -> str:
        return f"np.random.default_rng({self.seed})"

    __str__ = __repr__


def rngs() -> st.SearchStrategy[np.random.Generator]:
    """A seeded numpy Generator, for code that takes ``rng=`` (dropout masks, init).

    The seed is drawn by Hypothesis, so a failure replays exactly and shows its seed.
    """
    return st.integers(0, 2**32 - 1).map(_SeededGenerator)


# --------------------------------------------------------------------------- recurrent nets


@st.composite
def sequences(
    draw: st.DrawFn,
    max_T: int = 5,
    max_batch: int = 3,
    max_features: int = 4,
    elements: st.SearchStrategy[float] | None = None,
) -> np.ndarray:
    """Float64 input sequences of shape (T, B, D), time first, with T, B, D ≥ 1.

    Short (T ≤ 5) on purpose: over long sequences gradients of early steps vanish below
    what finite differences resolve, and a wrong early-step gradient would pass unnoticed.
    Elements default to [-1, 1], where tanh and sigmoid are far from saturation.
    """
    T = draw(st.integers(1, max_T))
    B = draw(st.integers(1, max_batch))
    D = draw(st.integers(1, max_features))
    return draw(arrays((T, B, D), np.float64, reals(-1.0, 1.0) if elements is None else elements))


def cell_params(
    kind: str = "rnn",
    input_size: int | st.SearchStrategy[int] | None = None,
    hidden_size: int | st.SearchStrategy[int] | None = None,
    scale: str | float = "stable",
) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Float64 parameters of an RNN, LSTM or GRU cell, with PyTorch's names and shapes.

    ``weight_ih`` (G·H, D), ``weight_hh`` (G·H, H), ``bias_ih`` and ``bias_hh`` (G·H,), with
    G = 1 (rnn), 4 (lstm: gates i, f, g, o) or 3 (gru: r, z, n). Sizes are ints or
    strategies and default to 1–4. ``scale="stable"`` draws entries in ±1/√H, PyTorch's
    initialisation range, so that over a few steps gradients neither vanish nor explode; a
    number gives entries in ±scale. Load them with ``cell.load_state_dict(params)``.
    """
    if kind not in _GATES:
        raise ValueError(f"cell_params: kind must be one of {sorted(_GATES)}, got {kind!r}")
    if scale != "stable" and not (
        isinstance(scale, int | float) and not isinstance(scale, bool) and scale > 0
    ):
        raise ValueError(f"cell_params: scale must be 'stable' or a positive number, got {scale!r}")
    gates = _GATES[kind]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, np.ndarray]:
        D = _draw_size(draw, input_size)
        H = _draw_size(draw, hidden_size)
        bound = 1.0 / math.sqrt(H) if scale == "stable" else float(scale)
        values = reals(-bound, bound)
        return {
            "weight_ih": draw(arrays((gates * H, D), np.float64, values)),
            "weight_hh": draw(arrays((gates * H, H), np.float64, values)),
            "bias_ih": draw(arrays((gates * H,), np.float64, values)),
            "bias_hh": draw(arrays((gates * H,), np.float64, values)),
        }

    return build()


def _draw_size(draw: st.DrawFn, size: int | st.SearchStrategy[int] | None) -> int:
    if size is None:
        return draw(st.integers(1, 4))
    if isinstance(size, st.SearchStrategy):
        return draw(size)
    return int(size)
