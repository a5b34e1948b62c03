"""One step of a cell at op level, with the lecture's names on the nodes.

``draw_cell_step(LSTMCell(3, 4))`` draws every op of C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t and
h_t = o_t ⊙ tanh(C_t), with U, W, β on the weights and f_t, i_t, C̃_t, C_t, o_t, h_t on the
ops that compute them. The names come from three places, none of which changes the cell:

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
MAX_DERIVED_NAME = 24


def draw_cell_step(
    cell: Any,
    *,
    batch: int = 1,
    seed: int = 0,
    show_values: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Graph:
    """Draw the op-level graph of one step ``state_t = cell(x_t, state_{t−1})``.

    The step runs on a copy of ``cell`` (nothing of yours changes) with random x_t and a
    random previous state (``batch`` rows, from ``seed``), both drawn as inputs: x_t,
    h_{t−1} and, for a state pair, C_{t−1}. The outputs h_t (and C_t) are the roots. See the
    module docstring for where the names come from. For a cell without ``initial_state``, a
    first step from ``state=None`` shows the state's structure.
    """
    check_cell(cell, "draw_cell_step")
    step_cell = copy.deepcopy(cell)
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
    with enable_grad(), keep_outputs():  # the results stay linked, to be named by value
        state = step_of(step_cell, x_t, previous)
    outputs = state_tensors(state)

    names: dict[int, str] = {id(x_t): "x_t"}
    for tensor, name in zip(start, _previous_names(step_cell, len(start)), strict=True):
        names[id(tensor)] = name
    if hasattr(step_cell, "named_parameters"):
        for name, param in step_cell.named_parameters():
            names[id(param)] = LECTURE_PARAMETERS.get(name, name)
    references = _lecture_values(step_cell, x_t.data, [t.data for t in start])
    out_names = _output_names(step_cell, len(outputs))
    for tensor, name in zip(outputs, out_names, strict=True):
        references.setdefault(name, tensor.data)
        names[id(tensor)] = name
    _name_by_value(outputs, references, names)
    _name_by_operands(outputs, names)
    return _draw(tuple(outputs), show_values, False, None, max_nodes, None, names)


def _previous_names(cell: Any, count: int) -> list[str]:
    if count == 1:
        return ["h_{t-1}"]
    if count == 2:
        return ["h_{t-1}", "C_{t-1}"] if isinstance(cell, LSTMCell) else ["s0_{t-1}", "s1_{t-1}"]
    return [f"s{k}_{{t-1}}" for k in range(count)]


def _output_names(cell: Any, count: int) -> list[str]:
    if count == 1:
        return ["h_t"]
    if count == 2 and isinstance(cell, LSTMCell):
        return ["h_t", "C_t"]
    return [f"s{k}_t" for k in range(count)]


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
    values = {"U·x_t+β_ih": from_x, "W·h_{t-1}+β_hh": from_h}
    H = cell.hidden_size
    if isinstance(cell, RNNCell):
        values["a_t"] = from_x + from_h
        return values
    if isinstance(cell, LSTMCell):
        a = from_x + from_h
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])
        g, o = np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
        c = f * state[1] + i * g
        values |= {"gates": a, "i_t": i, "f_t": f, "C̃_t": g, "o_t": o, "C_t": c}
        values |= {"f_t⊙C_{t-1}": f * state[1], "i_t⊙C̃_t": i * g, "tanh(C_t)": np.tanh(c)}
        return values
    r = sigmoid(from_x[:, :H] + from_h[:, :H])
    z = sigmoid(from_x[:, H : 2 * H] + from_h[:, H : 2 * H])
    n = np.tanh(from_x[:, 2 * H :] + r * from_h[:, 2 * H :])
    return values | {"r_t": r, "z_t": z, "n_t": n}


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


def _name_by_operands(outputs: list[Tensor], names: dict[int, str]) -> None:
    """Name adds, products and transposes of named operands after them, if short enough."""
    nodes, edges = _walk(tuple(outputs))
    inputs: dict[int, list[Any]] = {}
    for tail, head in edges:
        inputs.setdefault(head, []).append(nodes[tail])
    symbols = {"add": "+", "mul": "*"}
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
