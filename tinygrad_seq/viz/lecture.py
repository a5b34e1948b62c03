"""One step of a cell at op level, with the lecture's names on the nodes.

``draw_cell_step(LSTMCell(3, 4))`` draws every op of C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t and
h_t = o_t ⊙ tanh(C_t), with U, W, β on the weights, the four gate blocks of the stacked
pre-activation, and f_t, i_t, C̃_t, C_t, o_t, h_t on the ops that compute them. The Elman
cell's state is s_t, and its two PyTorch biases are drawn as the one β_s = bias_ih + bias_hh
of s_t = tanh(U·x_t + W·s_{t−1} + β_s); with ``head=`` (a ``Linear``) the output layer
o_t = V·s_t + β_o (``softmax=True``: o_t = softmax(V·s_t + β_o)) is drawn too. Subscripts are
written as subscript characters (sₜ₋₁), not as braces. The names come from three places,
none of which changes the cell:

1. the weights are named from the module (``weight_ih`` is the lecture's U, ``weight_hh`` is
   W, the biases together are β); any other parameter keeps its dotted module name;
2. the ops whose results equal the lecture's quantities — recomputed here in numpy from the
   cell's weights, for RNNCell, LSTMCell and GRUCell — are named by value;
3. an add, product, transpose or affine map of named operands gets a name built from theirs
   (``f_t*C_{t-1}``), when that name stays short: this works for user-written cells too.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..autograd import Function, enable_grad, keep_outputs, no_grad
from ..nn.cells import (
    GRUCell,
    LSTMCell,
    RNNCell,
    check_cell,
    initial_state_of,
    map_state,
    output_of,
    parameter_dtype,
    size_of,
    state_tensors,
    step_of,
)
from ..tensor import Tensor
from .graph import DEFAULT_MAX_NODES, Graph, _draw, _walk

__all__ = ["draw_cell_step"]

LECTURE_PARAMETERS = {
    "weight_ih": "U (weight_ih)",
    "weight_hh": "W (weight_hh)",
    "bias_ih": "β_ih (bias_ih)",
    "bias_hh": "β_hh (bias_hh)",
}
GATE_BLOCKS = "blocks i, f, C̃, o"
"""The LSTM stacks its four gates' weights (PyTorch's order i, f, g = C̃, o)."""
LSTM_PARAMETERS = {
    "weight_ih": f"U (weight_ih: {GATE_BLOCKS})",
    "weight_hh": f"W (weight_hh: {GATE_BLOCKS})",
    "bias_ih": f"β_ih (bias_ih: {GATE_BLOCKS})",
    "bias_hh": f"β_hh (bias_hh: {GATE_BLOCKS})",
}
RNN_PARAMETERS = {
    "weight_ih": "U (weight_ih)",
    "weight_hh": "W (weight_hh)",
    "bias_ih": "βₛ (bias_ih + bias_hh)",
}
MAX_DERIVED_NAME = 24


def draw_cell_step(
    cell: Any,
    *,
    batch: int = 1,
    seed: int = 0,
    show_values: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
    head: Any = None,
    softmax: bool = False,
) -> Graph:
    """Draw the op-level graph of one step ``state_t = cell(x_t, state_{t−1})``.

    The step runs on a copy of ``cell`` (nothing of yours changes) with random x_t and a
    random previous state (``batch`` rows, from ``seed``), both drawn as inputs: x_t,
    s_{t−1} (h_{t−1} for other cells) and, for a state pair, C_{t−1}. The outputs s_t, or h_t
    (and C_t), are the roots. ``head``, a ``Linear`` read-out V, β_o, adds the output o_t =
    V·s_t + β_o of the step (after a softmax with ``softmax=True``; y_t for the LSTM, whose
    o_t is the output gate). See the module docstring for where the names come from. For a
    cell without ``initial_state``, a first step from ``state=None`` shows the state's
    structure.
    """
    check_cell(cell, "draw_cell_step")
    step_cell = lecture_copy(cell)
    rng = np.random.default_rng(seed)
    width = size_of(step_cell, "input_size", "draw_cell_step")
    x_t = Tensor(rng.uniform(-1, 1, (batch, width)), dtype=parameter_dtype(step_cell))
    x_t.requires_grad_(True)
    previous = initial_state_of(step_cell, batch, x_t.dtype)
    if previous is None:
        with no_grad():
            previous = step_of(step_cell, x_t, None)
    start = []
    for element in state_tensors(previous):
        tensor = Tensor(rng.uniform(-1, 1, element.shape), dtype=element.dtype)
        start.append(tensor.requires_grad_(True))
    fresh = iter(start)
    previous = map_state(lambda _: next(fresh), previous)
    step_head = copy.deepcopy(head) if head is not None else None
    with enable_grad(), keep_outputs():  # the results stay linked, to be named by value
        state = step_of(step_cell, x_t, previous)
        read_out = None
        if step_head is not None:
            read_out = step_head(output_of(step_cell, state))
            read_out = read_out.softmax(axis=-1) if softmax else read_out
    outputs = state_tensors(state)

    names: dict[int, str] = {id(x_t): "xₜ"}
    for tensor, name in zip(start, _previous_names(step_cell, len(start)), strict=True):
        names[id(tensor)] = name
    lecture = lecture_parameter_names(step_cell)
    if hasattr(step_cell, "named_parameters"):
        for name, param in step_cell.named_parameters():
            names[id(param)] = lecture.get(name, name)
    references = _lecture_values(step_cell, x_t.data, [t.data for t in start])
    out_names = _output_names(step_cell, len(outputs))
    for tensor, name in zip(outputs, out_names, strict=True):
        references.setdefault(name, tensor.data)
        names[id(tensor)] = name
    if read_out is not None:
        state_name = out_names[0]
        output_name = "yₜ" if isinstance(step_cell, LSTMCell) else "oₜ"
        names[id(step_head.weight)] = "V (head weight)"
        if getattr(step_head, "bias", None) is not None:
            names[id(step_head.bias)] = "β_o (head bias)"
        pre = f"V·{state_name}+β_o"
        if softmax:  # the logits before the softmax are named by value
            bias = getattr(step_head, "bias", None)
            logits = step_cell.output(state).data @ step_head.weight.data.T
            references[pre] = logits + (0 if bias is None else bias.data)
        names[id(read_out)] = output_name if softmax else f"{output_name} = {pre}"
        outputs.append(read_out)
    _name_by_value(outputs, references, names)
    if isinstance(step_cell, LSTMCell):
        _name_gate_blocks(outputs, names)
    _name_by_operands(outputs, names)
    return _draw(tuple(outputs), show_values, False, None, max_nodes, None, names)


def lecture_copy(cell: Any) -> Any:
    """A copy of ``cell`` to draw; an Elman cell's copy holds β_s = bias_ih + bias_hh in
    bias_ih alone (only the sum matters), so its drawing has the lecture's one β_s."""
    copied = copy.deepcopy(cell)
    if isinstance(copied, RNNCell) and copied.bias_ih is not None and copied.bias_hh is not None:
        copied.bias_ih.data = copied.bias_ih.data + copied.bias_hh.data
        copied.bias_hh = None
    return copied


def lecture_parameter_names(cell: Any) -> dict[str, str]:
    """The lecture's name of each parameter of ``cell`` (after :func:`lecture_copy`)."""
    if isinstance(cell, RNNCell):
        return RNN_PARAMETERS
    return LSTM_PARAMETERS if isinstance(cell, LSTMCell) else LECTURE_PARAMETERS


def _previous_names(cell: Any, count: int) -> list[str]:
    if count == 1:
        return ["sₜ₋₁" if isinstance(cell, RNNCell) else "hₜ₋₁"]
    if count == 2 and isinstance(cell, LSTMCell):
        return ["hₜ₋₁", "Cₜ₋₁"]
    return [f"state{k}ₜ₋₁" for k in range(count)]


def _output_names(cell: Any, count: int) -> list[str]:
    if count == 1:
        return ["sₜ" if isinstance(cell, RNNCell) else "hₜ"]
    if count == 2 and isinstance(cell, LSTMCell):
        return ["hₜ", "Cₜ"]
    return [f"state{k}ₜ" for k in range(count)]


def _lecture_values(cell: Any, x: np.ndarray, state: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The lecture's quantities of one step, recomputed in numpy from the cell's weights."""
    if not isinstance(cell, RNNCell | LSTMCell | GRUCell):
        return {}

    def affine(v: np.ndarray, weight: Any, bias: Any) -> np.ndarray:
        return v @ weight.data.T + (0 if bias is None else bias.data)

    def sigmoid(a: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-a))

    from_x = affine(x, cell.weight_ih, cell.bias_ih)
    from_h = affine(state[0], cell.weight_hh, cell.bias_hh)
    H = cell.hidden_size
    if isinstance(cell, RNNCell):  # the drawn copy holds β_s in bias_ih (see draw_cell_step)
        return {"U·xₜ+βₛ": from_x, "W·sₜ₋₁": from_h, "aₜ": from_x + from_h}
    values = {"U·xₜ+β_ih": from_x, "W·hₜ₋₁+β_hh": from_h}
    if isinstance(cell, LSTMCell):
        a = from_x + from_h
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])
        g, o = np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
        c = f * state[1] + i * g
        values |= {"iₜ": i, "fₜ": f, "C̃ₜ": g, "oₜ (output gate)": o, "Cₜ": c}
        values |= {"fₜ*Cₜ₋₁": f * state[1], "iₜ*C̃ₜ": i * g, "tanh(Cₜ)": np.tanh(c)}
        return values
    r = sigmoid(from_x[:, :H] + from_h[:, :H])
    z = sigmoid(from_x[:, H : 2 * H] + from_h[:, H : 2 * H])
    n = np.tanh(from_x[:, 2 * H :] + r * from_h[:, 2 * H :])
    return values | {"rₜ": r, "zₜ": z, "nₜ": n}


def _name_by_value(
    outputs: list[Tensor], references: dict[str, np.ndarray], names: dict[int, str]
) -> None:
    """Name each op whose result (still alive) equals one of the lecture's quantities."""
    nodes, _ = _walk(tuple(outputs))
    for node in nodes:
        if not isinstance(node, Function) or id(node) in names:
            continue
        result = node.result()
        if result is None:
            continue
        for name, value in references.items():
            if value.shape == result.shape and np.allclose(
                result.data, value, rtol=1e-5, atol=1e-7
            ):
                names[id(node)] = name
                break


GATE_NAMES = {"iₜ": "i", "fₜ": "f", "C̃ₜ": "C̃", "oₜ (output gate)": "o"}


def _name_gate_blocks(outputs: list[Tensor], names: dict[int, str]) -> None:
    """Name the slices of the stacked pre-activation after the gate each one feeds."""
    nodes, edges = _walk(tuple(outputs))
    for tail, head in edges:
        producer, consumer = nodes[tail], nodes[head]
        gate = GATE_NAMES.get(names.get(id(consumer), ""))
        if gate and isinstance(producer, Function) and id(producer) not in names:
            names[id(producer)] = f"{gate} gate block"


def _name_by_operands(outputs: list[Tensor], names: dict[int, str]) -> None:
    """Name adds, products and transposes of named operands after them, if short enough."""
    nodes, edges = _walk(tuple(outputs))
    inputs: dict[int, list[Any]] = {}
    for tail, head in edges:
        inputs.setdefault(head, []).append(nodes[tail])
    symbols = {"add": "+", "mul": "*"}  # ⊙ has no glyph in common renderer fonts
    # _walk lists consumers before producers: go the other way so operands are named first.
    for index in reversed(range(len(nodes))):
        node = nodes[index]
        if not isinstance(node, Function) or id(node) in names:
            continue
        operands = [names.get(id(p)) for p in inputs.get(index, [])]
        if not operands or not all(operands):
            continue
        name = None
        if node.name in ("permute", "transpose") and len(operands) == 1:
            name = f"{operands[0].split(' ')[0]}^T"
        elif node.name == "matmul" and len(operands) == 2 and operands[1].endswith("^T"):
            name = f"{operands[1][:-2]}·{operands[0]}"  # x·Uᵀ in rows is the lecture's U·x
        elif node.name == "linear" and len(operands) in (2, 3):
            x, weight, *bias = [o.split(" ")[0] for o in operands]
            name = f"{weight}·{x}" + "".join(f"+{b}" for b in bias)  # linear(x, U, β) = U·x + β
        elif node.name in symbols and len(operands) == 2:
            short = [o.split(" ")[0] for o in operands]
            name = f"{short[0]}{symbols[node.name]}{short[1]}"
        if name and len(name) <= MAX_DERIVED_NAME:
            names[id(node)] = name
