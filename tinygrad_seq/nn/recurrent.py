"""Running cells over sequences: the ``Recurrent`` driver and the RNN, LSTM and GRU layers.

``Recurrent(cell)`` unrolls any cell of the Cell protocol (see :mod:`.cells`) over time:

    state_0 = state (or cell.initial_state(B), or None),   state_t = cell(x_t, state_{t−1}),
    outputs[t] = cell.output(state_t).

Backpropagation through time needs nothing more: the unrolled loop is an ordinary graph, and
the engine sums the gradients of the weights over the steps that share them.

``RNN``, ``LSTM`` and ``GRU`` stack such drivers the way ``torch.nn`` does (layers,
directions, dropout between layers) with PyTorch's parameter names and return values, so a
``state_dict`` copied from PyTorch gives the same numbers. By default (``fused=True``) each
layer and direction runs as one fused kernel (:mod:`tinygrad_seq.kernels`), which computes
the same numbers as the driver with a hand-derived backward; ``fused=False`` runs the cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import kernels
from ..tensor import Tensor, default_generator, zeros_like
from .cells import (
    Cell,
    GRUCell,
    LSTMCell,
    RNNCell,
    State,
    check_cell,
    initial_state_of,
    map_state,
    output_of,
    step_of,
)
from .module import Module

__all__ = ["GRU", "LSTM", "RNN", "Recurrent"]


class Recurrent(Module):
    """Drive ``cell`` over a sequence: ``forward(x, state=None, lengths=None, keep_states=False)``.

    ``x`` is (T, B, D), or (B, T, D) with ``batch_first``. Returns ``(outputs, final_state)``:
    ``outputs`` stacks ``cell.output(state_t)`` over the steps, (T, B, H) (or (B, T, H)), and
    ``final_state`` is the state after the last step, shaped as the cell's state. ``cell`` is
    any object of the Cell protocol (a :class:`Cell` or a plain Module): without ``state``
    the first step gets ``cell.initial_state(B)`` if the cell has its own, else None.

    ``reverse=True`` reads the sequence backwards, from x_{T−1} to x_0; ``outputs[t]`` is
    still the output at position t (the state after reading x_{T−1} … x_t).

    **Variable lengths.** ``lengths`` (B,) gives each sequence's true length (0 ≤ L_b ≤ T);
    steps t ≥ L_b are padding. At a padded step the state is carried unchanged
    (``ts.where`` with the step's mask), so padding never changes the final state and
    receives exactly zero gradient, and the output there is zero. ``final_state`` is
    therefore each sequence's state after its own last step. With ``reverse=True`` each
    sequence is read backwards within its own length (from x_{L_b−1} down to x_0), as
    PyTorch's packed sequences do; its final state is the state at position 0. A sequence
    that has not started yet while others have (the padding read first when reversed) holds
    a state of zeros, even for a cell whose first step would get None.

    **Per-step states.** With ``keep_states=True``, ``self.states`` is set to the list of
    the T states, indexed by time position (``states[t]`` is the state after reading x_t;
    at a padded step it is the carried state). They are the graph's own tensors, so after
    ``s.retain_grad()`` and ``backward()`` (or with ``ts.grad(loss, states)``) they give
    ∂L/∂state_t — the total derivative through every later step. Otherwise ``self.states``
    is None.
    """

    def __init__(self, cell: Any, batch_first: bool = False, reverse: bool = False) -> None:
        super().__init__()
        check_cell(cell, "Recurrent")
        self.cell = cell
        self.batch_first = batch_first
        self.reverse = reverse
        self.states: list[State] | None = None

    def forward(
        self,
        x: Tensor,
        state: State = None,
        lengths: Any = None,
        keep_states: bool = False,
    ) -> tuple[Tensor, State]:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3:
            layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
            raise ValueError(f"Recurrent: input must be {layout}, got shape {x.shape}")
        if self.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[:2]
        if T == 0:
            raise ValueError(f"Recurrent: the sequence has no time steps (input shape {x.shape})")
        valid = None if lengths is None else _step_masks(lengths, T, B)
        cell = self.cell
        if state is None:
            state = initial_state_of(cell, B, x.dtype)

        outputs: list[Tensor | None] = [None] * T
        states: list[State] = [None] * T
        for t in reversed(range(T)) if self.reverse else range(T):
            if valid is None or valid[t].all():
                state = step_of(cell, x[t], state)  # state_t = cell(x_t, state_{t−1})
                outputs[t] = output_of(cell, state)  # h_t = cell.output(state_t)
            elif valid[t].any() or state is None:
                # Some sequences have ended (or not begun): they keep their state, output zeros.
                state = _select(valid[t], step_of(cell, x[t], state), state)
                outputs[t] = F.where(_column(valid[t], 2), output_of(cell, state), 0.0)
            else:  # every sequence has ended: nothing to compute
                outputs[t] = zeros_like(output_of(cell, state))
            states[t] = state

        self.states = states if keep_states else None
        out = F.stack(outputs, axis=0)
        return (out.transpose(0, 1) if self.batch_first else out), state

    def extra_repr(self) -> str:
        flags = [f"{name}=True" for name in ("batch_first", "reverse") if getattr(self, name)]
        return ", ".join(flags)


def _step_masks(lengths: Any, T: int, B: int) -> np.ndarray:
    """(T, B) bool: ``valid[t, b]`` is True while step t is inside sequence b."""
    lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if lengths.shape != (B,) or (lengths.size and lengths.dtype.kind not in "iu"):
        raise ValueError(
            f"Recurrent: lengths must be {B} integers (one per sequence of the batch), got "
            f"shape {lengths.shape} and dtype {lengths.dtype}"
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(
            f"Recurrent: lengths must lie in [0, {T}] (the padded length), got {lengths.tolist()}"
        )
    return np.arange(T)[:, None] < lengths[None, :]


def _column(mask: np.ndarray, ndim: int) -> np.ndarray:
    """A (B,) mask shaped (B, 1, …) to broadcast against a tensor of ``ndim`` dimensions."""
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def _select(mask: np.ndarray, new: State, old: State) -> State:
    """``new`` for the sequences where ``mask`` is True, ``old`` (None: zeros) elsewhere."""
    if old is None:
        old = map_state(zeros_like, new)
    return map_state(lambda n, o: F.where(_column(mask, n.ndim), n, o), new, old)


# --------------------------------------------------------------------------- the layers

_PARAMETER_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class _RecurrentLayer(Module):
    """Stacked, optionally bidirectional recurrent layers, as ``torch.nn.RNNBase``.

    Layer k, direction d runs its own cell through a :class:`Recurrent`; its parameters are
    registered here under PyTorch's flat names ``weight_ih_l{k}{suffix}`` and so on (suffix
    ``_reverse`` for d = 1), and are the very Parameter objects of that cell. Layer 0 takes
    ``input_size`` features, layer k > 0 the H (or 2H, both directions concatenated) outputs
    of layer k − 1.

    ``fused=True`` (the default) runs each layer and direction as one fused kernel;
    ``fused=False`` runs the cells through :class:`Recurrent` (the teaching path, and the
    one whose gradient can be differentiated again). Both give the same numbers.
    """

    _cell_type: type[Cell]
    _kernel: Any

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        fused: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
        **cell_options: Any,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_layers, int | np.integer) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be between 0 and 1, got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.fused = bidirectional, fused
        self.num_directions = 2 if bidirectional else 1
        self.rng = rng
        self._cells: list[Cell] = []  # private, one per (layer, direction): not sub-modules
        self._owner: dict[str, tuple[Cell, str]] = {}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                cell = self._cell_type(
                    layer_input, hidden_size, bias=bias, dtype=dtype, rng=rng, **cell_options
                )
                self._cells.append(cell)
                suffix = "_reverse" if direction else ""
                for param in _PARAMETER_NAMES:
                    if getattr(cell, param) is not None:
                        flat = f"{param}_l{layer}{suffix}"
                        setattr(self, flat, getattr(cell, param))
                        self._owner[flat] = (cell, param)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        # ``layer.weight_hh_l0 = Parameter(...)`` must reach the cell that uses it.
        owner = self.__dict__.get("_owner", {}).get(name)
        if owner is not None:
            setattr(*owner, value)

    def cell(self, layer: int = 0, direction: int = 0) -> Cell:
        """The cell of layer ``layer`` and direction ``direction`` (1 is the reverse one)."""
        if not (0 <= layer < self.num_layers and 0 <= direction < self.num_directions):
            raise IndexError(
                f"{type(self).__name__}: no cell for layer {layer}, direction {direction} "
                f"({self.num_layers} layers, {self.num_directions} directions)"
            )
        return self._cells[layer * self.num_directions + direction]

    def forward(
        self,
        x: Tensor,
        hx: Any = None,
        lengths: Any = None,
        keep_states: bool = False,
    ) -> tuple[Tensor, Any]:
        """``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``), with PyTorch's shapes.

        ``x`` is (T, B, D) (or (B, T, D) with ``batch_first``); ``output`` holds the top
        layer's h_t for every step, both directions concatenated: (T, B, num_directions·H).
        ``hx`` and ``h_n`` are (num_layers·num_directions, B, H), ordered layer by layer,
        forward direction first. ``lengths`` (B,) as in :class:`Recurrent`: padded outputs are
        zero and h_n is each sequence's state at its own end. With ``keep_states`` the
        per-step states are kept in ``self.states``, one list per (layer, direction) in
        h_n's order (``self.states[-1]`` belongs to the top layer's last direction); they
        are the cells' own tensors, so ``keep_states=True`` runs the cells even when fused.
        """
        name = type(self).__name__
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3:
            layout = (
                "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
            )
            raise ValueError(
                f"{name}: input must be {layout} with input_size={self.input_size}, got shape "
                f"{x.shape}"
            )
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: input has shape {x.shape}, so {x.shape[2]} features, but "
                f"input_size is {self.input_size}"
            )
        if self.batch_first:
            x = x.transpose(0, 1)
        initial = self._initial_states(hx, x.shape[1])
        fused = self.fused and not keep_states
        valid = None if lengths is None or not fused else _step_masks(lengths, *x.shape[:2])

        finals: list[State] = []
        kept: list[list[State]] = []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                rng = self.rng if self.rng is not None else default_generator()
                layer_input = F.dropout(layer_input, self.dropout, True, rng)
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                if fused:
                    out, final = self._run_kernel(
                        layer_input, initial[k], self._cells[k], direction == 1, valid
                    )
                else:
                    driver = Recurrent(self._cells[k], reverse=direction == 1)
                    out, final = driver(layer_input, initial[k], lengths, keep_states)
                    kept.append(driver.states)
                outputs.append(out)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else F.cat(outputs, axis=2)

        self.states = kept if keep_states else None
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        return output, self._stack_finals(finals)

    def _run_kernel(
        self, x: Tensor, state: State, cell: Cell, reverse: bool, valid: np.ndarray | None
    ) -> tuple[Tensor, State]:
        """One layer and direction through the fused kernel: (outputs, final state)."""
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return type(self)._kernel(x, state, *weights, reverse=reverse, valid=valid)

    # The state layout differs between LSTM ((h, c)) and the others (h): subclasses adapt.

    def _initial_states(self, hx: Any, batch: int) -> list[State]:
        if hx is None:
            return [None] * len(self._cells)
        return list(self._split_state(hx, "hx", batch))

    def _split_state(self, h: Any, name: str, batch: int) -> list[Tensor]:
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if not isinstance(h, Tensor) or h.shape != expected:
            found = h.shape if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {expected} = (num_layers * "
                f"num_directions, batch, hidden_size), got {found}"
            )
        return list(h)

    def _stack_finals(self, finals: list[State]) -> Any:
        return F.stack(finals, axis=0)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        if not self.fused:
            text += ", fused=False"
        return text


class RNN(_RecurrentLayer):
    """A stack of Elman layers, s_t = tanh(U·x_t + W·s_{t−1} + β_s), as ``torch.nn.RNN``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, *, fused=True)`` — PyTorch's argument
    order.
    ``forward(x, hx=None, lengths=None) -> (output, h_n)``; see ``_RecurrentLayer.forward``.
    """

    _cell_type = RNNCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        fused: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            fused=fused,
            dtype=dtype,
            rng=rng,
            nonlinearity=nonlinearity,
        )
        self.nonlinearity = nonlinearity

    def _run_kernel(
        self, x: Tensor, state: State, cell: Cell, reverse: bool, valid: np.ndarray | None
    ) -> tuple[Tensor, State]:
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return kernels.rnn(
            x, state, *weights, nonlinearity=self.nonlinearity, reverse=reverse, valid=valid
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else text + f", nonlinearity={self.nonlinearity}"


class LSTM(_RecurrentLayer):
    """A stack of LSTM layers (gates i, f, g, o), as ``torch.nn.LSTM``.

    ``forward(x, hx=None, lengths=None) -> (output, (h_n, c_n))``, where ``hx`` is
    ``(h_0, c_0)``, each (num_layers·num_directions, B, H).
    """

    _cell_type = LSTMCell
    _kernel = kernels.lstm

    def _initial_states(self, hx: Any, batch: int) -> list[State]:
        if hx is None:
            return [None] * len(self._cells)
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            raise TypeError(f"LSTM: hx must be a pair (h_0, c_0), got {type(hx).__name__}")
        hs, cs = self._split_state(hx[0], "h_0", batch), self._split_state(hx[1], "c_0", batch)
        return list(zip(hs, cs, strict=True))

    def _stack_finals(self, finals: list[State]) -> tuple[Tensor, Tensor]:
        return F.stack([h for h, _ in finals], axis=0), F.stack([c for _, c in finals], axis=0)


class GRU(_RecurrentLayer):
    """A stack of GRU layers (gates r, z, n, PyTorch's formula), as ``torch.nn.GRU``.

    ``forward(x, hx=None, lengths=None) -> (output, h_n)``.
    """

    _cell_type = GRUCell
    _kernel = kernels.gru
