"""The Elman RNN over a whole sequence as one Function, with hand-derived BPTT.

Forward, in processing order k = 0 … T−1 (see :mod:`.sequence`), with U = ``weight_ih``,
W = ``weight_hh`` and β = ``bias_ih + bias_hh``::

    P       = X·Uᵀ + β                 all T input projections: ONE product (T·B, D)·(D, H)
    s_{k+1} = φ(P_k + s_k·Wᵀ)          per step: one product with W, one add, one φ

with φ = tanh or relu. The states s_0 … s_T are the output (and all backward needs).

Backward, with g_k = ∂L/∂s_k arriving from outside and δ_k = ∂L/∂(pre-activation of step k)::

    ∂L/∂s_T = g_T
    δ_k     = ∂L/∂s_{k+1} ⊙ φ′        φ′ = 1 − s_{k+1}² (tanh) or [s_{k+1} > 0] (relu)
    ∂L/∂s_k = δ_k·W + g_k              per step: one multiply, one product, one add

and then the weight gradients as single products over all T·B rows::

    ∂L/∂U = δᵀ·X,   ∂L/∂W = δᵀ·[s_0 … s_{T−1}],   ∂L/∂β = Σ_k Σ_b δ_k,   ∂L/∂X = δ·U.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .sequence import (
    SequenceFunction,
    StepMasks,
    flipped,
    mask_outputs,
    run,
    time_ordered,
)

__all__ = ["rnn"]


class RNNSequence(SequenceFunction):
    """Inputs x (T, B, D), s_0 (B, H), U, W[, b_ih, b_hh]; output s_0 … s_T (T+1, B, H)."""

    name = "rnn_sequence"

    def forward(
        self, x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, *biases: Any,
        nonlinearity: str, reverse: bool, masks: StepMasks,
    ) -> np.ndarray:  # fmt: skip
        T, B, D = x.shape
        H = w_hh.shape[1]
        dtype = np.result_type(x, h0, w_ih, w_hh, *biases)
        x_rows = flipped(x, reverse).reshape(T * B, D)
        states = np.empty((T + 1, B, H), dtype)
        states[0] = h0
        np.matmul(x_rows, w_ih.T, out=states[1:].reshape(T * B, H))  # P = X·Uᵀ
        if biases:
            states[1:] += biases[0] + biases[1]  # + β
        # Contiguous: with few rows (B), OpenBLAS multiplies by a transposed view up to 2x
        # slower than by the same numbers laid out as they are used.
        w_hh_t, recurrent = np.ascontiguousarray(w_hh.T), np.empty((B, H), dtype)
        for k in range(T):
            if masks.kind[k] == "none":
                states[k + 1] = states[k]
                continue
            s = states[k + 1]
            np.matmul(states[k], w_hh_t, out=recurrent)
            np.add(s, recurrent, out=s)
            if nonlinearity == "tanh":
                np.tanh(s, out=s)
            else:
                np.maximum(s, 0, out=s)
            if masks.kind[k] == "some":
                rows = masks.padded[k]
                s[rows] = states[k][rows]
        self.buffers = (x_rows, w_ih, w_hh, masks, nonlinearity, reverse, x.shape)
        return states

    def bptt(self, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        x_rows, w_ih, w_hh, masks, nonlinearity, reverse, x_shape = self.buffers
        states = self.out_data
        T, B, H = states.shape[0] - 1, states.shape[1], states.shape[2]
        delta = np.empty((T, B, H), states.dtype)  # first φ′, then δ = ∂L/∂s ⊙ φ′, in place
        if nonlinearity == "tanh":
            np.multiply(states[1:], states[1:], out=delta)
            np.subtract(1, delta, out=delta)
        else:
            np.greater(states[1:], 0, out=delta, casting="unsafe")
        dh = g[T].astype(states.dtype)  # ∂L/∂s_T, then ∂L/∂s_k going back
        for k in reversed(range(T)):
            kind, d = masks.kind[k], delta[k]
            if kind == "none":  # the state was carried: so is its gradient
                d[...] = 0
                dh += g[k]
                continue
            if kind == "some":
                rows = masks.padded[k]
                carried = dh[rows]
            np.multiply(d, dh, out=d)
            if kind == "some":
                d[rows] = 0
            np.matmul(d, w_hh, out=dh)
            if kind == "some":
                dh[rows] = carried
            np.add(dh, g[k], out=dh)

        rows_delta = delta.reshape(T * B, H)
        wanted = [p is not None for p in self.parents]
        grad_x = grad_ih = grad_hh = grad_b = None
        if wanted[0]:
            grad_x = flipped((rows_delta @ w_ih).reshape(x_shape), reverse)
        if wanted[2]:
            grad_ih = rows_delta.T @ x_rows
        if wanted[3]:
            grad_hh = rows_delta.T @ states[:T].reshape(T * B, H)
        if len(wanted) > 4:
            grad_b = rows_delta.sum(axis=0)
        grads = [grad_x, dh if wanted[1] else None, grad_ih, grad_hh]
        if len(wanted) > 4:
            grads += [grad_b if wanted[4] else None, grad_b.copy() if wanted[5] else None]
        return tuple(grads)


def rnn(
    x: Tensor,
    h0: Tensor | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    nonlinearity: str = "tanh",
    reverse: bool = False,
    valid: np.ndarray | None = None,
) -> tuple[Tensor, Tensor]:
    """One RNN layer in one direction over x (T, B, D): ``(outputs (T, B, H), h_n (B, H))``.

    Same numbers as ``Recurrent(RNNCell(...), reverse=reverse)`` with the step mask
    ``valid`` (T, B) (False at padded steps), computed by one :class:`RNNSequence`.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    states = run(
        RNNSequence, "rnn", 1, x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, reverse, valid,
        nonlinearity=nonlinearity,
    )  # fmt: skip
    T = x.shape[0]  # checked by run
    return mask_outputs(time_ordered(states, reverse, T), valid), states[T]
