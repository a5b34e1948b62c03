"""Reverse-mode automatic differentiation: the page to read first.

Every op (``ops.py``) is a :class:`Function`: ``forward`` computes y from the inputs' arrays;
``backward(g, *saved)`` maps g = ∂L/∂y to ∂L/∂x, written once with operators and numpy
functions: it runs on arrays, or on Tensors under ``create_graph=True`` (Tensor speaks
numpy's protocols). ``apply`` records a node that knows, for each input, the node that made
it, the leaf itself, or ``None``; ``backward`` sorts the nodes once, without recursion, and
runs each after all of its output's consumers. ``safety.py`` guards what nodes saved.
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


class _Mode:
    """One thread's switches: ops record the graph; backward keeps what the graph saved;
    anomaly mode (checks in safety.py); nodes link their outputs (see Function.result)."""

    enabled, retain_graph, anomaly, keep_outputs = True, False, False, False


_threads = threading.local()  # each thread's _Mode: grad mode is per thread, as in PyTorch


def mode() -> _Mode:
    """This thread's switches (one thread-local read, then plain attributes)."""
    try:
        return _threads.mode
    except AttributeError:  # the thread's first use
        _threads.mode = _Mode()
        return _threads.mode


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward (in this thread)."""
    return mode().enabled


class _switch(contextlib.ContextDecorator):
    """Context manager and decorator: set ``mode.<flag>`` to ``value`` inside, then restore."""

    flag, value = "enabled", True

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> _switch:
        self._previous.append(getattr(mode(), self.flag))
        setattr(mode(), self.flag, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(mode(), self.flag, self._previous.pop())


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
        self.before, mode().enabled = mode().enabled, self.value

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> None:
        mode().enabled = self.before

    def __call__(self, func: Any) -> Any:
        mode().enabled = self.before
        return (enable_grad if self.value else no_grad)()(func)


class Function:
    """One op: ``forward(self, *arrays, **params)`` keeps on ``self`` what ``backward(self, g,
    *saved)`` needs, which returns one gradient (or None) per input; ``saved`` are the inputs
    if ``save_inputs``, y is ``self.output()`` if ``save_output``; y's broadcast shape is fine."""

    __slots__ = ("parents", "saved", "out_data", "shape", "dtype", "kept", "clock", "view")
    __slots__ += ("__dict__", "__weakref__")  # (subclasses may keep anything on self)
    save_inputs, save_output = True, False  # what backward receives: the inputs, y
    out = retained = None  # weak links to the output Tensor, made only when asked (result)

    def __init_subclass__(cls) -> None:  # an op without a name of its own: its class's
        cls.name = cls.__dict__.get("name", cls.__name__)

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record a node."""
        fn = cls()
        try:
            arrays = [t.data for t in inputs]
            data = fn.forward(*arrays, **params) if params else fn.forward(*arrays)
        except (ValueError, IndexError, TypeError) as error:
            raise safety.op_error(cls.name, inputs, error) from None
        data = data if type(data) is np.ndarray else np.asarray(data)
        out, switches = Tensor._wrap(data), mode()
        if switches.anomaly:
            safety.check_forward(fn, inputs, data)
        if not (switches.enabled and True in [t.requires_grad for t in inputs]):
            return out
        out.requires_grad, out.grad_fn = True, fn
        fn.parents = [(t.grad_fn or t) if t.requires_grad else None for t in inputs]
        fn.shape, fn.dtype = data.shape, data.dtype
        fn.saved, fn.out_data = inputs if cls.save_inputs else (), data if cls.save_output else None
        safety.keep(fn, data)  # read-only while saved, and checked for changes in backward
        if switches.keep_outputs:
            fn.out = weakref.ref(out)
        return out

    def needs_grad(self, index: int) -> bool:
        """Whether input ``index`` needs a gradient (skip the work, and NaNs, for constants)."""
        return self.parents[index] is not None

    def output(self) -> Any:
        """y, for a derivative that uses it: the array, or under create_graph a Tensor
        attached to this very node (a second derivative flows through y to the inputs)."""
        if not mode().enabled:
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
    if len(roots) == 1 and not any([isinstance(p, Function) for p in roots[0].parents]):
        return roots  # one op on leaves: nothing to sort
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
        owned = vars(self).get("owned")  # keys whose array the engine made (from the first sum)
        if owned is None:
            owned = self.owned = set()
        if key not in owned:
            self[key] = self[key].copy() if key in self else np.zeros(key.shape, key.dtype)
            owned.add(key)
        return self[key]


def _run_backward(roots, seeds, retain_graph, create_graph, targets=None):
    """Backpropagate ``seeds`` (∂L/∂root): the gradients of the leaves, and of the retained
    nodes and those whose ids are ``targets``; then only nodes above some target run."""
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads, found = _Gradients(), {}
    for root, seed in zip(roots, seeds):  # noqa: B905 (one seed per root: check_seed made them)
        grads.add(root.grad_fn or root, seed if create_graph else seed.data)
    order = _topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
    needed = None if targets is None else _leading_to(order, targets)
    switches = mode()
    previous, anomaly = (switches.enabled, switches.retain_graph), switches.anomaly
    switches.enabled, switches.retain_graph = create_graph, retain_graph
    try:
        for node in order:
            g = grads.pop(node, None)
            if g is None:
                continue
            if node.retained is not None or (targets is not None and id(node) in targets):
                found[node] = g
            if needed is not None and id(node) not in needed:
                continue  # nothing asked for lies below: leave it unrun (and unreleased)
            saved = safety.saved_values(node, create_graph)  # raises if released or changed
            input_grads = node.backward(g, *saved)
            safety.check_backward(node, g, input_grads, create_graph, anomaly)
            if not retain_graph:
                safety.release(node)
            for parent, input_grad in zip(node.parents, input_grads):  # noqa: B905 (checked)
                if parent is not None and input_grad is not None:
                    grads.add(parent, input_grad)
    finally:
        switches.enabled, switches.retain_graph = previous
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
    for node, g in found.items():  # a leaf's own gradient wins (a retained one made a leaf since)
        grads.setdefault(node.retained(), g)
    given = {id(seed.data)}
    for t, g in grads.items():
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
    inputs = safety.check_inputs([inputs] if isinstance(inputs, Tensor) else list(inputs))
    seeds = safety.check_seeds(outputs, grad_outputs)
    keys = [t.grad_fn or t for t in inputs]
    grads, found = _run_backward(outputs, seeds, retain_graph, create_graph, set(map(id, keys)))
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
