"""Record which graph nodes each call of a recurrent cell created, to draw a step as one node.

An unrolled graph does not know where one time step ends: it is just ops. The one place that
knows is the call ``cell(x_t, state)``. :func:`track_cells` watches the cells of a model for
the length of a ``with`` block and, after each call, walks the graph back from the state the
call returned to the tensors it was given (x_t, the previous state). Every op met on the way
was created by that step::

    with viz.track_cells(model) as steps:
        loss = loss_fn(*model(x))
    viz.draw_graph(loss, collapse="cell", cells=steps)

Why this design: it needs no change to the cells, the driver or the engine, and it works for
any cell of the Cell protocol, user-written ones included. The watching is done by giving
each cell *instance* its own ``forward`` for the block's duration (the class and other
instances are untouched) and removing it on exit, even after an error.

Limits, by construction: a cell that reads a tensor computed *outside* the call (other than
its arguments and its parameters) would have that tensor's ops counted as part of the step;
fused layers (``RNN``/``LSTM``/``GRU`` with ``fused=True``, the default) never call their
cells, so nothing is recorded for them — pass ``fused=False`` to see steps. The tracker
holds the recorded tensors, and so their graph, for as long as you keep it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..autograd import Function
from ..nn.module import Module
from ..nn.recurrent import _RecurrentLayer
from ..tensor import Tensor

__all__ = ["CellCall", "CellTracker", "track_cells"]


@dataclass(frozen=True)
class CellCall:
    """One call ``cell(x_t, state)``: which cell, which call of it, and the ops it created.

    ``label`` is the cell's class name, with the layer for a layer's cells (``"LSTMCell
    l1_reverse"``) and its place in the model when two cells would read the same. ``step``
    counts that cell's calls from 0; ``inputs`` and ``outputs`` are the tensors passed in
    and returned; ``nodes`` the Functions created by the call.
    """

    cell: Any
    label: str
    step: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    nodes: tuple[Function, ...]


@dataclass
class CellTracker:
    """The cell calls recorded by :func:`track_cells`, in call order."""

    calls: list[CellCall] = field(default_factory=list)
    _group: dict[int, int] = field(default_factory=dict, repr=False)

    def call_of(self, node: Function) -> CellCall | None:
        """The call that created ``node``, or None for an op made outside every cell."""
        index = self._group.get(id(node))
        return None if index is None else self.calls[index]

    def __len__(self) -> int:
        return len(self.calls)

    def _record(self, cell: Any, label: str, step: int, args: Any, result: Any) -> None:
        inputs, outputs = tuple(_tensors(args)), tuple(_tensors(result))
        stop = {id(t.grad_fn) for t in inputs if t.grad_fn is not None}
        nodes: list[Function] = []
        stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
        seen: set[int] = set()
        while stack:  # iterative: a cell step may be deep, a graph behind it deeper
            node = stack.pop()
            if id(node) in seen or id(node) in stop or id(node) in self._group:
                continue
            seen.add(id(node))
            nodes.append(node)
            stack.extend(p for p in node.parents if isinstance(p, Function))
        index = len(self.calls)
        self.calls.append(CellCall(cell, label, step, inputs, outputs, tuple(nodes)))
        for node in nodes:
            self._group[id(node)] = index


@contextlib.contextmanager
def track_cells(model: Any) -> Iterator[CellTracker]:
    """Record every call of the recurrent cells in ``model`` made inside the ``with`` block.

    ``model`` is a cell, a ``Recurrent``, a layer, or any Module containing them (a cell is
    any object with ``initial_state``, ``forward`` and ``output``). Yields a
    :class:`CellTracker`; see the module docstring for how steps are found and the limits.
    """
    cells = _find_cells(model)
    if not cells:
        raise ValueError(
            f"track_cells: found no recurrent cell in {type(model).__name__} (a cell has "
            "initial_state, forward and output methods)"
        )
    tracker = CellTracker()
    patched: list[tuple[Any, Any]] = []
    try:
        for label, cell in cells:
            previous = cell.__dict__.get("forward")
            object.__setattr__(cell, "forward", _recording(tracker, cell, label, cell.forward))
            patched.append((cell, previous))
        yield tracker
    finally:
        for cell, previous in reversed(patched):
            if previous is None:
                object.__delattr__(cell, "forward")
            else:
                object.__setattr__(cell, "forward", previous)


def _recording(tracker: CellTracker, cell: Any, label: str, forward: Any) -> Any:
    calls = 0

    def forward_and_record(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = forward(*args, **kwargs)
        tracker._record(cell, label, calls, (args, tuple(kwargs.values())), result)
        calls += 1
        return result

    return forward_and_record


def _is_cell(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("initial_state", "output"))


def _find_cells(model: Any) -> list[tuple[str, Any]]:
    """(label, cell) for every cell in ``model``, each once, in definition order."""
    if _is_cell(model):
        return [(type(model).__name__, model)]
    if not isinstance(model, Module):
        return []
    found: dict[int, tuple[str, Any]] = {}
    for name, module in model.named_modules():
        if isinstance(module, _RecurrentLayer):
            for layer in range(module.num_layers):
                for direction in range(module.num_directions):
                    cell = module.cell(layer, direction)
                    suffix = "_reverse" if direction else ""
                    label = f"{type(cell).__name__} l{layer}{suffix}"
                    found.setdefault(id(cell), (label, cell, name))
        elif _is_cell(module):
            found.setdefault(id(module), (type(module).__name__, module, name))
    labels = [label for label, _, _ in found.values()]
    return [
        (f"{label} ({path})" if labels.count(label) > 1 and path else label, cell)
        for label, cell, path in found.values()
    ]


def _tensors(value: Any) -> Iterator[Tensor]:
    """The tensors inside nested tuples and lists (arguments, states)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            yield item
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))
