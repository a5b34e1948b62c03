"""Reverse-mode automatic differentiation: the page to read first.

Every op (``ops.py``) is a :class:`Function` with two methods side by side: ``forward``
computes y from the inputs' arrays; ``backward(g, *saved)`` maps g = ∂L/∂y to ∂L/∂x for each
input. ``backward`` is written once, with operators and numpy functions, so it runs on plain
arrays when no gradient graph is wanted (fast) and on Tensors under ``create_graph=True``
(Tensor implements numpy's protocols), where it records its own graph: a gradient of a
gradient.

``Function.apply`` runs ``forward`` and, when some input requires grad, records a node: for
each input the node that made it, the leaf itself, or ``None``. Nodes do not hold their
outputs, so a graph lives exactly as long as someone holds its output.

``backward`` sorts the nodes reachable from the output once (Kahn's algorithm, without
recursion: a 10,000-step recurrence is fine), then runs them from the output down, so that
each node sees the *complete* gradient of its output before passing it on. Broadcasting is
undone in one place, :func:`sum_to`. What saved tensors guard (read-only arrays, version
counters) and anomaly mode live in ``safety.py``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import safety
from .tensor import Tensor

__all__ = ["Function", "detect_anomaly", "enable_grad", "grad", "is_grad_enabled", "keep_outputs", "no_grad"]
__all__ += ["set_grad_enabled"]


class _Mode(threading.local):
    """Per-thread switches, as in PyTorch (class attributes are each thread's defaults)."""

    enabled = True  # ops record the graph
    retain_graph = False  # in backward: the saved arrays must survive it
    anomaly = False  # safety.detect_anomaly: stop at the first op that makes NaN or inf
    keep_outputs = False  # nodes link their output (see Function.result)


mode = _Mode()


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward (in this thread)."""
    return mode.enabled


class _switch(contextlib.ContextDecorator):
    """Set the flag ``flag`` of this thread's mode on entry; restore it on exit."""

    flag = "enabled"

    def __init__(self, value: bool) -> None:
        self.value, self._previous = value, []

    def __enter__(self) -> _switch:
        self._previous.append(getattr(mode, self.flag))
        setattr(mode, self.flag, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(mode, self.flag, self._previous.pop())


class no_grad(_switch):
    """Context manager and decorator: ops inside record no graph (inference, updates)."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_switch):
    """Context manager and decorator: record the graph even inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_switch):
    """As PyTorch's: the call itself switches recording (``set_grad_enabled(False)``); a
    ``with`` block restores the mode from before the call; as a decorator it switches around
    each call of the function."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(bool(enabled))
        self.before, mode.enabled = mode.enabled, self.value

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> None:
        mode.enabled = self.before

    def __call__(self, func: Any) -> Any:
        mode.enabled = self.before
        return _switch(self.value)(func)


class detect_anomaly(_switch):
    """Context manager: stop at the first op whose forward or backward makes NaN or inf,
    naming the op, your file and line, and the shapes (``safety.py`` checks)."""

    flag = "anomaly"

    def __init__(self) -> None:
        super().__init__(True)


class keep_outputs(_switch):
    """Nodes recorded inside link their outputs while those live (drawings label them)."""

    flag = "keep_outputs"

    def __init__(self) -> None:
        super().__init__(True)


class Function:
    """One primitive op. Subclasses set ``name`` and define

    - ``forward(self, *arrays, **params) -> ndarray``, keeping any parameters it needs later
      on ``self``;
    - ``backward(self, g, *saved) -> tuple``: one gradient (or None) per input, where
      ``saved`` are the inputs when ``save_inputs`` (arrays, or Tensors under create_graph)
      and y is ``self.output()`` when ``save_output``. Gradients may keep y's broadcast shape:
      the engine sums them back to each input's shape.
    """

    name = "function"
    save_inputs = True
    save_output = False
    out: Any = None  # a weak link to the output Tensor, made only when asked (see result)
    retained: Any = None  # the same link, made by Tensor.retain_grad

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record a node."""
        fn = cls()
        try:
            data = np.asarray(fn.forward(*[t.data for t in inputs], **params))
        except (ValueError, IndexError, TypeError) as error:
            raise _op_error(cls.name, inputs, error) from None
        out = Tensor._wrap(data)
        if mode.anomaly:
            safety.check_forward(fn, inputs, data)
        if not mode.enabled or not any([t.requires_grad for t in inputs]):
            return out
        out.requires_grad, out.grad_fn = True, fn
        fn.parents = [(t.grad_fn or t) if t.requires_grad else None for t in inputs]
        fn.shape, fn.dtype = data.shape, data.dtype
        fn.saved = inputs if cls.save_inputs else ()
        fn.out_data = data if cls.save_output else None
        fn.guard = safety.SavedGuard.of(fn)  # read-only while saved; versions to check
        if mode.keep_outputs:
            fn.out = weakref.ref(out)
        return out

    def needs_grad(self, index: int) -> bool:
        """Whether input ``index`` needs a gradient (skip the work, and NaNs, for constants)."""
        return self.parents[index] is not None

    def output(self) -> Any:
        """y, for a derivative that uses it: the array, or under create_graph a Tensor
        attached to this very node (a second derivative flows through y to the inputs)."""
        if not mode.enabled:
            return self.out_data
        out = self.result()
        return out if out is not None and out.grad_fn is self else Tensor._wrap(self.out_data, self)

    def result(self) -> Tensor | None:
        """The output Tensor while it lives, if linked: named, retain_grad(), keep_outputs."""
        link = self.out or self.retained
        return None if link is None else link()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _op_error(name: str, inputs: Sequence[Tensor], error: Exception) -> Exception:
    """numpy's error inside an op, with the op's name and the input shapes and dtypes."""
    if str(error).startswith(f"{name}:"):
        return error
    shapes, dtypes = (", ".join(str(getattr(t, a)) for t in inputs) for a in ("shape", "dtype"))
    kind = next(k for k in (IndexError, TypeError, ValueError) if isinstance(error, k))
    return kind(f"{name}: {error} (input shapes {shapes}; dtypes {dtypes})")


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """g summed over the axes that broadcasting added or stretched, so it has ``shape``.

    The one place where broadcasting is undone; g is an ndarray or a Tensor.
    """
    lead = g.ndim - len(shape)
    if lead < 0 or any(n not in (1, m) for n, m in zip(shape, g.shape[lead:], strict=True)):
        if g.size == int(np.prod(shape)):  # only size-1 axes differ: (out,) for (1, out)
            return g.reshape(shape)
        raise ValueError(f"sum_to: cannot sum shape {g.shape} down to {shape}")
    stretched = [lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1]
    axes = tuple(range(lead)) + tuple(stretched)
    return np.sum(g, axis=axes, keepdims=True).reshape(shape) if axes or lead else g


def _topological_order(roots: list[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, each after every node that consumes its output.

    Kahn's algorithm: count each node's consumers, then emit a node once all of them are.
    """
    consumers = dict.fromkeys(roots, 0)
    stack = list(consumers)
    while stack:
        for parent in stack.pop().parents:
            if isinstance(parent, Function):
                if parent not in consumers:
                    stack.append(parent)
                consumers[parent] = consumers.get(parent, 0) + 1
    order, ready = [], [root for root in consumers if consumers[root] == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node.parents:
            if isinstance(parent, Function):
                consumers[parent] -= 1
                if consumers[parent] == 0:
                    ready.append(parent)
    return order


class _Gradients(dict):
    """∂L/∂(a node's output, or a leaf) summed so far, keyed by the node or the leaf."""

    def __init__(self) -> None:
        self.owned: set[Any] = set()  # keys whose array the engine made: safe to add into

    def add(self, key: Function | Tensor, g: Any) -> None:
        if type(g) is not np.ndarray and not isinstance(g, Tensor):
            if hasattr(g, "add_into"):  # a sparse gradient (indexing) adds itself in place
                buffer = self.get(key)
                if buffer is None or key not in self.owned:
                    buffer = np.zeros(key.shape, key.dtype) if buffer is None else buffer.copy()
                g.add_into(buffer)
                self[key] = buffer
                self.owned.add(key)
                return
            g = np.asarray(g)  # numpy gives scalars, not 0-d arrays, for 0-d arithmetic
        if g.shape != key.shape:
            g = sum_to(g, key.shape)
        if g.dtype != key.dtype:
            g = g.astype(key.dtype)
        if key not in self:
            self[key] = g
        elif key in self.owned:
            self[key] += g
        else:  # a new sum: the engine's own (unless it is recorded in a graph)
            self[key] = self[key] + g
            if isinstance(self[key], np.ndarray):
                self.owned.add(key)


def _run_backward(roots, seeds, retain_graph, create_graph, wanted=frozenset(), targets=None):
    """Backpropagate ``seeds`` (∂L/∂root) through the graph. Returns the gradients of the
    leaves reached and of the nodes whose ids are ``wanted`` (and of retain_grad tensors);
    with ``targets`` (ids of nodes and leaves), only nodes with a target below them run."""
    grads, found = _Gradients(), {}
    for root, seed in zip(roots, seeds, strict=True):
        grads.add(root.grad_fn or root, seed if create_graph else seed.data)
    order = _topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    needed = None if targets is None else _leading_to(order, targets)
    previous = mode.enabled, mode.retain_graph
    mode.enabled, mode.retain_graph = create_graph, retain_graph
    try:
        for node in order:
            g = grads.pop(node, None)
            if g is None:
                continue
            if id(node) in wanted or node.retained is not None:
                found[node] = g
            if needed is not None and id(node) not in needed:
                continue  # nothing asked for lies below: leave it unrun (and unreleased)
            saved = safety.check_saved(node)  # raises if released or changed in place
            if not create_graph:
                saved = [t.data for t in saved]
            input_grads = node.backward(g, *saved)
            safety.check_backward(node, g, input_grads, create_graph)
            if not retain_graph:
                node.saved, node.out_data, node.guard = safety.RELEASED, None, None
            for parent, input_grad in zip(node.parents, input_grads, strict=True):
                if parent is not None and input_grad is not None:
                    grads.add(parent, input_grad)
    finally:
        mode.enabled, mode.retain_graph = previous
    return grads, found


def _leading_to(order: list[Function], targets: set[int]) -> set[int]:
    """Ids of the nodes in ``order`` with one of ``targets`` among their inputs' ancestry."""
    needed: set[int] = set()
    for node in reversed(order):  # inputs before the nodes that consume them
        if any(p is not None and (id(p) in targets or id(p) in needed) for p in node.parents):
            needed.add(id(node))
    return needed


def _seed(output: Any, gradient: Any, caller: str, k: int = 0) -> Tensor:
    """∂L/∂output, checked; ones for a scalar output when no gradient is given."""
    if not isinstance(output, Tensor):
        raise TypeError(f"{caller}: output {k} is a {type(output).__name__}, not a Tensor")
    if not output.requires_grad:
        raise RuntimeError(
            f"{caller}: output {k} (shape {output.shape}) does not require grad and has no "
            "grad_fn: nothing it was computed from requires grad (or it ran under no_grad)"
        )
    if gradient is None and output.size != 1:
        raise RuntimeError(
            f"{caller}: output {k} has shape {output.shape}, not a scalar; pass the gradient "
            "∂L/∂output explicitly (a tensor of that shape) for non-scalar outputs"
        )
    if gradient is None:
        return Tensor._wrap(np.ones(output.shape, output.dtype))
    seed = Tensor.of(gradient, output.dtype)
    if seed.shape != output.shape:
        raise ValueError(
            f"{caller}: the gradient for output {k} has shape {seed.shape}, but the output "
            f"has shape {output.shape}"
        )
    return seed


def _hand_out(g: Any, given: set[int]) -> Tensor:
    """Gradient g as a Tensor that shares memory with nothing handed out before (``given``:
    ids of those arrays): a later in-place update of one gradient must not change another."""
    array = g.data if isinstance(g, Tensor) else g
    if id(array) in given or array.base is not None:
        with enable_grad():  # a copy that stays in the gradient's graph, if it has one
            g = g + 0 if isinstance(g, Tensor) else g.copy()
    given.add(id(g.data if isinstance(g, Tensor) else g))
    return g if isinstance(g, Tensor) else Tensor._wrap(g)


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None, create_graph=False
) -> None:
    """Accumulate ∂tensor/∂leaf into ``leaf.grad`` for every leaf that requires grad, and
    into ``.grad`` of every ``retain_grad`` tensor. The graph's saved arrays are freed
    afterwards unless ``retain_graph`` (default: ``create_graph``)."""
    seed = _seed(tensor, gradient, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    grads, found = _run_backward([tensor], [seed], retain, create_graph)
    given, targets = {id(seed.data)}, {node.retained(): g for node, g in found.items()}
    targets.update(grads)  # a leaf's own gradient wins (a retained tensor made a leaf since)
    for t, g in targets.items():
        if t is not None:
            t.grad = _hand_out(g, given) if t.grad is None else t.grad + g


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """∂L/∂input for each input, where L = Σ_k ⟨grad_outputs[k], outputs[k]⟩; touches no
    ``.grad``. With ``create_graph`` the results can be differentiated again."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} gradients")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} ({getattr(t, 'shape', type(t).__name__)}) does not require "
                "grad; call requires_grad_() on it before computing the outputs"
            )
    seeds = [_seed(out, g, "grad", k) for k, (out, g) in enumerate(zip(outputs, grad_outputs))]
    keys = [t.grad_fn or t for t in inputs]
    retain = create_graph if retain_graph is None else retain_graph
    ids = set(map(id, keys))
    grads, found = _run_backward(outputs, seeds, retain, create_graph, ids, ids)
    given, results = {id(s.data) for s in seeds}, []
    for k, key in enumerate(keys):
        g = found.get(key) if isinstance(key, Function) else grads.get(key)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {inputs[k].shape}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        results.append(None if g is None else _hand_out(g, given))
    return tuple(results)
