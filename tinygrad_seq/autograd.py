"""Reverse-mode automatic differentiation: graph nodes, grad mode and the backward engine.

Read this file first. Every op (``ops.py``) is a :class:`Function`: ``forward`` works on
ndarrays, ``backward`` maps the gradient of the output, ∂L/∂y, to the gradients of the
inputs, ∂L/∂x_i, using Tensor ops — so that when ``create_graph=True`` the gradient
computation is itself recorded and can be differentiated again.

The graph is made of Function nodes. A node knows its ``parents``: for each input, the node
that produced it, or the input itself when it is a leaf that requires grad, or ``None`` when
no gradient is needed. A node does not hold its output (at most weakly, when asked: see
``Function.result``), so a graph never keeps itself alive through a reference cycle: it
lives exactly as long as someone holds its output.

``backward`` sorts the nodes reachable from the output once (iteratively, so a 10,000-step
recurrence is fine), then visits them in reverse topological order, so that every node sees
the *complete* gradient of its output before passing it on. Broadcasting is undone in one
place, :func:`_fit`, not in each op. In-place safety and anomaly mode live in ``safety.py``.
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
    "DoubleBackwardError",
    "Function",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "is_graph_retained",
    "keep_outputs",
    "no_grad",
    "set_grad_enabled",
]

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- grad mode


class _GradModeState:
    """Whether ops record the graph. One process-wide switch, read on every op.

    ``retain_graph`` is set during a backward pass: whether the graph's saved arrays must
    survive it. (An instance with slots, not class attributes: writing a class attribute
    would invalidate the interpreter's attribute caches on every switch.)
    """

    __slots__ = ("enabled", "retain_graph", "anomaly", "in_backward", "keep_outputs")

    def __init__(self) -> None:
        self.enabled = True
        self.retain_graph = False
        self.anomaly = False
        self.in_backward = False  # anomaly mode checks a backward step as a whole
        self.keep_outputs = False  # every node links its output (see Function.result)


_GradMode = _GradModeState()


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward."""
    return _GradMode.enabled


def is_graph_retained() -> bool:
    """During a backward pass, True when it was called with ``retain_graph``. Otherwise a
    hand-derived backward may reuse its saved arrays as scratch space (they are released
    right after it anyway)."""
    return _GradMode.retain_graph


class set_grad_enabled:
    """Turn graph recording on or off: as a call, a context manager or a decorator.

    As in PyTorch, the call itself switches the mode; leaving a ``with`` block restores the
    mode from before the call (also when the same object is used again).
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self.previous

    def __call__(self, func: F) -> F:
        # Used as a decorator: the constructor switched the mode already; undo that and
        # switch it around each call instead.
        _GradMode.enabled = self.previous
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _switch(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _switch(contextlib.ContextDecorator):
    """Set the grad-mode flag ``flag`` (default: whether ops record the graph) to ``mode`` on
    entry and restore its previous value on exit."""

    flag = "enabled"

    def __init__(self, mode: bool) -> None:
        self.mode = mode
        self._previous: list[bool] = []

    def __enter__(self) -> _switch:
        self._previous.append(getattr(_GradMode, self.flag))
        setattr(_GradMode, self.flag, self.mode)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(_GradMode, self.flag, self._previous.pop())


class keep_outputs(_switch):
    """Nodes recorded inside link their output Tensors (:meth:`Function.result`) for as long
    as those live, as a drawing that labels every intermediate result needs."""

    flag = "keep_outputs"

    def __init__(self) -> None:
        super().__init__(True)


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
    (as ``self.saved``); without it, ``forward`` may set ``self.saved`` to arrays of its own
    (a hand-derived backward's buffers), released after backward like the inputs would be.
    ``save_output`` keeps the output array, read back with :meth:`output`. The gradients
    returned may have the broadcast shape of the output: the engine sums them back to each
    input's shape.
    """

    __slots__ = (
        "parents",
        "saved",
        "out_data",
        "shape",
        "dtype",
        "guard",
        "__dict__",
        "__weakref__",
    )

    name: str = "function"
    save_inputs: bool = True
    save_output: bool = False
    retained: Callable[[], Tensor | None] | None = None  # set by Tensor.retain_grad
    # A weak link to the output Tensor, made only where it is asked for (see ``result``):
    # a weak reference per node would cost every op time, and the garbage collector work.
    out: Callable[[], Tensor | None] | None = None

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    # Optional fast path: the same derivative on plain ndarrays, ``(g) -> tuple of arrays or
    # None``. The engine uses it when the gradient's own graph is not recorded (no
    # create_graph); ``backward`` stays the definition. Tests check that both agree.
    backward_arrays: Callable[..., tuple[np.ndarray | None, ...]] | None = None

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record a node."""
        fn = cls()
        fn.saved = inputs if cls.save_inputs else ()  # forward may keep arrays of its own
        n = len(inputs)
        try:  # unrolled for the common cases (a call with ** costs more): ops are called a lot
            if params:
                data = fn.forward(*[t.data for t in inputs], **params)
            elif n == 2:
                data = fn.forward(inputs[0].data, inputs[1].data)
            elif n == 1:
                data = fn.forward(inputs[0].data)
            else:
                data = fn.forward(*[t.data for t in inputs])
        except (ValueError, IndexError, TypeError) as error:
            raise _op_error(cls.name, inputs, error) from None
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        if _GradMode.anomaly and not _GradMode.in_backward:
            safety.check_forward(fn, inputs, data)
        out = _new_object(_Tensor)  # what _make_tensor does, inlined: this runs for every op
        out.data, out.grad, out._name = data, None, None
        out.requires_grad, out.grad_fn = False, None
        if not _GradMode.enabled:
            return out
        # For each input, the node that made it, the leaf itself, or None (needs no grad).
        if n == 1:
            a = inputs[0]
            if not a.requires_grad:
                return out
            parents: tuple[Any, ...] = (a.grad_fn or a,)
        elif n == 2:
            a, b = inputs
            if not (a.requires_grad or b.requires_grad):
                return out
            parents = (
                (a.grad_fn or a) if a.requires_grad else None,
                (b.grad_fn or b) if b.requires_grad else None,
            )
        else:
            parents = tuple([(t.grad_fn or t) if t.requires_grad else None for t in inputs])
            if all(parent is None for parent in parents):
                return out
        out.requires_grad, out.grad_fn = True, fn
        fn.parents = parents
        fn.out_data = data if cls.save_output else None
        fn.shape, fn.dtype = data.shape, data.dtype
        if _GradMode.keep_outputs:
            fn.out = weakref.ref(out)
        # Backward will read what was saved: keep those arrays read-only until it has run.
        fn.guard = _guard(inputs) if fn.saved else None
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
        out = self.result()
        if out is not None and out.grad_fn is self:
            return out
        return _make_tensor(self.out_data, _GradMode.enabled, self if _GradMode.enabled else None)

    def result(self) -> Tensor | None:
        """The output Tensor of this node while it is alive, if it is linked to the node.

        It is when it was given a ``name`` or called ``retain_grad()``, or when the node was
        recorded under :func:`keep_outputs` (drawings use this to label results).
        """
        link = self.out or self.retained
        return None if link is None else link()

    def _raise_released(self) -> None:
        raise RuntimeError(
            f"backward: trying to backpropagate through the graph a second time (op "
            f"'{self.name}', output shape {self.shape}); its saved arrays were released "
            "by the first backward. Pass retain_graph=True to the first backward call "
            "if you need to backpropagate twice."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class DoubleBackwardError(RuntimeError):
    """A Function whose derivative exists only on arrays (a fused kernel) was asked for a
    differentiable backward (``create_graph=True``)."""


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


# Bound by tensor.py, which imports this module: the engine builds and recognises tensors
# without importing tensor.py (that would be an import cycle).
_Tensor: type = object
_new_object = object.__new__


def _make_tensor(data: np.ndarray, requires_grad: bool, grad_fn: Function | None) -> Tensor:
    raise NotImplementedError("tinygrad_seq.tensor binds this when it is imported")


# --------------------------------------------------------------------------- the engine


def _topological_order(roots: Sequence[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, every node after all nodes that consume its output.

    Kahn's algorithm, iteratively (a 10,000-step recurrence is fine), in linear time: count
    each node's consumers, then emit a node once all of its consumers have been emitted.
    """
    roots = list(dict.fromkeys(roots))
    consumers: dict[Function, int] = dict.fromkeys(roots, 0)
    stack = list(roots)
    while stack:
        for parent in stack.pop().parents:
            if isinstance(parent, Function):
                if parent in consumers:
                    consumers[parent] += 1
                else:
                    consumers[parent] = 1
                    stack.append(parent)
    ready = [root for root in roots if consumers[root] == 0]
    order: list[Function] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node.parents:
            if isinstance(parent, Function):
                left = consumers[parent] - 1
                consumers[parent] = left
                if left == 0:
                    ready.append(parent)
    return order


def _sum_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """x summed over the axes that broadcasting added or stretched, so it has ``shape``."""
    lead = x.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:], strict=True)):
        raise ValueError(f"sum_to: cannot sum shape {x.shape} down to {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1
    )
    return np.sum(x, axis=axes, keepdims=True).reshape(shape)


def _fit(grad: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Undo broadcasting (sum to the input's shape) and match the input's dtype.

    ``grad`` is an ndarray, or a Tensor when the gradient's graph is recorded.
    """
    if grad.shape != shape:
        grad = grad.sum_to(shape) if isinstance(grad, _Tensor) else _sum_to(grad, shape)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


class Scatter:
    """A sparse input gradient from ``backward_arrays``: ``values`` added at ``index``.

    ``x[t]``'s gradient is zero except at row t. Returning it as a Scatter lets the engine add
    it straight into one buffer for x, instead of building a full-size array for every
    slice: the T steps of a recurrence read x[0] … x[T−1], and full arrays would cost
    O(T²) time and memory traffic.
    """

    __slots__ = ("index", "values", "basic")

    def __init__(self, index: Any, values: np.ndarray, basic: bool) -> None:
        self.index, self.values, self.basic = index, values, basic

    def add_into(self, buffer: np.ndarray) -> None:
        if self.basic:  # slices and integers pick each place at most once
            buffer[self.index] += self.values
        else:  # integer arrays may repeat a place: those contributions accumulate
            np.add.at(buffer, self.index, self.values)


def _deliver(
    pending: dict[Any, Any], owned: set[Any], create_graph: bool, parent: Function | Tensor, g: Any
) -> None:
    """Add ``g`` to ``parent``'s pending gradient (fitted to its shape and dtype).

    ``owned`` holds the keys whose pending array the engine made itself: safe to add into.
    """
    existing = pending.get(parent)
    if not create_graph and type(g) is not np.ndarray:
        if type(g) is Scatter:
            if existing is None:
                buffer = np.zeros(parent.shape, dtype=parent.dtype)
            else:
                buffer = existing if parent in owned else existing.copy()
            g.add_into(buffer)
            pending[parent] = buffer
            owned.add(parent)
            return
        g = np.asarray(g)  # numpy gives scalars, not 0-d arrays, for 0-d arithmetic
    shape, dtype = parent.shape, parent.dtype
    if g.shape != shape or g.dtype is not dtype:
        g = _fit(g, shape, dtype)
    if existing is None:
        pending[parent] = g
    elif parent in owned:
        existing += g
    elif create_graph:  # a recorded sum must stay as it is: it is in the graph
        pending[parent] = existing + g
    else:
        total = existing + g  # a new array: the engine's own, safe to add into from now on
        pending[parent] = total if type(total) is np.ndarray else np.asarray(total)
        owned.add(parent)


def _run_backward(
    roots: Sequence[Tensor],
    seeds: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    wanted_nodes: dict[Function, Any] | None = None,
    targets: set[int] | None = None,
) -> dict[Tensor, Any]:
    """Backpropagate ``seeds`` (∂L/∂root) through the graph.

    Gradients travel as plain ndarrays, and each node runs its ``backward_arrays`` if it has
    one. With ``create_graph`` they travel as Tensors through ``backward``, so that their
    own graph is recorded.

    Returns the total gradient of every leaf reached (and of every ``retain_grad`` tensor),
    as ``{tensor: gradient}`` (ndarrays, or Tensors with ``create_graph``); the callers
    decide where it goes (``.grad`` or the result of :func:`grad`). The gradient of each
    node in ``wanted_nodes`` is recorded there. With ``targets`` (ids of the nodes and
    leaves whose gradients are wanted, as in :func:`grad`), only the nodes with a target
    below them are run.
    """
    # ∂L/∂(a node's output, or a leaf), summed so far; keyed by the node or the leaf itself.
    pending: dict[Any, Any] = {}
    owned: set[Any] = set()  # keys whose pending array the engine made: safe to add into

    mode = _GradMode
    previous = mode.enabled, mode.retain_graph, mode.in_backward
    mode.enabled, mode.retain_graph, mode.in_backward = create_graph, retain_graph, True
    anomaly = mode.anomaly
    retained: dict[Tensor, Any] = {}  # gradients of retain_grad tensors (non-leaves)
    order = None
    try:
        if len(roots) == 1 and roots[0].grad_fn is not None:  # the common case, inline
            node = roots[0].grad_fn
            seed = seeds[0] if create_graph else seeds[0].data
            if seed.dtype is node.dtype and not create_graph:  # the shape is checked already
                pending[node] = seed
            else:
                _deliver(pending, owned, create_graph, node, seed)
            root_nodes = [node]
            for parent in node.parents:  # a graph of one op on leaves needs no sort
                if isinstance(parent, Function):
                    break
            else:
                order = root_nodes
        else:
            root_nodes = []
            for root, seed in zip(roots, seeds):  # noqa: B905 (the callers pair them)
                node = root.grad_fn
                _deliver(
                    pending,
                    owned,
                    create_graph,
                    root if node is None else node,
                    seed if create_graph else seed.data,
                )
                if node is not None:
                    root_nodes.append(node)
        if order is None:
            order = _topological_order(root_nodes)
        needed = None if targets is None else _leading_to(order, targets)
        for node in order:
            g = pending.pop(node, None)
            if g is None:
                continue
            if wanted_nodes or node.retained is not None:
                _observe(node, g, retained, wanted_nodes)
            if needed is not None and id(node) not in needed:
                continue  # no requested gradient lies below: leave it unrun (and unreleased)
            if node.saved is _RELEASED:
                node._raise_released()
            if create_graph:
                input_grads = node.backward(g)
                _check_backward_result(node, input_grads)
            elif node.backward_arrays is not None:
                input_grads = node.backward_arrays(g)
            else:  # only the Tensor form: run it on a wrapped array and unwrap the results
                input_grads = node.backward(_make_tensor(g, False, None))
                _check_backward_result(node, input_grads)
                input_grads = [None if t is None else t.data for t in input_grads]
            if anomaly:
                safety.check_backward(node, g, input_grads)
            if not retain_graph:
                node.saved = _RELEASED
                node.out_data = node.guard = None
            # (zip without strict: one entry per input is checked above for user-written
            # backwards; the library's own are tested)
            for parent, input_grad in zip(node.parents, input_grads):  # noqa: B905
                if parent is None or input_grad is None:
                    continue
                if parent not in pending and type(input_grad) is np.ndarray:
                    # The common case, inline: the first gradient, an array that fits.
                    like = parent if isinstance(parent, Function) else parent.data
                    if input_grad.shape == like.shape and input_grad.dtype is like.dtype:
                        pending[parent] = input_grad
                        continue
                _deliver(pending, owned, create_graph, parent, input_grad)
    finally:
        mode.enabled, mode.retain_graph, mode.in_backward = previous
    # Every node was popped when it ran: what is left are the gradients of the leaves. (They
    # win over a retained gradient of the same tensor, a leaf made by detach_() since.)
    if retained:
        retained.update(pending)
        return retained
    return pending


def _leading_to(order: Sequence[Function], targets: set[int]) -> set[int]:
    """Ids of the nodes in ``order`` that have one of ``targets`` among their inputs' ancestry."""
    needed: set[int] = set()
    for node in reversed(order):  # inputs before the nodes that consume them
        for parent in node.parents:
            if parent is not None and (id(parent) in targets or id(parent) in needed):
                needed.add(id(node))
                break
    return needed


def _observe(
    node: Function,
    g: Any,
    retained: dict[Tensor, Any],
    wanted_nodes: dict[Function, Any] | None,
) -> None:
    """Record the gradient of a node's output where someone asked for it."""
    if wanted_nodes and node in wanted_nodes:
        wanted_nodes[node] = g
    if node.retained is not None:
        holder = node.retained()
        if holder is not None:  # retain_grad(): handed to .grad like a leaf's gradient
            retained[holder] = g


def _check_backward_result(node: Function, input_grads: Any) -> None:
    """A user-written backward must return one Tensor (or None) per input."""
    if not isinstance(input_grads, tuple | list) or len(input_grads) != len(node.parents):
        raise TypeError(
            f"{node.name}.backward must return a tuple with one entry per input "
            f"({len(node.parents)}), got {input_grads!r:.80}"
        )
    for input_grad in input_grads:
        if input_grad is not None and not isinstance(input_grad, _Tensor):
            raise TypeError(
                f"{node.name}.backward returned a {type(input_grad).__name__}; expected a "
                "Tensor or None for each input"
            )


def _seed(output: Tensor, gradient: Any, caller: str, k: int = 0) -> Tensor:
    """∂L/∂output: checked, or ones for a scalar output when no gradient is given."""
    if not isinstance(output, _Tensor):
        raise TypeError(f"{caller}: output {k} is a {type(output).__name__}, not a Tensor")
    if not output.requires_grad:
        raise RuntimeError(
            f"{caller}: output {k} (shape {output.shape}) does not require grad and has no "
            "grad_fn: nothing it was computed from requires grad (or it was computed under "
            "no_grad)"
        )
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{caller}: output {k} has shape {output.shape}, not a scalar; pass the "
                "gradient ∂L/∂output explicitly (a tensor of that shape) for non-scalar outputs"
            )
        return _make_tensor(np.ones(output.data.shape, dtype=output.data.dtype), False, None)
    if not isinstance(gradient, _Tensor):
        gradient = _make_tensor(np.asarray(gradient, dtype=output.data.dtype), False, None)
    if gradient.data.shape != output.data.shape:
        raise ValueError(
            f"{caller}: the gradient for output {k} has shape {gradient.shape}, but the "
            f"output has shape {output.shape}"
        )
    return gradient


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate ∂tensor/∂leaf into ``leaf.grad`` for every leaf that requires grad
    (``Tensor.backward`` is this function).

    ``gradient`` is ∂L/∂tensor, needed when the tensor is not a scalar. The graph's saved
    arrays are freed afterwards unless ``retain_graph`` (default: ``create_graph``). A
    gradient given to the user never shares memory with the seed or with another gradient
    (a later in-place update of one must not change another).
    """
    if (  # the common case, checked inline: a tensor in a graph, a gradient of its shape
        type(gradient) is _Tensor
        and getattr(tensor, "grad_fn", None) is not None
        and gradient.data.shape == tensor.data.shape
    ):
        seed = gradient
    else:
        seed = _seed(tensor, gradient, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    leaf_grads = _run_backward((tensor,), (seed,), retain_graph, create_graph)
    handed_out = {id(seed.data)}
    for leaf, g in leaf_grads.items():
        if leaf.grad is not None:
            leaf.grad = leaf.grad + g
        elif create_graph:
            leaf.grad = _hand_out(g, handed_out, True)
        else:  # _hand_out for an array, inlined: this runs for every parameter on every step
            if id(g) in handed_out or g.base is not None:
                g = g.copy()
            handed_out.add(id(g))
            t = _new_object(_Tensor)
            t.data, t.requires_grad, t.grad, t.grad_fn, t._name = g, False, None, None, None
            leaf.grad = t


def _hand_out(g: Any, handed_out: set[int], create_graph: bool) -> Tensor:
    """Gradient ``g`` (an ndarray, or a Tensor with ``create_graph``) as a Tensor for the
    user, sharing memory with nothing handed out before.

    ``handed_out`` holds the ids of the arrays given out so far (and of the seeds). A copy,
    when one is needed, is recorded in the graph if the graph is being built.
    """
    if create_graph:
        if id(g.data) in handed_out or g.data.base is not None:
            with _switch(True):
                g = g + 0.0
        handed_out.add(id(g.data))
        return g
    if id(g) in handed_out or g.base is not None:
        g = g.copy()
    handed_out.add(id(g))
    t = _new_object(_Tensor)  # _make_tensor, inlined
    t.data, t.requires_grad, t.grad, t.grad_fn, t._name = g, False, None, None, None
    return t


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
    outputs = [outputs] if isinstance(outputs, _Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, _Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, _Tensor | np.ndarray):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"grad: got {len(outputs)} outputs but {len(grad_outputs)} gradients for them"
        )
    for k, t in enumerate(inputs):
        if not isinstance(t, _Tensor):
            raise TypeError(f"grad: input {k} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) does not require grad; call "
                "requires_grad_() on it before computing the outputs"
            )
    seeds = [
        _seed(out, g, "grad", k)
        for k, (out, g) in enumerate(zip(outputs, grad_outputs, strict=True))
    ]
    if retain_graph is None:
        retain_graph = create_graph
    wanted_nodes: dict[Function, Tensor | None] = {t.grad_fn: None for t in inputs if t.grad_fn}
    targets = {id(t.grad_fn) if t.grad_fn is not None else id(t) for t in inputs}
    leaf_grads = _run_backward(outputs, seeds, retain_graph, create_graph, wanted_nodes, targets)
    results: list[Tensor | None] = []
    handed_out = {id(seed.data) for seed in seeds}
    for k, t in enumerate(inputs):
        if t.grad_fn is not None:
            g = wanted_nodes[t.grad_fn]
        else:
            g = leaf_grads.get(t)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        results.append(None if g is None else _hand_out(g, handed_out, create_graph))
    return tuple(results)


# In-place safety and anomaly mode hook into apply and the engine; they import from here.
from . import safety  # noqa: E402

_guard = safety.SavedGuard.of
