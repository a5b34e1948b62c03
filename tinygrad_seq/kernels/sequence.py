"""What the fused kernels share: the Function base, time order, padding masks, the checks.

A fused kernel runs one layer in one direction over the whole sequence as a single
:class:`~tinygrad_seq.autograd.Function`. Its one output packs every state it computed, in
*processing order* k = 0 … T (row 0 is the initial state, row k + 1 the state after the
k-th step read): reading backwards (``reverse=True``) is reading the time-flipped input
forwards, so each kernel is written once, for the forward direction. The wrappers in
``rnn.py``, ``lstm.py`` and ``gru.py`` unpack the outputs and the final state with slicing
(views, no copies).

Padding (``valid``, a (T, B) bool mask, False at the padded steps of each sequence) follows
:class:`~tinygrad_seq.nn.Recurrent`: at a padded step the state is carried unchanged, so it
receives the gradient of the next state unchanged and its gates receive none; the output
there is zero (the wrappers apply the mask to the outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Function, mode
from ..tensor import Tensor

__all__ = ["DoubleBackwardError", "SequenceFunction", "StepMasks"]


class DoubleBackwardError(RuntimeError):
    """A fused kernel was asked for a differentiable backward (``create_graph=True``)."""


class SequenceFunction(Function):
    """Base of the fused kernels: the derivative is hand-derived BPTT on arrays (``bptt``).

    ``forward`` keeps the buffers ``bptt`` needs in ``self.buffers``. Written on arrays, the
    gradient cannot be differentiated again: under ``create_graph=True`` backward raises an
    error that says to use the composed cells instead.
    """

    save_output = True  # and the inputs: so that a change to a weight is caught

    def backward(self, g: Any, *inputs: Any) -> tuple[Any, ...]:
        if isinstance(g, Tensor):
            raise DoubleBackwardError(
                f"{self.name}: the fused kernel's backward is hand-derived numpy, so its "
                "gradient cannot be differentiated again (create_graph=True, double backward). "
                "Build the layer with fused=False: the composed cells support gradients of any "
                "order."
            )
        grads = self.bptt(g)
        if not mode().retain_graph:
            self.buffers = None  # freed with the rest of what the node saved
        return grads

    def bptt(self, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError


class StepMasks:
    """Which rows of the batch each step updates, in processing order.

    ``kind[k]`` is ``"all"`` (no padding at step k), ``"none"`` (every sequence has ended:
    nothing to compute) or ``"some"``; for ``"some"``, ``padded[k]`` holds the indices of
    the rows that carry their state through step k.
    """

    def __init__(self, valid: np.ndarray | None, T: int, B: int, reverse: bool) -> None:
        self.kind = ["all"] * T
        self.padded: dict[int, np.ndarray] = {}
        if valid is None:
            return
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (T, B):
            raise ValueError(f"valid must be a (T, B) = {(T, B)} bool mask, got {valid.shape}")
        ordered = valid[::-1] if reverse else valid
        for k, row in enumerate(ordered):
            if not row.all():
                self.kind[k] = "some" if row.any() else "none"
                self.padded[k] = np.flatnonzero(~row)


def check_sequence(name: str, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, gates: int) -> int:
    """The hidden size H, after checking x (T, B, D) against the weight shapes."""
    rows, H = weight_hh.shape
    if rows != gates * H or weight_ih.shape != (rows, x.shape[-1]) or x.ndim != 3:
        raise ValueError(
            f"{name}: input {x.shape} (T, B, D) does not fit weight_ih {weight_ih.shape} and "
            f"weight_hh {weight_hh.shape}; expected ({gates}·H, D) and ({gates}·H, H)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the sequence has no time steps (input shape {x.shape})")
    return H


def initial(name: str, state: Tensor | None, x: Tensor, H: int, dtype: np.dtype) -> Tensor:
    """The initial state, checked to be (B, H); None gives zeros."""
    if state is None:
        return Tensor._wrap(np.zeros((x.shape[1], H), dtype=dtype))
    if not isinstance(state, Tensor) or state.shape != (x.shape[1], H):
        found = state.shape if isinstance(state, Tensor) else type(state).__name__
        raise ValueError(
            f"{name}: the initial state must be (B, H) = {(x.shape[1], H)}, got {found}"
        )
    return state


def run(
    kernel: type[SequenceFunction],
    name: str,
    gates: int,
    x: Tensor,
    states: tuple[Tensor | None, ...],
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    reverse: bool,
    valid: np.ndarray | None,
    **params: Any,
) -> Tensor:
    """Check the inputs and run ``kernel`` over x (T, B, D) from the initial ``states``
    (None gives zeros): the packed states, in processing order."""
    H = check_sequence(name, x, weight_ih, weight_hh, gates)
    T, B = x.shape[:2]
    dtype = np.result_type(x.dtype, weight_ih.dtype)
    inputs = [x, *(initial(name, state, x, H, dtype) for state in states), weight_ih, weight_hh]
    if bias_ih is not None:
        inputs += [bias_ih, bias_hh]
    masks = StepMasks(valid, T, B, reverse)
    return kernel.apply(*inputs, reverse=reverse, masks=masks, **params)


def time_ordered(packed: Tensor, reverse: bool, T: int, part: int | None = None) -> Tensor:
    """Rows 1 … T of the packed states (of ``packed[part]``) by time position: (T, B, H)."""
    rows = slice(T, 0, -1) if reverse else slice(1, None)
    return packed[rows] if part is None else packed[part, rows]


def mask_outputs(outputs: Tensor, valid: Any) -> Tensor:
    """Zero the outputs at padded steps, as :class:`~tinygrad_seq.nn.Recurrent` does."""
    if valid is None or np.all(valid):
        return outputs
    return F.where(np.asarray(valid)[:, :, None], outputs, 0.0)


def flipped(x: np.ndarray, reverse: bool) -> np.ndarray:
    """``x`` in processing order: time-flipped when reading backwards."""
    return x[::-1] if reverse else x


def sigmoid_of_negated(negated: np.ndarray) -> None:
    """Replace −a by σ(a) = 1 / (1 + e⁻ᵃ) in place, with full relative precision.

    The kernels compute −a directly (the sigmoid rows of their copied weights are negated,
    which is exact), so this is three calls. Not ½ + ½·tanh(a/2): that rounds a saturated
    gate to exactly 0 (σ(−20) = 2.06e-9 becomes 0.0 in float32, and a forget gate then cuts
    ∂C_T/∂C_0 to 0). As in ``ops.Sigmoid``, e⁻ᵃ overflows to inf for very negative a and
    1 / (1 + inf) = 0 is the right limit: call this inside ``np.errstate(over="ignore")``.
    """
    np.exp(negated, out=negated)
    np.add(negated, 1, out=negated)
    np.reciprocal(negated, out=negated)
