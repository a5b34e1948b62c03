"""The LSTM over a whole sequence as one Function, with hand-derived BPTT.

Forward, in processing order k = 0 … T−1 (see :mod:`.sequence`). The four gates' weights
are blocks of H rows, PyTorch's order i, f, g, o; with U = ``weight_ih``, W = ``weight_hh``,
β = ``bias_ih + bias_hh``::

    A       = X·Uᵀ + β                      all T input projections: ONE product
    a_k     = A_k + h_k·Wᵀ                  per step: one product with W
    i, f, o = σ(a_i), σ(a_f), σ(a_o)        input, forget, output gates
    g       = tanh(a_g)                     candidate C̃
    C_{k+1} = f ⊙ C_k + i ⊙ g
    h_{k+1} = o ⊙ tanh(C_{k+1})

Two tricks keep the step to eleven numpy calls on one (B, 4H) block: the gate columns are
reordered to i, f, o, g so the three sigmoid gates are one slice, and that slice's rows of
the copied weights and biases are negated (exact), so the step computes −a directly and
σ(a) = 1 / (1 + e⁻ᵃ) is three calls: exp, +1, reciprocal (see ``sigmoid_of_negated`` in
:mod:`.sequence`: full relative precision, a shut gate is e^a and not 0). The output packs
h_0 … h_T and C_0 … C_T as (2, T+1, B, H); backward also keeps the activated gates (T, B, 4H).

Backward, with ∂h = ∂L/∂h_{k+1} and ∂C = ∂L/∂C_{k+1} (each including its gradient from
outside), τ = tanh(C_{k+1})::

    ∂o = ∂h ⊙ τ
    ∂C += ∂h ⊙ o ⊙ (1 − τ²)
    ∂i = ∂C ⊙ g,   ∂g = ∂C ⊙ i,   ∂f = ∂C ⊙ C_k,   ∂L/∂C_k = ∂C ⊙ f
    δ_k = [∂i, ∂f, ∂o] ⊙ s(1 − s)  and  ∂g ⊙ (1 − g²)     ∂L/∂a_k, s the sigmoid gates
    ∂L/∂h_k = δ_k·W

then the weight gradients as single products over all T·B rows: ∂L/∂U = δᵀ·X,
∂L/∂W = δᵀ·[h_0 … h_{T−1}], ∂L/∂β = Σ δ, ∂L/∂X = δ·U.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import mode
from ..tensor import Tensor
from .sequence import (
    SequenceFunction,
    StepMasks,
    flipped,
    mask_outputs,
    run,
    sigmoid_of_negated,
    time_ordered,
)

__all__ = ["lstm"]


def _gate_order(H: int) -> np.ndarray:
    """Rows of PyTorch's i, f, g, o blocks taken in the order i, f, o, g (its own inverse)."""
    return np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]


class LSTMSequence(SequenceFunction):
    """Inputs x, h_0, C_0, U, W[, b_ih, b_hh]; output [h_0 … h_T, C_0 … C_T] (2, T+1, B, H)."""

    name = "lstm_sequence"

    def forward(
        self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
        w_hh: np.ndarray, *biases: Any, reverse: bool, masks: StepMasks,
    ) -> np.ndarray:  # fmt: skip
        T, B, D = x.shape
        H = w_hh.shape[1]
        dtype = np.result_type(x, h0, c0, w_ih, w_hh, *biases)
        order = _gate_order(H)
        sign = np.ones((4 * H, 1), dtype)
        sign[: 3 * H] = -1  # the sigmoid rows compute −a (see sigmoid_of_negated)

        x_rows = flipped(x, reverse).reshape(T * B, D)
        gates = np.empty((T, B, 4 * H), dtype)
        np.matmul(x_rows, (w_ih[order] * sign).T, out=gates.reshape(T * B, 4 * H))
        if biases:
            gates += (biases[0] + biases[1])[order] * sign[:, 0]
        # Contiguous: with few rows (B), OpenBLAS multiplies by a transposed view up to 2x
        # slower than by the same numbers laid out as they are used.
        w_hh_t = np.ascontiguousarray((w_hh[order] * sign).T)

        states = np.empty((2, T + 1, B, H), dtype)
        hs, cs = states
        hs[0], cs[0] = h0, c0
        recurrent, product = np.empty((B, 4 * H), dtype), np.empty((B, H), dtype)
        taus = np.empty((T, B, H), dtype)  # tanh(C_k+1), kept: backward needs it too
        # e⁻ᵃ overflows to inf for a shut gate (a ≪ 0): 1 / (1 + inf) = 0 is the right
        # limit. Silenced once here, not per step (np.errstate costs ~2 µs a call).
        with np.errstate(over="ignore"):
            for k in range(T):
                if masks.kind[k] == "none":
                    hs[k + 1], cs[k + 1] = hs[k], cs[k]
                    continue
                a, c = gates[k], cs[k + 1]
                np.matmul(hs[k], w_hh_t, out=recurrent)
                np.add(a, recurrent, out=a)
                sigmoid_of_negated(a[:, : 3 * H])
                np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
                i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
                np.multiply(f, cs[k], out=c)  # C = f ⊙ C_k + i ⊙ g
                np.multiply(i, g, out=product)
                np.add(c, product, out=c)
                np.tanh(c, out=taus[k])  # h = o ⊙ tanh(C)
                np.multiply(o, taus[k], out=hs[k + 1])
                if masks.kind[k] == "some":
                    rows = masks.padded[k]
                    hs[k + 1][rows], c[rows] = hs[k][rows], cs[k][rows]
        self.buffers = (x_rows, w_ih, w_hh, gates, taus, masks, reverse, x.shape)
        return states

    def bptt(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        x_rows, w_ih, w_hh, gates, taus, masks, reverse, x_shape = self.buffers
        hs, cs = self.out_data
        T, B, H = gates.shape[0], gates.shape[1], hs.shape[2]
        dtype = gates.dtype
        order = _gate_order(H)
        w_hh_ordered = w_hh[order]
        grad_h, grad_c = grad
        # δ_k = ∂L/∂a_k (gate columns i, f, o, g) replaces the gates of step k once read,
        # unless the graph is retained for another backward.
        delta = np.empty_like(gates) if mode().retain_graph else gates
        dh, dc = grad_h[T].astype(dtype), grad_c[T].astype(dtype)
        # Steps whose output gradients are all zero (usually all but the last): skip adding them.
        live_h = grad_h[:T].reshape(T, -1).any(axis=1)
        live_c = grad_c[:T].reshape(T, -1).any(axis=1)
        scratch, product, slope = (
            np.empty((B, H), dtype),
            np.empty((B, H), dtype),
            np.empty_like(gates[0]),
        )
        for k in reversed(range(T)):
            kind, d, a = masks.kind[k], delta[k], gates[k]
            if kind == "none":  # the state was carried: so is its gradient
                d[...] = 0
                dh += grad_h[k]
                dc += grad_c[k]
                continue
            if kind == "some":
                rows = masks.padded[k]
                carried_h, carried_c = dh[rows], dc[rows]
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            di, df, do, dg = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
            # d may be a itself: each gate is read before its slot is overwritten
            np.multiply(a, a, out=slope)  # s(1 − s) = s − s² for i, f, o; 1 − g² for g
            np.subtract(a[:, : 3 * H], slope[:, : 3 * H], out=slope[:, : 3 * H])
            np.subtract(1, slope[:, 3 * H :], out=slope[:, 3 * H :])
            tau = taus[k]  # tanh(C_k+1), from the forward pass (read only: it may be retained)
            np.multiply(dh, o, out=product)  # ∂C += ∂h ⊙ o ⊙ (1 − τ²)
            np.multiply(dh, tau, out=do)  # ∂o = ∂h ⊙ τ
            np.multiply(tau, tau, out=scratch)
            np.subtract(1, scratch, out=scratch)
            np.multiply(product, scratch, out=product)
            np.add(dc, product, out=dc)
            np.multiply(dc, i, out=product)  # ∂g, set aside until g is read
            np.multiply(dc, g, out=di)
            np.copyto(dg, product)
            np.multiply(dc, f, out=product)  # ∂L/∂C_k through the cell
            np.multiply(dc, cs[k], out=df)
            dc, product = product, dc
            np.multiply(d, slope, out=d)
            if kind == "some":
                d[rows] = 0
            np.matmul(d, w_hh_ordered, out=dh)  # ∂L/∂h_k = δ_k·W
            if kind == "some":
                dh[rows], dc[rows] = carried_h, carried_c
            if live_h[k]:
                np.add(dh, grad_h[k], out=dh)
            if live_c[k]:
                np.add(dc, grad_c[k], out=dc)

        rows_delta = delta.reshape(T * B, 4 * H)
        wanted = [p is not None for p in self.parents]
        grads: list[np.ndarray | None] = [None] * len(wanted)
        if wanted[0]:
            grads[0] = flipped((rows_delta @ w_ih[order]).reshape(x_shape), reverse)
        grads[1] = dh if wanted[1] else None
        grads[2] = dc if wanted[2] else None
        if wanted[3]:
            grads[3] = (rows_delta.T @ x_rows)[order]  # the order is its own inverse
        if wanted[4]:
            grads[4] = (rows_delta.T @ hs[:T].reshape(T * B, H))[order]
        if len(wanted) > 5:
            grad_bias = rows_delta.sum(axis=0)[order]
            grads[5] = grad_bias if wanted[5] else None
            grads[6] = grad_bias.copy() if wanted[6] else None
        return tuple(grads)


def lstm(
    x: Tensor,
    state: tuple[Tensor, Tensor] | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    reverse: bool = False,
    valid: np.ndarray | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One LSTM layer in one direction over x (T, B, D): ``(outputs, (h_n, c_n))``.

    Same numbers as ``Recurrent(LSTMCell(...), reverse=reverse)`` with the step mask
    ``valid`` (T, B) (False at padded steps), computed by one :class:`LSTMSequence`.
    """
    h0, c0 = (None, None) if state is None else state
    states = run(
        LSTMSequence, "lstm", 4, x, (h0, c0), weight_ih, weight_hh, bias_ih, bias_hh, reverse,
        valid,
    )  # fmt: skip
    T = x.shape[0]  # checked by run
    outputs = mask_outputs(time_ordered(states, reverse, T, part=0), valid)
    return outputs, (states[0, T], states[1, T])
