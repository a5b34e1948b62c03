"""Reverse-mode automatic differentiation: graph nodes, grad mode and the backward engine.

Read this file first. Every op (``ops.py``) is a :class:`Function`: ``forward`` works on
ndarrays, ``backward`` maps the gradient of the output, ∂L/∂y, to the gradients of the
inputs, ∂L/∂x_i, using Tensor ops — so that when ``create_graph=True`` the gradient
computation is itself recorded and can be differentiated again.

The graph is made of Function nodes. A node knows its ``parents``: for each input, the node
that produced it, or the input itself when it is a leaf that requires grad, or ``None`` when
no gradient is needed. A node holds its output only weakly, so a graph never keeps itself
alive through a reference cycle: it lives exactly as long as someone holds its output.

``backward`` sorts the nodes reachable from the output once (iteratively, so a 10,000-step
recurrence is fine), then visits them in reverse topological order, so that every node sees
the *complete* gradient of its output before passing it on. Broadcasting is undone in one
place, :func:`_deliver`, not in each op.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "Function",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- grad mode


class _GradMode:
    """Whether ops record the graph. One process-wide switch, read on every op."""

    enabled = True


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward."""
    return _GradMode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn graph recording on or off: as a call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous.pop()

    def __call__(self, func: F) -> F:
        # Used as a decorator: the constructor switched the mode already; undo that and
        # switch it around each call instead.
        _GradMode.enabled = self._previous.pop()
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _switch(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _switch(contextlib.ContextDecorator):
    """Set grad mode to ``mode`` on entry and restore the previous mode on exit."""

    def __init__(self, mode: bool) -> None:
        self.mode = mode
        self._previous: list[bool] = []

    def __enter__(self) -> _switch:
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous.pop()


class no_grad(_switch):
    """Context manager and decorator: ops inside record no graph (inference, updates)."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_switch):
    """Context manager and decorator: record the graph even inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)


# --------------------------------------------------------------------------- Function


class _Released:
    """Marker for a node whose saved tensors were freed by a backward pass."""

    def __repr__(self) -> str:
        return "<released>"


_RELEASED = _Released()


class Function:
    """One primitive op: ``forward`` on ndarrays, ``backward`` in Tensor ops.

    Subclasses set ``name`` and implement ``forward(self, *arrays, **params) -> ndarray`` and
    ``backward(self, grad) -> tuple`` (one entry per tensor input: a Tensor, or ``None`` for
    an input that needs no gradient). ``save_inputs`` keeps the input Tensors for backward
    (as ``self.saved``); ``save_output`` keeps the output array, read back with
    :meth:`output`. The gradients returned may have the broadcast shape of the output: the
    engine sums them back to each input's shape.
    """

    __slots__ = ("parents", "saved", "out_data", "shape", "dtype", "out", "retained", "__dict__")

    name: str = "function"
    save_inputs: bool = True
    save_output: bool = False

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record a node."""
        fn = cls()
        try:
            data = fn.forward(*[t.data for t in inputs], **params)
        except (ValueError, IndexError, TypeError) as error:
            raise _op_error(cls.name, inputs, error) from None
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        if not _GradMode.enabled:
            return _make_tensor(data, False, None)
        parents = []
        needs_graph = False
        for t in inputs:
            if t.requires_grad:
                needs_graph = True
                parents.append(t.grad_fn if t.grad_fn is not None else t)
            else:
                parents.append(None)
        if not needs_graph:
            return _make_tensor(data, False, None)
        out = _make_tensor(data, True, fn)
        fn.parents = tuple(parents)
        fn.saved = inputs if cls.save_inputs else ()
        fn.out_data = data if cls.save_output else None
        fn.shape = data.shape
        fn.dtype = data.dtype
        fn.out = weakref.ref(out)
        fn.retained = None
        return out

    def needs_grad(self, index: int) -> bool:
        """Whether input ``index`` needs a gradient (skip work, and NaNs, for constants)."""
        return self.parents[index] is not None

    def output(self) -> Tensor:
        """The output of this node as a Tensor, for backward formulas that use y.

        When the graph of the gradient is being recorded (``create_graph``), the returned
        Tensor is attached to this very node, so a second derivative flows through y back
        to the inputs.
        """
        out = self.out()
        if out is not None and out.grad_fn is self:
            return out
        return _make_tensor(self.out_data, _GradMode.enabled, self if _GradMode.enabled else None)

    def _check_not_released(self) -> None:
        if self.saved is _RELEASED:
            raise RuntimeError(
                f"backward: trying to backpropagate through the graph a second time (op "
                f"'{self.name}', output shape {self.shape}); its saved arrays were released "
                "by the first backward. Pass retain_graph=True to the first backward call "
                "if you need to backpropagate twice."
            )

    def release(self) -> None:
        """Free what was saved for backward; a second backward through this node will raise."""
        self.saved = _RELEASED
        self.out_data = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _op_error(name: str, inputs: Sequence[Tensor], error: Exception) -> Exception:
    """Re-raise an error from numpy inside an op with the op's name and the input shapes."""
    shapes = ", ".join(str(t.shape) for t in inputs)
    dtypes = ", ".join(str(t.dtype) for t in inputs)
    message = str(error)
    if message.startswith(f"{name}:"):
        return error
    text = f"{name}: {message} (input shapes {shapes}; dtypes {dtypes})"
    if isinstance(error, IndexError):
        return IndexError(text)
    if isinstance(error, TypeError):
        return TypeError(text)
    return ValueError(text)


def _make_tensor(data: np.ndarray, requires_grad: bool, grad_fn: Function | None) -> Tensor:
    # Bound in tensor.py, which imports this module (avoids an import cycle).
    raise NotImplementedError


# --------------------------------------------------------------------------- the engine


def _topological_order(roots: Sequence[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, every node after all nodes that consume its output.

    Iterative depth-first search with an explicit stack: linear time, no recursion limit.
    """
    order: list[Function] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack: list[tuple[Function, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            parents = node.parents
            while i < len(parents):
                parent = parents[i]
                i += 1
                if isinstance(parent, Function) and id(parent) not in visited:
                    visited.add(id(parent))
                    stack[-1] = (node, i)
                    stack.append((parent, 0))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _fit(grad: Tensor, target: Function | Tensor) -> Tensor:
    """Undo broadcasting (sum to the target's shape) and match the target's dtype."""
    if grad.shape != target.shape:
        grad = grad.sum_to(target.shape)
    if grad.dtype != target.dtype:
        grad = grad.astype(target.dtype)
    return grad


def _accumulate(existing: Tensor | None, grad: Tensor) -> Tensor:
    return grad if existing is None else existing + grad


def _owned(grad: Tensor, handed_out: set[int]) -> Tensor:
    """A gradient safe to give to the user: never sharing memory with another one."""
    data = grad.data
    if id(data) in handed_out or not data.flags.owndata or not data.flags.writeable:
        grad = _make_tensor(data.copy(), False, None)
    handed_out.add(id(grad.data))
    return grad


def _run_backward(
    roots: Sequence[Tensor],
    seeds: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Backpropagate ``seeds`` (∂L/∂root) through the graph.

    Without ``capture``, gradients of leaves accumulate into ``leaf.grad``. With ``capture``
    (the functional :func:`grad`), the gradients of those tensors are returned instead and
    no ``.grad`` is touched.
    """
    from .tensor import Tensor

    # Where a captured tensor's gradient shows up: at its node (intermediate) or as a leaf.
    wanted_nodes: dict[int, int] = {}
    wanted_leaves: dict[int, int] = {}
    captured: list[Tensor | None] = []
    if capture is not None:
        for k, t in enumerate(capture):
            if t.grad_fn is not None:
                wanted_nodes[id(t.grad_fn)] = k
            else:
                wanted_leaves[id(t)] = k
        captured = [None] * len(capture)

    handed_out: set[int] = set()
    node_grads: dict[int, Tensor] = {}

    def deliver(parent: Function | Tensor, g: Tensor) -> None:
        g = _fit(g, parent)
        if isinstance(parent, Function):
            key = id(parent)
            node_grads[key] = _accumulate(node_grads.get(key), g)
        elif capture is not None:
            k = wanted_leaves.get(id(parent))
            if k is not None:
                captured[k] = _accumulate(captured[k], g)
        else:
            if not create_graph:
                g = _owned(g, handed_out)
            parent.grad = _accumulate(parent.grad, g)
            if not create_graph and parent.grad is not g:
                handed_out.add(id(parent.grad.data))

    with _switch(create_graph):
        for root, seed in zip(roots, seeds, strict=True):
            deliver(root.grad_fn if root.grad_fn is not None else root, seed)
        order = _topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
        for node in order:
            g = node_grads.pop(id(node), None)
            if g is None:
                continue
            node._check_not_released()
            if capture is not None:
                k = wanted_nodes.get(id(node))
                if k is not None:
                    captured[k] = g
            if node.retained is not None:
                holder = node.retained()
                if holder is not None:
                    holder.grad = _accumulate(
                        holder.grad, g if create_graph else _owned(g, handed_out)
                    )
            input_grads = node.backward(g)
            if not retain_graph:
                node.release()
            for parent, input_grad in zip(node.parents, input_grads, strict=True):
                if parent is not None and input_grad is not None:
                    if not isinstance(input_grad, Tensor):
                        raise TypeError(
                            f"{node.name}.backward returned {type(input_grad).__name__}, "
                            "expected a Tensor or None for each input"
                        )
                    deliver(parent, input_grad)
    return captured if capture is not None else None


def _seed_gradients(
    outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, caller: str
) -> list[Tensor]:
    """Check the outputs can be differentiated and build ∂L/∂output for each."""
    from .tensor import Tensor, _as_tensor

    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"{caller}: got {len(outputs)} outputs but {len(grad_outputs)} gradients for them"
        )
    seeds = []
    for k, (out, g) in enumerate(zip(outputs, grad_outputs, strict=True)):
        if not isinstance(out, Tensor):
            raise TypeError(f"{caller}: output {k} is a {type(out).__name__}, not a Tensor")
        if not out.requires_grad:
            raise RuntimeError(
                f"{caller}: output {k} (shape {out.shape}) does not require grad and has no "
                "grad_fn: nothing it was computed from requires grad (or it was computed "
                "under no_grad)"
            )
        if g is None:
            if out.size != 1:
                raise RuntimeError(
                    f"{caller}: output {k} has shape {out.shape}, not a scalar; pass the "
                    "gradient ∂L/∂output explicitly (a tensor of that shape) for non-scalar "
                    "outputs"
                )
            g = np.ones(out.shape, dtype=out.dtype)
        g = _as_tensor(g, out.dtype)
        if g.shape != out.shape:
            raise ValueError(
                f"{caller}: gradient for output {k} has shape {g.shape}, but the output has "
                f"shape {out.shape}"
            )
        seeds.append(g)
    return seeds


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate ∂tensor/∂leaf into ``leaf.grad`` for every leaf that requires grad."""
    seeds = _seed_gradients([tensor], None if gradient is None else [gradient], "backward")
    if retain_graph is None:
        retain_graph = create_graph
    _run_backward([tensor], seeds, retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return ∂L/∂input for each input, where L = Σ_k ⟨grad_outputs[k], outputs[k]⟩.

    Unlike ``backward`` it touches no ``.grad``. With ``create_graph=True`` the returned
    gradients are part of a graph and can be differentiated again (Hessian-vector
    products, gradient penalties).
    """
    from .tensor import Tensor

    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs]
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: input {k} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) does not require grad; call "
                "requires_grad_() on it before computing the outputs"
            )
    seeds = _seed_gradients(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    result = _run_backward(outputs, seeds, retain_graph, create_graph, capture=inputs)
    assert result is not None
    for k, (t, g) in enumerate(zip(inputs, result, strict=True)):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        if g is not None:
            result[k] = _fit(g, t)
    return tuple(result)
