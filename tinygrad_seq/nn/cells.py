"""Recurrent cells: one time step of an RNN, an LSTM or a GRU, and the Cell protocol.

A cell maps the input at one step and the previous state to the next state. Every cell here
follows the **Cell protocol**, which is all that :class:`~tinygrad_seq.nn.Recurrent` (and the
patterns, truncated BPTT and gradient-flow tools built on it) needs to know about a cell:

- ``forward(x_t, state) -> state``: one step; the first step gets ``state=None`` unless the
  cell has its own ``initial_state``;
- optionally ``initial_state(batch_size) -> state``: the state before the first step (a
  ``dtype=`` keyword may be accepted, never required);
- optionally ``output(state) -> h_t``: the hidden output read from a state. Without it, a
  Tensor state is its own output, a tuple's or list's is its first element (PyTorch's
  ``(h, c)`` order) and a dict's is its ``"h"`` entry;
- a ``hidden_size`` attribute (and ``input_size``) where a pattern sizes its layers from it.

A state is a Tensor (batch, hidden_size), or a tuple, list or dict of Tensors (nested as you
like). Any object that follows the protocol works — a plain :class:`~tinygrad_seq.nn.Module`
or a subclass of :class:`Cell`, which adds ``check_input`` and ``check_state``. A cell whose
state is a pair needs nothing but ``forward``::

    class MinimalLSTM(nn.Cell):
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size)

        def forward(self, x, state=None):
            h, c = state if state is not None else (self.check_state(x, None),) * 2
            i, f, g, o = self.gates(ts.cat([x, h], axis=1)).chunk(4, axis=1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()     # C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t
            return o.sigmoid() * c.tanh(), c                # (h_t, C_t): h_t is the output

The drivers reach a cell only through :func:`check_cell`, :func:`initial_state_of`,
:func:`step_of` and :func:`output_of`, so the protocol (and its error messages, which name the
method to add and show its signature) lives here and nowhere else.

The three cells use PyTorch's parameter names, shapes, gate order and initialisation, so a
``state_dict`` copied from ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` gives the same
numbers. Weights act on row vectors, as in PyTorch: ``x @ weight_ih.T`` is the lecture's U·x.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import DEFAULT_DTYPE, Tensor, zeros
from . import init
from .module import Module, Parameter

__all__ = [
    "Cell",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "State",
    "check_cell",
    "initial_state_of",
    "map_state",
    "output_of",
    "parameter_dtype",
    "size_of",
    "state_tensors",
    "step_of",
]

State = Any
"""A cell's state: a Tensor (batch, hidden_size), or a tuple, list or dict of them."""

FORWARD = "def forward(self, x_t, state=None) -> state"
INITIAL_STATE = "def initial_state(self, batch_size) -> state"
OUTPUT = "def output(self, state) -> Tensor"


class Cell(Module):
    """Base class of recurrent cells (see the module docstring for the Cell protocol).

    ``Cell(input_size, hidden_size)`` records the two sizes. Subclasses implement
    ``forward(x_t, state=None) -> state``, whatever the state's structure; the first step
    gets ``state=None`` unless the subclass overrides ``initial_state``. ``output`` reads
    h_t from a state as the protocol's default does (override it when h_t is elsewhere).
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
        """Zeros of shape (batch_size, hidden_size); ``dtype`` defaults to the parameters'.

        The drivers call it only when a subclass overrides it; otherwise the first step gets
        ``state=None``, which a cell with another state structure can read as it likes.
        """
        return zeros(batch_size, self.hidden_size, dtype=dtype or parameter_dtype(self))

    def output(self, state: State) -> Tensor:
        """The hidden output h_t of a state: the state itself, a tuple's first element
        (PyTorch's ``(h, c)`` order) or a dict's ``"h"`` entry."""
        return _default_output(self, state)

    def forward(self, x: Tensor, state: State = None) -> State:
        raise NotImplementedError(f"{type(self).__name__} does not define forward: add `{FORWARD}`")

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


# --------------------------------------------------------------------------- the protocol
# What the drivers (Recurrent, the patterns, truncated BPTT, gradient flow, the step drawing)
# know about a cell: these functions, and nothing else.


def check_cell(cell: Any, where: str) -> None:
    """A TypeError naming the method to add (with its signature) if ``cell`` breaks the protocol.

    Checked once, before any step runs: ``forward`` exists and takes ``(x_t, state)``, and
    ``initial_state`` and ``output``, where present, take ``(batch_size)`` and ``(state)``.
    """
    problem = (
        f"{where}: {type(cell).__name__} does not follow the Cell protocol (it is not a "
        "recurrent cell)"
    )
    if (
        not callable(cell)
        or not callable(getattr(cell, "forward", None))
        or _inherits(cell, "forward", (Module.forward, Cell.forward))
    ):
        raise TypeError(f"{problem}: it has no forward; add `{FORWARD}`")
    _check_arguments(cell, "forward", ("x_t", "state"), FORWARD, problem)
    if _has_own_initial_state(cell):
        _check_arguments(cell, "initial_state", ("batch_size",), INITIAL_STATE, problem)
    if callable(getattr(cell, "output", None)):
        _check_arguments(cell, "output", ("state",), OUTPUT, problem)


def initial_state_of(cell: Any, batch_size: int, dtype: Any = None) -> State:
    """The state before the first step: ``cell.initial_state(batch_size)``, or None without one.

    None (what PyTorch cells accept) is also the answer for a :class:`Cell` subclass that does
    not override ``initial_state``: its ``forward`` decides what a missing state means. The
    ``dtype`` is passed on when ``initial_state`` takes it; otherwise floating-point Tensors of
    the state are cast to it (differentiably, so a learned initial state still learns).
    """
    if not _has_own_initial_state(cell):
        return None
    method = cell.initial_state
    if dtype is not None and _accepts_keyword(method, "dtype"):
        state = method(batch_size, dtype=dtype)
    else:
        state = method(batch_size)
    if state is None:
        return None
    _check_is_state(cell, state, "initial_state(batch_size)", INITIAL_STATE)
    if dtype is None:
        return state
    dtype = np.dtype(dtype)
    return map_state(lambda t: t.astype(dtype) if t.dtype.kind == "f" else t, state)


def step_of(cell: Any, x_t: Tensor, state: State) -> State:
    """One step, ``cell(x_t, state)``, checked to return a state."""
    new = cell(x_t, state)
    _check_is_state(cell, new, "forward(x_t, state)", FORWARD)
    return new


def output_of(cell: Any, state: State) -> Tensor:
    """h_t of ``state``: ``cell.output(state)``, or the protocol's default without ``output``."""
    output = getattr(cell, "output", None)
    h = output(state) if callable(output) else _default_output(cell, state)
    if not isinstance(h, Tensor):
        raise TypeError(
            f"{type(cell).__name__}.output(state) returned {_describe(h)}, not a Tensor: "
            f"`{OUTPUT}` must return h_t, a Tensor (batch, hidden_size)"
        )
    return h


def size_of(cell: Any, name: str, where: str) -> int:
    """``cell.input_size`` or ``cell.hidden_size``, or an error saying to set it."""
    size = getattr(cell, name, None)
    if not isinstance(size, int | np.integer):
        meaning = "the size of h_t" if name == "hidden_size" else "the number of input features"
        raise TypeError(
            f"{where}: {type(cell).__name__} has no {name} ({meaning}), which sizes the layers "
            f"around the cell; set `self.{name} = ...` in its __init__ (nn.Cell does)"
        )
    return int(size)


def parameter_dtype(cell: Any) -> np.dtype:
    """The dtype of the cell's first parameter (the default dtype for a cell without any)."""
    parameters = getattr(cell, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.dtype if first is not None else np.dtype(DEFAULT_DTYPE)


def state_tensors(state: State) -> list[Tensor]:
    """The Tensors of a state, in order (a dict's in the order of its keys)."""
    found: list[Tensor] = []
    map_state(found.append, state)
    return found


def map_state(fn: Callable[..., Any], state: State, *others: State) -> State:
    """``fn`` applied to each Tensor of ``state`` (and the matching ones of ``others``).

    The result has the structure of ``state``: the same tuples (named ones too), lists and
    dicts around the results.
    """
    if isinstance(state, Tensor):
        return fn(state, *others)
    if isinstance(state, dict):
        return type(state)(
            (key, map_state(fn, value, *(other[key] for other in others)))
            for key, value in state.items()
        )
    if isinstance(state, tuple | list):
        parts = [map_state(fn, *group) for group in zip(state, *others, strict=True)]
        return type(state)(*parts) if hasattr(state, "_fields") else type(state)(parts)
    raise TypeError(
        f"a state holds Tensors, or tuples, lists and dicts of them; found {_describe(state)}"
    )


def _is_state(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    parts = list(value.values()) if isinstance(value, dict) else value
    return isinstance(parts, tuple | list) and bool(parts) and all(map(_is_state, parts))


def _check_is_state(cell: Any, value: Any, call: str, signature: str) -> None:
    if not _is_state(value):
        raise TypeError(
            f"{type(cell).__name__}.{call} returned {_describe(value)}, which is not a state: "
            f"`{signature}` must return a Tensor (batch, hidden_size), or a tuple, list or "
            "dict of Tensors"
        )


def _default_output(cell: Any, state: State) -> Tensor:
    """The protocol's h_t without ``output``: the state, its first element or its ``"h"``."""
    if isinstance(state, Tensor):
        return state
    if isinstance(state, tuple | list) and state and isinstance(state[0], Tensor):
        return state[0]
    if isinstance(state, dict) and isinstance(state.get("h"), Tensor):
        return state["h"]
    raise TypeError(
        f"{type(cell).__name__}: cannot tell h_t in a state that is {_describe(state)}; add "
        f"`{OUTPUT}` returning h_t (without it, h_t is a Tensor state itself, a tuple's first "
        "element or a dict's 'h')"
    )


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape}"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)}"
    if isinstance(value, tuple | list):
        kinds = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of {len(value)} ({kinds})"
    return f"a {type(value).__name__}"


def _inherits(cell: Any, name: str, defaults: tuple[Any, ...]) -> bool:
    """True if ``type(cell).name`` is one of the base classes' ``defaults``."""
    return getattr(type(cell), name, None) in defaults


def _has_own_initial_state(cell: Any) -> bool:
    return callable(getattr(cell, "initial_state", None)) and not _inherits(
        cell, "initial_state", (Cell.initial_state,)
    )


def _check_arguments(
    cell: Any, name: str, arguments: tuple[str, ...], signature: str, problem: str
) -> None:
    method = getattr(cell, name)
    try:
        parameters = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        parameters.bind(*arguments)
    except TypeError:
        call = f"{name}({', '.join(arguments)})"
        raise TypeError(
            f"{problem}: {name}{parameters} cannot be called as {call}; write `{signature}`"
        ) from None


def _accepts_keyword(method: Any, keyword: str) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == keyword and p.kind != p.POSITIONAL_ONLY or p.kind == p.VAR_KEYWORD
        for p in parameters
    )
