"""Reverse-mode automatic differentiation: the page to read first.

Every op (``ops.py``) is a :class:`Function`: ``forward`` computes y from the inputs' arrays;
``backward(g, *saved)`` maps g = ∂L/∂y to ∂L/∂x for each input. ``backward`` is written once,
with operators and numpy functions: it runs on arrays (fast), or on Tensors under
``create_graph=True``, recording its own graph (Tensor speaks numpy's protocols).

``Function.apply`` runs ``forward`` and, when some input requires grad, records a node that
knows, for each input, the node that made it, the leaf itself, or ``None``. ``backward``
sorts the nodes once, without recursion (a 10,000-step recurrence is fine), and runs them
from the output down, so each sees the *complete* gradient of its output before passing it
on. What guards saved tensors (read-only arrays, version counters) lives in ``safety.py``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import ops, safety
from .tensor import Tensor

__all__ = ["Function", "detect_anomaly", "enable_grad", "grad", "is_grad_enabled", "no_grad"]


class _Mode(threading.local):
    """This thread's switches, as in PyTorch (the class attributes are each thread's start)."""

    enabled = True  # ops record the graph
    retain_graph = False  # in backward: the saved arrays must survive it
    anomaly = False  # stop at the first op that makes NaN or inf (checks in safety.py)
    keep_outputs = False  # nodes link their output (see Function.result)


mode = _Mode()


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward (in this thread)."""
    return mode.enabled


class _switch(contextlib.ContextDecorator):
    """Context manager and decorator: set ``mode.<flag>`` to ``value`` inside, then restore."""

    flag, value = "enabled", True

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> _switch:
        self._previous.append(getattr(mode, self.flag))
        setattr(mode, self.flag, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(mode, self.flag, self._previous.pop())


class no_grad(_switch):
    """Ops inside record no graph (inference, parameter updates)."""

    value = False


class enable_grad(_switch):
    """Ops inside record the graph, even within ``no_grad``."""


class detect_anomaly(_switch):
    """Stop at the first op whose forward or backward makes NaN or inf, naming it and where."""

    flag = "anomaly"


class keep_outputs(_switch):
    """Nodes recorded inside link their outputs while those live (drawings label them)."""

    flag = "keep_outputs"


class set_grad_enabled(_switch):
    """As PyTorch's: the call switches; a ``with`` block restores the mode from before it."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.value = bool(enabled)
        self.before, mode.enabled = mode.enabled, self.value

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> None:
        mode.enabled = self.before

    def __call__(self, func: Any) -> Any:
        mode.enabled = self.before
        return (enable_grad if self.value else no_grad)()(func)


class Function:
    """One op: ``forward(self, *arrays, **params)`` keeps on ``self`` what ``backward(self, g,
    *saved)`` needs, which returns one gradient (or None) per input; ``saved`` are the inputs
    if ``save_inputs``, y is ``self.output()`` if ``save_output``; y's broadcast shape is fine."""

    __slots__ = ("parents", "saved", "out_data", "shape", "dtype", "kept", "clock", "view")
    __slots__ += ("__dict__", "__weakref__")  # (subclasses may keep anything on self)
    name = "function"
    save_inputs = True
    save_output = False
    out: Any = None  # weak links to the output Tensor, made only when asked (see result);
    retained: Any = None  # ...this one by Tensor.retain_grad

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record a node."""
        fn = cls()
        try:
            data = fn.forward(*[t.data for t in inputs], **params)
        except (ValueError, IndexError, TypeError) as error:
            raise safety.op_error(cls.name, inputs, error) from None
        out = Tensor._wrap(data if type(data) is np.ndarray else np.asarray(data))
        if mode.anomaly:
            safety.check_forward(fn, inputs, data)
        if not (mode.enabled and True in [t.requires_grad for t in inputs]):
            return out
        out.requires_grad, out.grad_fn = True, fn
        fn.parents = [(t.grad_fn or t) if t.requires_grad else None for t in inputs]
        fn.shape, fn.dtype = out.data.shape, out.data.dtype
        fn.saved = inputs if cls.save_inputs else ()
        fn.out_data = out.data if cls.save_output else None
        safety.keep(fn, out.data)  # read-only while saved, and checked for changes in backward
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


def _topological_order(roots: list[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, each after every node that consumes its output (Kahn's
    algorithm: count each node's consumers, then emit a node once all of them are)."""
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
                left = consumers[parent] = consumers[parent] - 1
                if left == 0:
                    ready.append(parent)
    return order


class _Gradients(dict):
    """∂L/∂(a node's output, or a leaf) summed so far, keyed by the node or the leaf."""

    def __init__(self) -> None:
        self.owned: set[Any] = set()  # keys whose array the engine made: safe to add into

    def add(self, key: Function | Tensor, g: Any) -> None:
        if type(g) is not np.ndarray and not isinstance(g, Tensor):
            if hasattr(g, "add_into"):  # a sparse gradient (indexing) adds itself in place
                return g.add_into(self._owned(key))
            g = np.asarray(g)  # numpy gives scalars, not 0-d arrays, for 0-d arithmetic
        if g.shape != key.shape:
            g = ops.sum_to(g, key.shape)
        if g.dtype is not key.dtype and g.dtype != key.dtype:  # (`is` first: the usual case)
            g = g.astype(key.dtype)
        existing = self.get(key)
        if existing is None or isinstance(g, Tensor):  # a sum of Tensors is recorded too
            self[key] = g if existing is None else existing + g
        else:
            np.add(self._owned(key), g, out=self[key])

    def _owned(self, key: Function | Tensor) -> np.ndarray:
        """key's gradient in an array of the engine's own (never one an op handed over)."""
        if key not in self.owned:
            self[key] = self[key].copy() if key in self else np.zeros(key.shape, key.dtype)
            self.owned.add(key)
        return self[key]


def _run_backward(roots, seeds, retain_graph, create_graph, wanted=frozenset(), targets=None):
    """Backpropagate ``seeds`` (∂L/∂root): the gradients of the leaves, and of the nodes whose
    ids are ``wanted`` or that are retained; only nodes above some ``targets`` id run."""
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads, found = _Gradients(), {}
    for root, seed in zip(roots, seeds, strict=True):
        grads.add(root.grad_fn or root, seed if create_graph else seed.data)
    order = _topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    needed = None if targets is None else _leading_to(order, targets)
    previous, anomaly = (mode.enabled, mode.retain_graph), mode.anomaly
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
            saved = safety.saved_values(node, create_graph)  # raises if released or changed
            input_grads = node.backward(g, *saved)
            safety.check_backward(node, g, input_grads, create_graph, anomaly)
            if not retain_graph:
                safety.release(node)
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


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None, create_graph=False
) -> None:
    """Add ∂tensor/∂t to ``t.grad`` for each leaf t that requires grad and each retained t;
    then free what the graph saved, unless ``retain_graph`` (default: ``create_graph``)."""
    seed = safety.check_seed(tensor, gradient, "backward")
    grads, found = _run_backward([tensor], [seed], retain_graph, create_graph)
    given, targets = {id(seed.data)}, {node.retained(): g for node, g in found.items()}
    targets.update(grads)  # a leaf's own gradient wins (a retained tensor made a leaf since)
    for t, g in targets.items():
        if t is not None:
            t.grad = safety.hand_out(g, given) if t.grad is None else t.grad + g


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
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [None] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} gradients")
    safety.check_inputs(inputs)
    pairs = enumerate(zip(outputs, grad_outputs, strict=True))
    seeds = [safety.check_seed(out, g, "grad", k) for k, (out, g) in pairs]
    keys = [t.grad_fn or t for t in inputs]
    ids = set(map(id, keys))
    grads, found = _run_backward(outputs, seeds, retain_graph, create_graph, ids, ids)
    given, results = {id(s.data) for s in seeds}, []
    for k, key in enumerate(keys):
        g = found.get(key) if isinstance(key, Function) else grads.get(key)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {inputs[k].shape}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        results.append(None if g is None else safety.hand_out(g, given))
    return tuple(results)
