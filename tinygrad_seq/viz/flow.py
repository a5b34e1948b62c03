"""Gradient flow through time: how much of ∂L/∂h_T is left when it reaches h_t.

The lecture's argument for why a tanh RNN forgets: backpropagation through time multiplies
the error signal by one Jacobian per step,

    ∂L/∂h_{t−1} = (∂h_t/∂h_{t−1})ᵀ · ∂L/∂h_t,     ∂h_t/∂h_{t−1} = diag(1 − h_t²) · W,

so a loss at step T reaches step k through the product J_T J_{T−1} ⋯ J_{k+1}, whose norm
shrinks like (σ_max(W))^{T−k}. The LSTM adds the cell path ∂C_t/∂C_{t−1} = diag(f_t). This
module measures those quantities on a real model with the library's own autograd:

- :func:`gradient_flow` — one forward and one backward; ‖∂L/∂h_t‖ (and ‖∂L/∂C_t‖) per time
  step, per example and averaged over the batch;
- :func:`step_jacobians`, :func:`jacobian_norms` — the per-step Jacobians J_t and ‖J_t‖₂;
- :func:`jacobian_product_spectrum` — singular values of ∂z_T/∂z_{T−k} for k = 1, 2, …;
- :class:`FlowRecorder` — the flow on a fixed probe batch, every N steps of training.

**What is measured.** ``model`` is a :class:`~tinygrad_seq.nn.Recurrent` (any cell of the
Cell protocol) or an ``RNN`` / ``LSTM`` / ``GRU`` layer. For a layer, the *top layer's last
direction* is measured (``layer.states[-1]``; the reverse direction when bidirectional).
Time steps are positions in the sequence: ``hidden_norms[t]`` belongs to the state after
reading x_t (for a reverse direction, after reading x_{T−1} … x_t).

**h and C in a cell's state.** A state that is one Tensor is h_t itself. A state that is a
tuple (or a list or dict) has its h_t found by identity: the element that
``cell.output(state)`` returns (for the LSTM, ``h`` of ``(h, C)``; without ``output``, the
protocol's default); the remaining elements form the "cell" part — C_t for the LSTM. With
more than one remaining element, ``cell_norms`` is the norm of their gradients concatenated
(in the state's order). Each is the *total* derivative with respect to that tensor of the graph: C_t
is made before h_t = o_t ⊙ tanh(C_t) reads it, so ∂L/∂C_t includes that path, as BPTT's
δC_t = δh_t ⊙ o_t ⊙ (1 − tanh²C_t) + δC_{t+1} ⊙ f_{t+1} does (bumping C_t *after* the step
would miss it). A cell whose ``output`` returns a new tensor rather than one of the state's
elements cannot be measured (a ValueError says so): the derivative with respect to a read-out
is not the derivative that travels through the recurrence.

**Nothing of yours is touched.** Every measurement runs on a deep copy of the model (cast to
``dtype`` when given, in eval mode so that dropout draws no random numbers, every parameter
requiring grad), and gradients are taken with :func:`tinygrad_seq.grad`, so no ``.grad``
anywhere changes — neither yours nor the copy's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd import enable_grad, grad, no_grad
from ..nn.cells import initial_state_of, map_state, output_of, state_tensors
from ..nn.recurrent import Recurrent, _RecurrentLayer
from ..tensor import Tensor, zeros_like

__all__ = [
    "FlowRecorder",
    "GradientFlow",
    "gradient_flow",
    "jacobian_norms",
    "jacobian_product_spectrum",
    "step_jacobians",
]

LossFn = Callable[[Tensor, Any], Tensor]


@dataclass(frozen=True, repr=False)
class GradientFlow:
    """The gradient of one loss with respect to every hidden state of one sequence batch.

    With B examples, T steps and hidden size H:

    - ``hidden_grads`` (T, B, H): ∂L/∂h_t, the *total* derivative — through every path from
      h_t on (the recurrence into h_{t+1}, …, and the output at t and later);
    - ``per_example_hidden`` (T, B): ‖∂L/∂h_t‖₂ for each example;
    - ``hidden_norms`` (T,): the mean over the batch of ``per_example_hidden``;
    - ``cell_grads``, ``per_example_cell``, ``cell_norms``: the same for C_t when the state
      has a cell part (LSTM), otherwise None;
    - ``loss``: the loss value, as a float.

    All arrays are float64 (computed in the model's dtype, or in ``dtype`` if one was given).
    """

    hidden_grads: np.ndarray
    per_example_hidden: np.ndarray
    hidden_norms: np.ndarray
    cell_grads: np.ndarray | None
    per_example_cell: np.ndarray | None
    cell_norms: np.ndarray | None
    loss: float

    @property
    def seq_len(self) -> int:
        return int(self.hidden_norms.shape[0])

    def log_ratio(self, part: str = "hidden") -> np.ndarray:
        """r_t = mean over the batch of log₁₀(‖∂L/∂x_t‖ / ‖∂L/∂x_T‖), shape (T,).

        ``part`` is ``"hidden"`` (x = h) or ``"cell"`` (x = C). Averaging logs (a geometric
        mean) keeps a few examples from dominating; dividing by the last step removes the
        loss's overall scale. A zero norm gives −∞ (an underflowed gradient), 0/0 gives NaN.
        """
        norms = self.per_example_hidden if part == "hidden" else self.per_example_cell
        if part not in ("hidden", "cell") or norms is None:
            choices = "'hidden'" + (" or 'cell'" if self.cell_norms is not None else "")
            raise ValueError(f"log_ratio: part must be {choices}, got {part!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.mean(np.log10(norms) - np.log10(norms[-1:]), axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The norms and the loss as plain lists and floats (for ``json.dump``)."""
        return {
            "loss": self.loss,
            "hidden_norms": self.hidden_norms.tolist(),
            "cell_norms": None if self.cell_norms is None else self.cell_norms.tolist(),
        }

    def __repr__(self) -> str:
        batch = self.per_example_hidden.shape[1]
        cell = "" if self.cell_norms is None else ", with cell state"
        return f"<GradientFlow: {self.seq_len} steps, batch {batch}{cell}, loss {self.loss:.4g}>"


def gradient_flow(
    model: Any,
    x: Any,
    loss_fn: LossFn,
    dtype: Any = None,
    *,
    lengths: Any = None,
) -> GradientFlow:
    """Run ``model`` on ``x`` once, backpropagate ``loss_fn``, and measure ‖∂L/∂h_t‖ per step.

    ``loss_fn(output, final_state)`` receives what the model returns — ``(outputs,
    final_state)`` of a ``Recurrent``, ``(output, h_n)`` of a layer — and returns the scalar
    loss L. For the vanishing-gradient picture put the loss at the last step only (then
    ∂L/∂h_{t−1} = J_tᵀ ∂L/∂h_t exactly); with a loss at every step, ∂L/∂h_t also holds the
    local term of step t and does not decay.

    ``dtype=np.float64`` measures on a float64 copy of the model (recommended: ratios of
    10⁻³⁰ are common, and float32 underflows near 10⁻³⁸); ``x`` is cast to it too.
    ``lengths`` is passed to the model (padded steps carry the state, so their gradient is
    the one of the state carried). See the module docstring for what is measured and how h
    and C are told apart. Cost: one forward and one backward of the model.
    """
    measured, cell = _measured_copy(model, dtype)
    x = _as_input(x, dtype)
    with enable_grad():
        result = measured(x, lengths=lengths, keep_states=True)
        states = _kept_states(measured)
        loss = loss_fn(*result)
        _check_loss(loss)
        hidden = [_split_state(cell, state)[0] for state in states]
        rest = [_split_state(cell, state)[1] for state in states]
        width = len(rest[0])
        wanted = hidden + [element for elements in rest for element in elements]
        grads = _grads_or_zeros(loss, wanted)

    T = len(states)
    hidden_grads = np.stack(grads[:T]).astype(np.float64)
    per_example_hidden = _norms(hidden_grads)
    cell_grads = per_example_cell = cell_norms = None
    if width:
        by_step = [grads[T + t * width : T + (t + 1) * width] for t in range(T)]
        cell_grads = np.stack([np.concatenate(g, axis=-1) for g in by_step]).astype(np.float64)
        per_example_cell = _norms(cell_grads)
        cell_norms = per_example_cell.mean(axis=1)
    return GradientFlow(
        hidden_grads=hidden_grads,
        per_example_hidden=per_example_hidden,
        hidden_norms=per_example_hidden.mean(axis=1),
        cell_grads=cell_grads,
        per_example_cell=per_example_cell,
        cell_norms=cell_norms,
        loss=float(loss.data.reshape(())),
    )


# --------------------------------------------------------------------------- Jacobians


def step_jacobians(
    model: Any, x: Any, *, part: str = "state", dtype: Any = np.float64
) -> np.ndarray:
    """The one-step Jacobians J_t = ∂z_t/∂z_{t−1}, shape (T, B, S, S), one per example.

    z_t is the state the Jacobian acts on: with ``part="state"`` (the default) the whole
    state, h_t followed by the cell part — for the LSTM z_t = (h_t, C_t), S = 2H, the matrix
    whose products carry the gradient through time (both the h path and the C path);
    with ``part="h"`` only h_t (S = H), holding the rest of the previous state fixed — for
    the LSTM that is the partial ∂h_t/∂h_{t−1} at constant C_{t−1}, whose products are
    *not* ∂h_T/∂h_k (they miss the cell path). For an RNN or GRU both are the same.
    Row i of J_t[b] is ∂z_t[i]/∂z_{t−1} for example b; J_0 is taken at the initial state
    (zeros for a cell whose first step gets ``state=None``).
    For a reverse direction, "previous" means the step read before: J_t = ∂z_t/∂z_{t+1}.

    Computed with the library's autograd, row by row, all rows at once: the batch is
    repeated S times, copy i of the state after the step is seeded with the unit vector
    e_i, and one backward through that single step gives row i for every example. Cost per
    time step: one forward and one backward of the cell on S·B rows, memory O(S²·B); in
    all O(T·S·B) cell rows. It assumes, as every cell does, that examples do not interact.
    """
    if part not in ("state", "h"):
        raise ValueError(f"step_jacobians: part must be 'state' or 'h', got {part!r}")
    measured, cell = _measured_copy(model, dtype)
    x = _as_input(x, dtype)
    with no_grad():  # only the states' values are needed: each step is redone below
        measured(x, keep_states=True)
    states = _kept_states(measured)
    inputs = _cell_inputs(measured, x)
    reverse = _reads_backwards(measured)
    T = len(states)
    order = list(reversed(range(T))) if reverse else list(range(T))
    B = inputs[0].shape[0]
    previous = initial_state_of(cell, B, inputs[0].dtype)
    if previous is None:
        previous = map_state(zeros_like, states[order[0]])
    jacobians = []
    for t in order:
        jacobians.append(_one_step_jacobian(cell, inputs[t], previous, part))
        previous = states[t]
    if reverse:
        jacobians.reverse()
    return np.stack(jacobians)


def jacobian_norms(
    model: Any, x: Any, *, part: str = "state", dtype: Any = np.float64
) -> np.ndarray:
    """‖J_t‖₂ = σ_max(∂z_t/∂z_{t−1}) per step and example, shape (T, B).

    ``part`` as in :func:`step_jacobians` (the whole state by default; ``"h"`` for the
    partial ∂h_t/∂h_{t−1}). Cost: that of :func:`step_jacobians` plus one small SVD per
    step and example.
    """
    jacobians = step_jacobians(model, x, part=part, dtype=dtype)
    return np.linalg.norm(jacobians, ord=2, axis=(-2, -1))


def jacobian_product_spectrum(
    model: Any,
    x: Any,
    *,
    max_lag: int | None = None,
    part: str = "state",
    dtype: Any = np.float64,
    per_example: bool = False,
) -> np.ndarray:
    """Singular values of P_k = ∂z_T/∂z_{T−k} = J_T J_{T−1} ⋯ J_{T−k+1} for k = 1 … K.

    Returns (K, S), row k−1 the singular values of P_k in decreasing order, each the
    geometric mean over the batch (the values span decades; a zero gives 0); with
    ``per_example=True`` (K, B, S). K = ``max_lag`` or T (k = T reaches the initial state).
    T is the last step read (position 0 for a reverse direction). ``part`` as in
    :func:`step_jacobians`: the full state (h, C) by default, float64 by default.

    The products are formed by plain matrix multiplication, so a singular value smaller
    than about 10⁻¹⁵·σ₁ of the same product is rounding noise, and values below about
    10⁻³⁰⁰ underflow to 0. Cost: :func:`step_jacobians` plus K products and SVDs of S×S
    matrices per example.
    """
    jacobians = step_jacobians(model, x, part=part, dtype=dtype)
    T = jacobians.shape[0]
    if max_lag is None:
        max_lag = T
    if not isinstance(max_lag, int | np.integer) or not 1 <= max_lag <= T:
        raise ValueError(
            f"jacobian_product_spectrum: max_lag must be an int in [1, {T}] (the number of "
            f"steps), got {max_lag!r}"
        )
    reverse = _reads_backwards(model)
    chain = list(jacobians) if reverse else list(jacobians[::-1])  # J_T first
    product = chain[0]
    spectra = [np.linalg.svd(product, compute_uv=False)]
    for jacobian in chain[1:max_lag]:
        product = product @ jacobian
        spectra.append(np.linalg.svd(product, compute_uv=False))
    values = np.stack(spectra)  # (K, B, S)
    if per_example:
        return values
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(values), axis=1))


# --------------------------------------------------------------------------- recording


class FlowRecorder:
    """Measure the gradient flow on a fixed probe batch every ``every`` training steps.

    Call :meth:`step` once per training step (before or after the update, consistently)::

        recorder = FlowRecorder(model.encoder, probe_x, probe_loss, every=25)
        for step in range(steps):
            ...
            recorder.step(step)

    Each record runs :func:`gradient_flow` (one forward and backward on the probe batch, on
    a copy of the model, in ``dtype``). ``steps`` (n,), ``hidden`` (n, T), ``cell`` (n, T)
    or None, ``losses`` (n,) and ``flows`` (the full :class:`GradientFlow` objects) hold
    what was recorded; :meth:`to_dict` gives it as lists for JSON.
    """

    def __init__(
        self,
        model: Any,
        probe_x: Any,
        loss_fn: LossFn,
        every: int = 10,
        dtype: Any = np.float64,
        *,
        lengths: Any = None,
    ) -> None:
        if not isinstance(every, int | np.integer) or isinstance(every, bool) or every < 1:
            raise ValueError(f"FlowRecorder: every must be a positive int, got {every!r}")
        self.model, self.probe_x, self.loss_fn = model, probe_x, loss_fn
        self.every, self.dtype, self.lengths = int(every), dtype, lengths
        self.flows: list[GradientFlow] = []
        self._steps: list[int] = []

    def step(self, step_index: int, force: bool = False) -> GradientFlow | None:
        """Record when ``step_index`` is a multiple of ``every`` (or ``force``); return it."""
        if not force and step_index % self.every:
            return None
        flow = gradient_flow(
            self.model, self.probe_x, self.loss_fn, self.dtype, lengths=self.lengths
        )
        self.flows.append(flow)
        self._steps.append(int(step_index))
        return flow

    def __len__(self) -> int:
        return len(self.flows)

    @property
    def steps(self) -> np.ndarray:
        return np.array(self._steps, dtype=np.int64)

    @property
    def hidden(self) -> np.ndarray:
        """(n_records, T): ``hidden_norms`` of each record."""
        return self._stacked("hidden_norms")

    @property
    def cell(self) -> np.ndarray | None:
        """(n_records, T): ``cell_norms`` of each record, or None without a cell state."""
        if self.flows and self.flows[0].cell_norms is None:
            return None
        return self._stacked("cell_norms")

    @property
    def losses(self) -> np.ndarray:
        return np.array([flow.loss for flow in self.flows], dtype=np.float64)

    def _stacked(self, field: str) -> np.ndarray:
        if not self.flows:
            return np.zeros((0, 0))
        return np.stack([getattr(flow, field) for flow in self.flows])

    def to_dict(self) -> dict[str, Any]:
        """``{"every", "steps", "loss", "hidden", "cell"}`` as lists (``cell`` may be None).

        Non-finite norms stay floats (``json.dump`` writes them as NaN / Infinity).
        """
        cell = self.cell
        return {
            "every": self.every,
            "steps": self.steps.tolist(),
            "loss": self.losses.tolist(),
            "hidden": self.hidden.tolist(),
            "cell": None if cell is None else cell.tolist(),
        }

    def __repr__(self) -> str:
        return f"<FlowRecorder: {len(self)} records, every {self.every} steps>"


# --------------------------------------------------------------------------- helpers


def _measured_copy(model: Any, dtype: Any) -> tuple[Any, Any]:
    """A private copy of ``model`` to measure, and the cell whose states are measured."""
    if not isinstance(model, Recurrent | _RecurrentLayer):
        raise TypeError(
            f"gradient flow: model must be a Recurrent or an RNN/LSTM/GRU layer, got "
            f"{type(model).__name__}; wrap a cell as Recurrent(cell), or pass model.encoder "
            "for the course's patterns"
        )
    # States kept from an earlier call would drag their whole graph into the copy: skip them.
    kept = getattr(model, "states", None)
    measured = copy.deepcopy(model, memo={} if kept is None else {id(kept): None})
    if dtype is not None:
        measured.to(dtype)
    # Deterministic, and the user's generator is not advanced (the copy has its own).
    measured.eval()
    # Frozen weights would leave the states without a graph: the copy learns nothing anyway.
    measured.requires_grad_(True)
    if getattr(measured, "fused", False):
        measured.fused = False  # fused kernels keep no per-step states
    if isinstance(measured, Recurrent):
        return measured, measured.cell
    return measured, measured.cell(measured.num_layers - 1, measured.num_directions - 1)


def _reads_backwards(model: Any) -> bool:
    if isinstance(model, Recurrent):
        return bool(model.reverse)
    return model.num_directions == 2


def _as_input(x: Any, dtype: Any) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    return x.detach() if dtype is None else Tensor(x.data.astype(dtype))


def _kept_states(measured: Any) -> list[Any]:
    return measured.states if isinstance(measured, Recurrent) else measured.states[-1]


def _cell_inputs(measured: Any, x: Tensor) -> list[np.ndarray]:
    """x_t as the measured cell reads it, per position t: (B, input) arrays.

    For a layer's top cell that is the layer below's output (both directions concatenated),
    rebuilt from its kept states; the copy runs in eval mode, so no dropout was applied.
    """
    if isinstance(measured, Recurrent):
        data = x.data.swapaxes(0, 1) if measured.batch_first else x.data
        return list(data)
    if measured.num_layers == 1:
        data = x.data.swapaxes(0, 1) if measured.batch_first else x.data
        return list(data)
    directions = measured.num_directions
    below = measured.states[(measured.num_layers - 2) * directions :][:directions]
    cells = [measured.cell(measured.num_layers - 2, d) for d in range(directions)]
    T = len(below[0])
    return [
        np.concatenate(
            [output_of(c, states[t]).data for c, states in zip(cells, below, strict=True)],
            axis=1,
        )
        for t in range(T)
    ]


def _split_state(cell: Any, state: Any) -> tuple[Tensor, list[Tensor]]:
    """(h_t, [the other elements]) of a state; see the module docstring."""
    if isinstance(state, Tensor):
        return state, []
    elements = state_tensors(state)
    h = output_of(cell, state)
    for index, element in enumerate(elements):
        if element is h:
            return h, elements[:index] + elements[index + 1 :]
    raise ValueError(
        f"gradient flow: {type(cell).__name__}.output(state) returned a tensor that is not one "
        f"of the {len(elements)} tensors of the state, so h_t cannot be found in the state; "
        "make output(state) return the state element that is h_t (as LSTMCell does)"
    )


def _grads_or_zeros(loss: Tensor, tensors: list[Tensor]) -> list[np.ndarray]:
    """∂L/∂tensor for each tensor (zeros where L does not depend on it), as arrays."""
    needed = [k for k, t in enumerate(tensors) if t.requires_grad]
    grads: list[np.ndarray] = [np.zeros(t.shape, dtype=t.dtype) for t in tensors]
    if needed:
        found = grad(loss, [tensors[k] for k in needed], allow_unused=True)
        for k, g in zip(needed, found, strict=True):
            if g is not None:
                grads[k] = g.data
    return grads


def _norms(grads: np.ndarray) -> np.ndarray:
    """Per-example L2 norms of (T, B, ...) gradients: shape (T, B)."""
    T, B = grads.shape[:2]
    return np.linalg.norm(grads.reshape(T, B, -1), axis=2)


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(
            f"gradient flow: loss_fn must return a scalar Tensor, got {type(loss).__name__}"
        )
    if loss.size != 1:
        raise ValueError(
            f"gradient flow: loss_fn must return a scalar Tensor, got shape {loss.shape}; "
            "reduce it (for example .sum() or .mean())"
        )
    if not loss.requires_grad:
        raise ValueError(
            "gradient flow: the loss does not depend on the model's output (it has no graph); "
            "compute it from the output or final state that loss_fn receives"
        )


def _one_step_jacobian(cell: Any, x_t: np.ndarray, previous: Any, part: str) -> np.ndarray:
    """∂z_t/∂z_{t−1} at state ``previous`` and input ``x_t``: (B, S, S); see step_jacobians."""
    B = x_t.shape[0]
    prev_h, prev_rest = _split_state(cell, previous)
    measured_prev = [prev_h] + (prev_rest if part == "state" else [])
    widths = [t.shape[-1] for t in measured_prev]
    S = sum(widths)
    # Repeat the batch S times; copy i will carry the seed e_i (row i of the Jacobian).
    tiled = {id(t): Tensor(np.tile(t.data, (S, 1)), requires_grad=True) for t in measured_prev}

    def tile(t: Tensor) -> Tensor:
        return tiled[id(t)] if id(t) in tiled else Tensor(np.tile(t.data, (S, 1)))

    state_in = map_state(tile, previous)
    with enable_grad():
        state_out = cell(Tensor(np.tile(x_t, (S, 1))), state_in)
        out_h, out_rest = _split_state(cell, state_out)
        outputs = [out_h] + (out_rest if part == "state" else [])
        seeds, offset = [], 0
        for out in outputs:
            width = out.shape[-1]
            seed = np.zeros((S, B, width), dtype=out.dtype)
            rows = np.arange(offset, offset + width)
            seed[rows, :, rows - offset] = 1.0
            seeds.append(Tensor(seed.reshape(S * B, width)))
            offset += width
        if offset != S:
            raise ValueError(
                f"step_jacobians: the state after a step has {offset} values per example but "
                f"the state before it has {S}; a Jacobian needs the same state layout"
            )
        wanted = [tiled[id(t)] for t in measured_prev]
        found = grad(outputs, wanted, grad_outputs=seeds, allow_unused=True)
    rows_by_input = [
        np.zeros((S, B, w)) if g is None else g.data.reshape(S, B, w)
        for g, w in zip(found, widths, strict=True)
    ]
    # (S_out, B, S_in) -> (B, S_out, S_in)
    return np.concatenate(rows_by_input, axis=-1).transpose(1, 0, 2).astype(np.float64)
