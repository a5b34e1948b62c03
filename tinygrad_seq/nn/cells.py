"""Recurrent cells: one time step of an RNN, an LSTM or a GRU, and the Cell protocol.

A cell maps the input at one step and the previous state to the next state. Every cell here
follows the **Cell protocol**, which is all that :class:`~tinygrad_seq.nn.Recurrent` (and the
layers, truncated BPTT and gradient-flow tools built on it) needs to know about a cell:

- ``initial_state(batch_size, dtype=None) -> state``: the zero state of a batch;
- ``forward(x_t, state=None) -> state``: one step; ``state=None`` means the initial state;
- ``output(state) -> h_t``: the hidden output read from a state (for an LSTM, the ``h`` of
  ``(h, c)``);
- a ``hidden_size`` attribute.

A state is a Tensor of shape (batch, hidden_size) or a tuple of such Tensors. Subclass
:class:`Cell` to get the zero initial state, ``output`` and the shape checks for free; a
minimal gated unit, for example, is ten lines::

    class MinimalGatedUnit(nn.Cell):
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.gate = nn.Linear(input_size + hidden_size, hidden_size)
            self.candidate = nn.Linear(input_size + hidden_size, hidden_size)

        def forward(self, x, h=None):
            x, h = self.check_input(x), self.check_state(x, h)
            f = self.gate(ts.cat([x, h], axis=1)).sigmoid()            # forget gate f_t
            h_tilde = self.candidate(ts.cat([x, f * h], axis=1)).tanh()
            return (1 - f) * h + f * h_tilde

The three cells use PyTorch's parameter names, shapes, gate order and initialisation, so a
``state_dict`` copied from ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` gives the same
numbers. Weights act on row vectors, as in PyTorch: ``x @ weight_ih.T`` is the lecture's U·x.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import DEFAULT_DTYPE, Tensor, zeros
from . import init
from .module import Module, Parameter

__all__ = ["Cell", "GRUCell", "LSTMCell", "RNNCell", "State"]

State = Any
"""A cell's state: a Tensor (batch, hidden_size), or a tuple of them such as LSTM's (h, c)."""


class Cell(Module):
    """Base class of recurrent cells (see the module docstring for the Cell protocol).

    ``Cell(input_size, hidden_size)`` records the two sizes. Subclasses implement
    ``forward(x_t, state=None) -> state``; the default state is one Tensor of zeros (B, H)
    and ``output`` returns it. Cells whose state is a tuple override ``initial_state`` and
    ``output`` (as :class:`LSTMCell` does).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(size, int | np.integer) or size < 1:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be a positive int, got {size!r}"
                )
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)

    def initial_state(self, batch_size: int, dtype: Any = None) -> State:
        """Zeros of shape (batch_size, hidden_size); ``dtype`` defaults to the parameters'."""
        return zeros(batch_size, self.hidden_size, dtype=dtype or self._dtype())

    def output(self, state: State) -> Tensor:
        """The hidden output h_t of a state (here the state itself)."""
        return state

    def forward(self, x: Tensor, state: State = None) -> State:
        raise NotImplementedError(f"{type(self).__name__} does not define forward(x_t, state)")

    # ----------------------------------------------------------------- checks for subclasses

    def check_input(self, x: Any) -> Tensor:
        """``x`` as a Tensor of shape (batch, input_size), or a ValueError saying what is wrong."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        name = type(self).__name__
        if x.ndim != 2:
            hint = " (one example? add a batch axis: x.unsqueeze(0))" if x.ndim == 1 else ""
            raise ValueError(
                f"{name}: input must have 2 dimensions (batch, input_size={self.input_size}), "
                f"got shape {x.shape}{hint}"
            )
        if x.shape[1] != self.input_size:
            raise ValueError(
                f"{name}: input has shape {x.shape}, so {x.shape[1]} features, but input_size "
                f"is {self.input_size}; expected (batch, {self.input_size})"
            )
        return x

    def check_state(self, x: Tensor, state: Tensor | None, name: str = "state") -> Tensor:
        """``state`` checked to be (batch, hidden_size) for input ``x``; None gives zeros."""
        if state is None:
            return zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
        if not isinstance(state, Tensor):
            raise TypeError(
                f"{type(self).__name__}: {name} must be a Tensor, got {type(state).__name__}"
            )
        expected = (x.shape[0], self.hidden_size)
        if state.shape != expected:
            raise ValueError(
                f"{type(self).__name__}: {name} has shape {state.shape} but the input {x.shape} "
                f"needs {expected} = (batch, hidden_size)"
            )
        return state

    def _dtype(self) -> np.dtype:
        first = next(self.parameters(), None)
        return first.dtype if first is not None else DEFAULT_DTYPE


def _uniform_parameter(
    shape: tuple[int, ...], bound: float, dtype: Any, rng: np.random.Generator | None
) -> Parameter:
    param = Parameter(np.empty(shape, dtype=dtype or DEFAULT_DTYPE))
    return init.uniform_(param, -bound, bound, rng)


class _GatedCell(Cell):
    """The shared parameters of the three cells: ``gates`` blocks of H rows each.

    ``weight_ih`` (gates·H, D), ``weight_hh`` (gates·H, H), ``bias_ih`` and ``bias_hh``
    (gates·H,), all drawn from U(−1/√H, 1/√H) as in PyTorch (from ``rng``, or from the
    generator seeded by ``ts.manual_seed``).
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        rows, bound = self.gates * hidden_size, 1 / math.sqrt(hidden_size)
        self.weight_ih = _uniform_parameter((rows, input_size), bound, dtype, rng)
        self.weight_hh = _uniform_parameter((rows, hidden_size), bound, dtype, rng)
        if bias:
            self.bias_ih = _uniform_parameter((rows,), bound, dtype, rng)
            self.bias_hh = _uniform_parameter((rows,), bound, dtype, rng)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        return text if self.bias_ih is not None else text + ", bias=False"


class RNNCell(_GatedCell):
    """The Elman cell: s_t = tanh(U·x_t + W·s_{t−1} + β_s).

    U is ``weight_ih`` (H, D), W is ``weight_hh`` (H, H), and β_s = ``bias_ih`` + ``bias_hh``
    (PyTorch keeps two biases; only their sum matters). ``nonlinearity='relu'`` replaces tanh.
    ``forward(x, h=None) -> h`` with x (B, D) and h (B, H).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        x = self.check_input(x)
        s_prev = self.check_state(x, h, "h")
        # U·x_t + β   and   W·s_{t−1} + β: together the pre-activation of s_t
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(
            s_prev, self.weight_hh, self.bias_hh
        )
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()  # s_t

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else text + f", nonlinearity={self.nonlinearity}"


class LSTMCell(_GatedCell):
    """The LSTM cell; ``forward(x, state=None) -> (h, c)`` with x (B, D), h and c (B, H).

    The four gates are blocks of H rows of the weights, in PyTorch's order i, f, g, o::

        i_t  = σ(U_i·x_t + W_i·h_{t−1} + β_i)       input gate
        f_t  = σ(U_f·x_t + W_f·h_{t−1} + β_f)       forget gate
        C̃_t  = tanh(U_g·x_t + W_g·h_{t−1} + β_g)    candidate cell
        C_t  = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t            cell state
        o_t  = σ(U_o·x_t + W_o·h_{t−1} + β_o)       output gate
        h_t  = o_t ⊙ tanh(C_t)                      hidden state

    with ``weight_ih`` = [U_i; U_f; U_g; U_o] (4H, D) and ``weight_hh`` = [W_i; …] (4H, H).
    The state is the pair (h_t, C_t); ``output`` returns h_t.
    """

    gates = 4

    def initial_state(self, batch_size: int, dtype: Any = None) -> tuple[Tensor, Tensor]:
        """(h_0, C_0), both zeros of shape (batch_size, hidden_size)."""
        return super().initial_state(batch_size, dtype), super().initial_state(batch_size, dtype)

    def output(self, state: tuple[Tensor, Tensor]) -> Tensor:
        return state[0]

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        x = self.check_input(x)
        if state is None:
            state = (None, None)
        elif not isinstance(state, tuple | list) or len(state) != 2:
            raise TypeError(
                f"LSTMCell: state must be a pair (h, c), got {type(state).__name__}"
                + (f" of length {len(state)}" if isinstance(state, tuple | list) else "")
            )
        h_prev, c_prev = self.check_state(x, state[0], "h"), self.check_state(x, state[1], "c")
        # All four gates' pre-activations in one product: columns are blocks i | f | g | o.
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(
            h_prev, self.weight_hh, self.bias_hh
        )
        i_pre, f_pre, g_pre, o_pre = gates.chunk(4, axis=1)
        f_t = f_pre.sigmoid()  # forget gate f_t
        i_t = i_pre.sigmoid()  # input gate i_t
        c_tilde = g_pre.tanh()  # candidate C̃_t
        c_t = f_t * c_prev + i_t * c_tilde  # C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t
        o_t = o_pre.sigmoid()  # output gate o_t
        h_t = o_t * c_t.tanh()  # h_t = o_t ⊙ tanh(C_t)
        return h_t, c_t


class GRUCell(_GatedCell):
    """The gated recurrent unit, exactly PyTorch's formula; ``forward(x, h=None) -> h``.

    Gates are blocks of H rows in the order r, z, n::

        r_t = σ(W_ir·x_t + b_ir + W_hr·h_{t−1} + b_hr)            reset gate
        z_t = σ(W_iz·x_t + b_iz + W_hz·h_{t−1} + b_hz)            update gate
        n_t = tanh(W_in·x_t + b_in + r_t ⊙ (W_hn·h_{t−1} + b_hn))  candidate
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

    The reset gate multiplies W_hn·h + b_hn, bias included, so ``bias_ih`` and ``bias_hh``
    are not interchangeable here (unlike in the RNN and LSTM cells).
    """

    gates = 3

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        x = self.check_input(x)
        h_prev = self.check_state(x, h, "h")
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, axis=1)
        h_r, h_z, h_n = F.linear(h_prev, self.weight_hh, self.bias_hh).chunk(3, axis=1)
        r_t = (x_r + h_r).sigmoid()  # reset gate r_t
        z_t = (x_z + h_z).sigmoid()  # update gate z_t
        n_t = (x_n + r_t * h_n).tanh()  # candidate n_t
        return (1 - z_t) * n_t + z_t * h_prev  # h_t
