"""The GRU over a whole sequence as one Function, with hand-derived BPTT (PyTorch's formula).

Forward, in processing order k = 0 … T−1 (see :mod:`.sequence`). Gates are blocks of H rows
in the order r, z, n; U = ``weight_ih``, W = ``weight_hh``::

    A       = X·Uᵀ + b_ih + [b_hr, b_hz, 0]     all T input projections: ONE product
    m_k     = h_k·W_hnᵀ + b_hn                  kept for backward (the reset gate scales it)
    r, z    = σ(A_r + h_k·W_hrᵀ), σ(A_z + h_k·W_hzᵀ)
    n       = tanh(A_n + r ⊙ m_k)
    h_{k+1} = (1 − z) ⊙ n + z ⊙ h_k = n + z ⊙ (h_k − n)

One product h_k·Wᵀ per step gives all three blocks; the r and z rows of the copied weights
and biases are negated, so σ(a) = 1 / (1 + e⁻ᵃ) is three calls, as in the LSTM kernel. The
output is h_0 … h_T (T+1, B, H); backward also keeps the gates r, z, n (T, B, 3H) and m
(T, B, H).

Backward, with ∂h = ∂L/∂h_{k+1}::

    ∂z = ∂h ⊙ (h_k − n),   ∂n = ∂h ⊙ (1 − z) ⊙ (1 − n²)      (∂n: w.r.t. n's pre-activation)
    ∂r = ∂n ⊙ m_k ⊙ r(1 − r),   ∂m = ∂n ⊙ r,   ∂z ← ∂z ⊙ z(1 − z)
    ∂L/∂h_k = ∂h ⊙ z + [∂r, ∂z, ∂m]·W

then single products over all T·B rows: ∂L/∂U = [∂r, ∂z, ∂n]ᵀ·X,
∂L/∂W = [∂r, ∂z, ∂m]ᵀ·[h_0 … h_{T−1}], ∂L/∂b_ih = Σ [∂r, ∂z, ∂n], ∂L/∂b_hh = Σ [∂r, ∂z, ∂m].
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
    sigmoid_of_negated,
    time_ordered,
)

__all__ = ["gru"]


class GRUSequence(SequenceFunction):
    """Inputs x (T, B, D), h_0 (B, H), U, W[, b_ih, b_hh]; output h_0 … h_T (T+1, B, H)."""

    name = "gru_sequence"

    def forward(
        self, x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, *biases: Any,
        reverse: bool, masks: StepMasks,
    ) -> np.ndarray:  # fmt: skip
        T, B, D = x.shape
        H = w_hh.shape[1]
        dtype = np.result_type(x, h0, w_ih, w_hh, *biases)
        sign = np.ones(3 * H, dtype)
        sign[: 2 * H] = -1  # the r and z rows compute −a (see sigmoid_of_negated)

        x_rows = flipped(x, reverse).reshape(T * B, D)
        gates = np.empty((T, B, 3 * H), dtype)
        np.matmul(x_rows, (w_ih * sign[:, None]).T, out=gates.reshape(T * B, 3 * H))
        b_hn: Any = 0
        if biases:
            b_ih, b_hh = biases
            gates[:, :, : 2 * H] -= b_ih[: 2 * H] + b_hh[: 2 * H]
            gates[:, :, 2 * H :] += b_ih[2 * H :]
            b_hn = b_hh[2 * H :]
        w_hh_t = np.ascontiguousarray((w_hh * sign[:, None]).T)  # faster per step (see lstm)

        states = np.empty((T + 1, B, H), dtype)
        states[0] = h0
        m = np.empty((T, B, H), dtype)  # m_k = W_hn·h_k + b_hn
        recurrent, product = np.empty((B, 3 * H), dtype), np.empty((B, H), dtype)
        # e⁻ᵃ overflows to inf for a shut gate (a ≪ 0): 1 / (1 + inf) = 0 is the right
        # limit. Silenced once here, not per step (np.errstate costs ~2 µs a call).
        with np.errstate(over="ignore"):
            for k in range(T):
                if masks.kind[k] == "none":
                    states[k + 1] = states[k]
                    continue
                a, h = gates[k], states[k + 1]
                rz, r, z, n = a[:, : 2 * H], a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
                np.matmul(states[k], w_hh_t, out=recurrent)
                np.add(rz, recurrent[:, : 2 * H], out=rz)
                sigmoid_of_negated(rz)
                np.add(recurrent[:, 2 * H :], b_hn, out=m[k])
                np.multiply(r, m[k], out=product)  # n = tanh(A_n + r ⊙ m)
                np.add(n, product, out=n)
                np.tanh(n, out=n)
                np.subtract(states[k], n, out=h)  # h = n + z ⊙ (h_k − n)
                np.multiply(z, h, out=h)
                np.add(h, n, out=h)
                if masks.kind[k] == "some":
                    rows = masks.padded[k]
                    h[rows] = states[k][rows]
        self.buffers = (x_rows, w_ih, w_hh, gates, m, masks, reverse, x.shape)
        return states

    def bptt(self, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        x_rows, w_ih, w_hh, gates, m, masks, reverse, x_shape = self.buffers
        states = self.out_data
        T, B, H = m.shape
        dtype = states.dtype
        delta = np.empty_like(gates)  # [∂r, ∂z, ∂m]: the gradient of h_k·Wᵀ + b_hh
        delta_n = np.empty_like(m)  # ∂n: the gradient of n's pre-activation
        dh = g[T].astype(dtype)
        recurrent, slope = np.empty((B, H), dtype), np.empty((B, 2 * H), dtype)
        for k in reversed(range(T)):
            kind, d, dn, a = masks.kind[k], delta[k], delta_n[k], gates[k]
            if kind == "none":  # the state was carried: so is its gradient
                d[...] = 0
                dn[...] = 0
                dh += g[k]
                continue
            if kind == "some":
                rows = masks.padded[k]
                carried = dh[rows]
            rz, r, z, n = a[:, : 2 * H], a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            d_rz, dr, dz, dm = d[:, : 2 * H], d[:, :H], d[:, H : 2 * H], d[:, 2 * H :]
            np.subtract(states[k], n, out=dz)  # ∂z = ∂h ⊙ (h_k − n)
            np.multiply(dz, dh, out=dz)
            np.subtract(1, z, out=dn)  # ∂n = ∂h ⊙ (1 − z) ⊙ (1 − n²)
            np.multiply(dn, dh, out=dn)
            np.multiply(n, n, out=recurrent)
            np.subtract(1, recurrent, out=recurrent)
            np.multiply(dn, recurrent, out=dn)
            np.multiply(dn, m[k], out=dr)  # ∂r = ∂n ⊙ m
            np.multiply(dn, r, out=dm)  # ∂m = ∂n ⊙ r
            np.multiply(rz, rz, out=slope)  # σ′ = s − s²
            np.subtract(rz, slope, out=slope)
            np.multiply(d_rz, slope, out=d_rz)
            if kind == "some":
                d[rows] = 0
                dn[rows] = 0
            np.multiply(dh, z, out=dh)  # ∂L/∂h_k = ∂h ⊙ z + δ·W
            np.matmul(d, w_hh, out=recurrent)
            np.add(dh, recurrent, out=dh)
            if kind == "some":
                dh[rows] = carried
            np.add(dh, g[k], out=dh)

        rows_delta, rows_n = delta.reshape(T * B, 3 * H), delta_n.reshape(T * B, H)
        rows_rz = rows_delta[:, : 2 * H]
        wanted = [p is not None for p in self.parents]
        grads: list[np.ndarray | None] = [None] * len(wanted)
        if wanted[0]:
            grad_x = rows_rz @ w_ih[: 2 * H] + rows_n @ w_ih[2 * H :]
            grads[0] = flipped(grad_x.reshape(x_shape), reverse)
        grads[1] = dh if wanted[1] else None
        if wanted[2]:
            grads[2] = np.concatenate([rows_rz.T @ x_rows, rows_n.T @ x_rows])
        if wanted[3]:
            grads[3] = rows_delta.T @ states[:T].reshape(T * B, H)
        if len(wanted) > 4:
            grad_hh = rows_delta.sum(axis=0)
            if wanted[4]:
                grads[4] = np.concatenate([grad_hh[: 2 * H], rows_n.sum(axis=0)])
            grads[5] = grad_hh if wanted[5] else None
        return tuple(grads)


def gru(
    x: Tensor,
    h0: Tensor | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    reverse: bool = False,
    valid: np.ndarray | None = None,
) -> tuple[Tensor, Tensor]:
    """One GRU layer in one direction over x (T, B, D): ``(outputs (T, B, H), h_n (B, H))``.

    Same numbers as ``Recurrent(GRUCell(...), reverse=reverse)`` with the step mask
    ``valid`` (T, B) (False at padded steps), computed by one :class:`GRUSequence`.
    """
    states = run(
        GRUSequence, "gru", 3, x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, reverse, valid
    )
    T = x.shape[0]  # checked by run
    return mask_outputs(time_ordered(states, reverse, T), valid), states[T]
