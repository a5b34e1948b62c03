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
from ..tensor import Tensor
from .dot import DEFAULT_TIMEOUT, RenderResult, pipe_dot, plain_label, render_dot

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
        return {"image/svg+xml": svg, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<Graph: {self.num_nodes} nodes, {self.num_edges} edges>"


def draw_graph(
    *roots: Tensor,
    show_values: bool = False,
    show_grads: bool = True,
    collapse: str | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Graph:
    """Draw the graph that computed ``roots``: every op and leaf once, the roots as outputs.

    Op nodes show the op and the shape and dtype of its result; tensor nodes show the
    tensor's ``.name`` (or ``leaf`` / ``output``), shape and dtype. With ``show_grads``, a
    tensor that has a ``.grad`` also shows its norm, ``|g|=1.2e-03``; with ``show_values``,
    its values (abbreviated). An op's result is labelled like a tensor too while that tensor
    is alive and named or holds a gradient (``retain_grad``).

    Raises ValueError when the graph has more than ``max_nodes`` nodes, or for a ``collapse``
    other than None (collapsing repeated blocks is not supported yet).
    """
    if collapse is not None:
        raise ValueError(
            f"draw_graph: collapse={collapse!r} is not supported yet; "
            "use collapse=None to draw every op"
        )
    if not roots:
        raise ValueError("draw_graph: pass at least one tensor to draw")
    for index, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: root {index} is a {type(root).__name__}, not a Tensor")

    nodes, edges = _walk(roots)
    if len(nodes) > max_nodes:
        raise ValueError(
            f"draw_graph: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}; "
            f"pass max_nodes={len(nodes)} or more to draw it anyway (large pictures are hard "
            "to read and slow to render), or draw a smaller part, such as one time step"
        )

    root_ids = {id(root) for root in roots}
    dot = graphviz.Digraph(
        "tinygrad_seq",
        graph_attr={"rankdir": "LR"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
    )
    for node_id, node in enumerate(nodes):
        if isinstance(node, Function):
            lines, style = _op_lines(node, root_ids, show_values, show_grads), _OP_STYLE
        else:
            is_root = id(node) in root_ids
            default_name = "output" if is_root and not node.is_leaf else "leaf"
            lines = _tensor_lines(node, node.name or default_name, show_values, show_grads)
            style = _ROOT_STYLE if is_root else _LEAF_STYLE
        dot.node(f"n{node_id}", plain_label(*lines), **style)
    for tail, head in edges:
        dot.edge(f"n{tail}", f"n{head}")
    return Graph(dot.source, len(nodes), len(edges))


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
    function: Function, root_ids: set[int], show_values: bool, show_grads: bool
) -> list[str]:
    """Label lines of an op node; its result's name and gradient too, if worth showing."""
    lines = [function.name, f"{tuple(function.shape)} {function.dtype}"]
    result = function.out()
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
