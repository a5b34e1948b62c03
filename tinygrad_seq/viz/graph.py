"""Draw the autograd graph behind one or more tensors as DOT text.

The graph is the one ``backward`` walks (see ``autograd.py``): op nodes are
:class:`~tinygrad_seq.autograd.Function` objects, leaves are tensors that require grad, and
the tensors you pass in are drawn as the outputs. Edges follow the data, from inputs to ops
to outputs, so the picture reads left to right like the forward pass. Inputs that need no
gradient (constants, data such as ``x_t``) are not part of the graph and are not drawn.

The walk uses an explicit stack, never recursion, so an RNN unrolled through 10,000 steps can
be drawn (or rather counted: ``max_nodes`` stops pictures nobody could read). Node ids are
our own counters given in walk order, so the same graph always gives the same DOT text.
"""

import os
from dataclasses import dataclass
from typing import Any

import graphviz
import numpy as np

from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor
from .dot import DEFAULT_TIMEOUT, RenderResult, pipe_dot, plain_label, render_dot
from .tracking import CellCall, CellTracker

DEFAULT_MAX_NODES = 500

_OP_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee"}
_LEAF_STYLE = {"shape": "box", "style": "filled", "fillcolor": "#cfe3f7"}
_ROOT_STYLE = {"shape": "box", "style": "filled,bold", "fillcolor": "#d5f0cf"}


@dataclass(frozen=True, repr=False)
class Graph:
    """A drawn autograd graph: its DOT ``source`` and how many nodes and edges it has.

    In a notebook it displays itself as SVG, or as text saying why it could not.
    """

    source: str
    num_nodes: int
    num_edges: int

    def render(
        self, path: str | os.PathLike[str], format: str = "svg", timeout: float = DEFAULT_TIMEOUT
    ) -> RenderResult:
        """Write ``<path>.dot`` and the picture ``<path>.<format>``; see ``viz.dot.render_dot``."""
        return render_dot(self.source, path, format=format, timeout=timeout)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Notebook display: SVG when a renderer works, otherwise the reason and the DOT text."""
        try:
            svg = pipe_dot(self.source, "svg").decode("utf-8")
        except Exception as error:  # a display hook must never raise: show the reason instead
            return {"text/plain": f"graph not rendered ({error}); DOT source:\n{self.source}"}
        # A graph wider than the notebook shrinks to fit it (whole, not behind a scroll bar).
        svg = svg.replace("<svg ", '<svg style="max-width: 100%; height: auto" ', 1)
        return {"image/svg+xml": svg, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<Graph: {self.num_nodes} nodes, {self.num_edges} edges>"


COLLAPSE_MODES = (None, "cell", "cluster")
_CELL_STYLE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#fde0b6"}
_CLUSTER_STYLE = {"style": "rounded", "color": "#d08a2a", "fontname": "Helvetica"}


def draw_graph(
    *roots: Tensor,
    show_values: bool = False,
    show_grads: bool = True,
    collapse: str | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    cells: CellTracker | None = None,
    module: Module | None = None,
) -> Graph:
    """Draw the graph that computed ``roots``: every op and leaf once, the roots as outputs.

    Op nodes show the op and the shape and dtype of its result; tensor nodes show the
    tensor's name — its dotted name in ``module`` when one is given (``cell.weight_hh``),
    else its ``.name``, else ``leaf`` / ``output`` — shape and dtype. With ``show_grads``, a
    tensor that has a ``.grad`` also shows its norm, ``|g|=1.2e-03``; with ``show_values``,
    its values (abbreviated). An op's result is labelled like a tensor too while that tensor
    is alive and named or holds a gradient (``retain_grad``).

    **Recurrent graphs** (``cells`` is what :func:`~tinygrad_seq.viz.track_cells` recorded
    during the forward pass):

    - ``collapse="cell"`` draws each cell step as one node (``LSTMCell step 3``); parameters
      used only inside the cell's steps are folded into them, since every step shares them;
    - ``collapse="cluster"`` keeps every op but boxes each step's ops together.

    Raises ValueError when the drawing would have more than ``max_nodes`` nodes (the message
    says how many and which view to use instead), or for a ``collapse`` without ``cells``.
    """
    names = {} if module is None else {id(p): name for name, p in module.named_parameters()}
    return _draw(roots, show_values, show_grads, collapse, max_nodes, cells, names)


def _draw(
    roots: tuple[Tensor, ...],
    show_values: bool,
    show_grads: bool,
    collapse: str | None,
    max_nodes: int,
    cells: CellTracker | None,
    names: dict[int, str],
) -> Graph:
    """draw_graph's work; ``names`` labels nodes by id (leaves, and ops by their result)."""
    if collapse not in COLLAPSE_MODES:
        raise ValueError(
            f"draw_graph: collapse={collapse!r} is not one of {COLLAPSE_MODES}: None draws "
            "every op, 'cell' one node per cell step, 'cluster' boxes each step's ops"
        )
    if collapse is not None and cells is None:
        raise ValueError(
            f"draw_graph: collapse={collapse!r} needs to know where each cell step begins: "
            "record the forward pass with `with viz.track_cells(model) as steps:` and pass "
            "cells=steps"
        )
    if not roots:
        raise ValueError("draw_graph: pass at least one tensor to draw")
    for index, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: root {index} is a {type(root).__name__}, not a Tensor")

    nodes, edges = _walk(roots)
    groups: list[int | None] = [None] * len(nodes)
    if cells is not None:
        groups = [
            cells._group.get(id(node)) if isinstance(node, Function) else None for node in nodes
        ]
    if collapse is not None and not any(group is not None for group in groups):
        raise ValueError(
            f"draw_graph: collapse={collapse!r}, but no op of this graph was made by a "
            f"recorded cell call ({len(cells)} calls recorded); the forward pass must run "
            "inside `with viz.track_cells(model)`, and fused layers never call their cells "
            "(build them with fused=False)"
        )
    if collapse == "cell":
        nodes, edges, groups = _collapse(nodes, edges, groups, cells)
    _check_size(len(nodes), max_nodes, collapse, cells, groups)

    root_ids = {id(root) for root in roots}
    dot = graphviz.Digraph(
        "tinygrad_seq",
        graph_attr={"rankdir": "LR"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
    )
    clusters: dict[int, graphviz.Digraph] = {}
    for node_id, node in enumerate(nodes):
        if isinstance(node, CellCall):
            lines, style = _call_lines(node, show_grads), _CELL_STYLE
        elif isinstance(node, Function):
            lines, style = (
                _op_lines(node, root_ids, show_values, show_grads, names.get(id(node))),
                _OP_STYLE,
            )
        else:
            is_root = id(node) in root_ids
            default_name = "output" if is_root and not node.is_leaf else "leaf"
            name = names.get(id(node)) or node.name or default_name
            lines = _tensor_lines(node, name, show_values, show_grads)
            style = _ROOT_STYLE if is_root else _LEAF_STYLE
        target = dot
        if collapse == "cluster" and groups[node_id] is not None:
            group = groups[node_id]
            if group not in clusters:
                call = cells.calls[group]
                clusters[group] = graphviz.Digraph(
                    f"cluster_{len(clusters)}",
                    graph_attr={"label": plain_label(f"{call.label} step {call.step}")}
                    | _CLUSTER_STYLE,
                )
            target = clusters[group]
        target.node(f"n{node_id}", plain_label(*lines), **style)
    for cluster in clusters.values():
        dot.subgraph(cluster)
    for tail, head in edges:
        # Shared weights feed every step: as layout constraints they would pull all steps
        # back to the weights' column. They are still drawn.
        loose = collapse == "cluster" and not isinstance(nodes[tail], Function)
        dot.edge(f"n{tail}", f"n{head}", **({"constraint": "false"} if loose else {}))
    if collapse == "cluster":
        for tail, head in _step_order_edges(nodes, edges, groups, cells):
            dot.edge(f"n{tail}", f"n{head}", style="invis")
    return Graph(dot.source, len(nodes), len(edges))


def _step_order_edges(
    nodes: list[Any], edges: list[tuple[int, int]], groups: list[int | None], cells: Any
) -> list[tuple[int, int]]:
    """Invisible edges that keep each step's box to the right of the step before.

    Ops of a step that read only weights (such as a transposed weight) have no drawn input
    from the step before, so dot would put them in the first column and stretch every box
    over the whole width. An edge from the previous step's state to each such op fixes it.
    """
    has_op_input = {head for tail, head in edges if isinstance(nodes[tail], Function)}
    position = {id(node): index for index, node in enumerate(nodes)}
    previous_state: dict[int, int] = {}  # id(cell) -> node index of its last state
    extra = []
    for group, call in enumerate(cells.calls):
        anchor = previous_state.get(id(call.cell))
        if anchor is not None:
            extra += [
                (anchor, index)
                for index, g in enumerate(groups)
                if g == group and index not in has_op_input
            ]
        states = [position[id(t.grad_fn)] for t in call.outputs if id(t.grad_fn) in position]
        if states:
            previous_state[id(call.cell)] = states[0]
    return extra


def _check_size(
    count: int,
    max_nodes: int,
    collapse: str | None,
    cells: CellTracker | None,
    groups: list[int | None],
) -> None:
    """Refuse pictures nobody could read, saying which smaller view to draw instead."""
    if count <= max_nodes:
        return
    chain = (
        "draw the hidden-state chain instead, one node per step wrapped into rows: "
        "viz.draw_flow_chain({'model': viz.gradient_flow(model, x, loss_fn)})"
    )
    if collapse == "cell":
        steps = len({g for g in groups if g is not None})
        raise ValueError(
            f"draw_graph: even with one node per cell step the graph has {count} nodes "
            f"({steps} cell steps), more than max_nodes={max_nodes}; {chain}, or draw a "
            f"shorter sequence (or pass max_nodes={count} to draw it anyway)"
        )
    hint = (
        "pass collapse='cell' to draw one node per cell step"
        if cells is not None
        else "for a recurrent model, record the forward pass with `with viz.track_cells(model) "
        "as steps:` and pass collapse='cell', cells=steps (one node per cell step)"
    )
    raise ValueError(
        f"draw_graph: the graph has {count} nodes, more than max_nodes={max_nodes}; "
        f"pass max_nodes={count} or more to draw it anyway (large pictures are hard "
        f"to read and slow to render), or draw a smaller part, such as one time step; {hint}; "
        f"or {chain}"
    )


def _collapse(
    nodes: list[Function | Tensor],
    edges: list[tuple[int, int]],
    groups: list[int | None],
    cells: CellTracker,
) -> tuple[list[Any], list[tuple[int, int]], list[int | None]]:
    """Replace each cell call's ops by one node, and fold in leaves only cells use.

    A leaf whose every consumer lies inside steps of one and the same cell is that cell's
    parameter: drawn, it would send one edge to every step. Edges are mapped onto the new
    nodes; edges inside a step vanish, repeated ones are drawn once. Order stays the walk's.
    """
    consumers: dict[int, set[Any]] = {}
    for tail, head in edges:
        owner = groups[head]
        consumers.setdefault(tail, set()).add(
            ("op", head) if owner is None else ("cell", id(cells.calls[owner].cell))
        )
    new_nodes: list[Any] = []
    new_groups: list[int | None] = []
    position: dict[Any, int] = {}
    mapping: list[int | None] = []
    for index, node in enumerate(nodes):
        group = groups[index]
        if group is not None:
            key: Any = ("call", group)
        elif not isinstance(node, Function) and _used_by_one_cell_only(consumers.get(index)):
            mapping.append(None)
            continue
        else:
            key = ("node", index)
        if key not in position:
            position[key] = len(new_nodes)
            new_nodes.append(cells.calls[group] if group is not None else node)
            new_groups.append(group)
        mapping.append(position[key])
    new_edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for tail, head in edges:
        a, b = mapping[tail], mapping[head]
        if a is None or b is None or a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        new_edges.append((a, b))
    return new_nodes, new_edges, new_groups


def _used_by_one_cell_only(consumers: set[Any] | None) -> bool:
    return bool(consumers) and len(consumers) == 1 and next(iter(consumers))[0] == "cell"


def _call_lines(call: CellCall, show_grads: bool) -> list[str]:
    """A collapsed step: the cell, the step, the state's shape and its gradient if kept."""
    lines = [f"{call.label} step {call.step}"]
    if call.outputs:
        lines.append(" ".join(str(tuple(t.shape)) for t in call.outputs))
    if show_grads:
        lines += [_grad_text(t) for t in call.outputs if t.grad is not None]
    return lines


def _walk(roots: tuple[Tensor, ...]) -> tuple[list[Function | Tensor], list[tuple[int, int]]]:
    """Every node reachable from ``roots``, in discovery order, and the edges between them.

    Nodes are Functions and Tensors (leaves and roots), numbered by their position in the list;
    an edge ``(tail, head)`` means ``tail``'s output is an input of ``head``. One edge per input
    slot, so ``x * x`` draws two edges from ``x``.
    """
    nodes: list[Function | Tensor] = []
    number: dict[int, int] = {}  # id(node) -> position; the nodes list keeps them alive
    edges: list[tuple[int, int]] = []
    stack: list[Function] = []

    def number_of(node: Function | Tensor) -> int:
        if id(node) not in number:
            number[id(node)] = len(nodes)
            nodes.append(node)
            if isinstance(node, Function):
                stack.append(node)
        return number[id(node)]

    for root in roots:
        root_number = number_of(root)
        if root.grad_fn is not None:
            edges.append((number_of(root.grad_fn), root_number))
    while stack:
        function = stack.pop()
        head = number[id(function)]
        for parent in function.parents:
            if parent is not None:
                edges.append((number_of(parent), head))
    return nodes, edges


def _op_lines(
    function: Function,
    root_ids: set[int],
    show_values: bool,
    show_grads: bool,
    name: str | None = None,
) -> list[str]:
    """Label lines of an op node; its result's name and gradient too, if worth showing."""
    lines = [function.name, f"{tuple(function.shape)} {function.dtype}"]
    if name:
        lines[0] = f"{name} = {function.name}"
    result = function.result()
    # A root's result is drawn as its own node: don't repeat its details on the op.
    if result is None or id(result) in root_ids:
        return lines
    if result.name:
        lines[0] = f"{result.name} = {function.name}"
    if show_grads and result.grad is not None:
        lines.append(_grad_text(result))
    if show_values:
        lines.extend(_values_lines(result))
    return lines


def _tensor_lines(tensor: Tensor, name: str, show_values: bool, show_grads: bool) -> list[str]:
    lines = [name, f"{tuple(tensor.shape)} {tensor.dtype}"]
    if show_grads and tensor.grad is not None:
        lines.append(_grad_text(tensor))
    if show_values:
        lines.extend(_values_lines(tensor))
    return lines


def _grad_text(tensor: Tensor) -> str:
    """The gradient's L2 norm in ASCII (Graphviz measures non-ASCII characters badly)."""
    gradient = np.asarray(tensor.grad.data, dtype=np.float64)
    return f"|g|={float(np.sqrt(np.sum(gradient * gradient))):.1e}"


def _values_lines(tensor: Tensor) -> list[str]:
    text = np.array2string(
        tensor.data, precision=3, threshold=6, edgeitems=2, max_line_width=48, separator=", "
    )
    return text.splitlines()
