"""Trust: saved arrays stay read-only until backward, and anomaly mode.

Two guards the engine (``autograd.py``) calls into:

- **In-place safety.** A graph keeps the arrays its backward will read read-only until
  backward has run (or the graph is freed): an in-place write can never make a gradient
  silently wrong. See ``docs/reliability.md`` for what is and is not covered.
- **Anomaly mode.** ``detect_anomaly()`` stops at the first op whose forward or backward
  makes NaN or inf, and names the op, the user's file and line, and the shapes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import autograd
from .autograd import Function, Scatter, _switch

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "AnomalyError",
    "SavedGuard",
    "SavedTensorModifiedError",
    "check_backward",
    "check_forward",
    "check_writable",
    "detect_anomaly",
]


# --------------------------------------------------------------------------- in-place safety

# How many live graph nodes saved each array (by id) for their backward pass.
_saved_counts: dict[int, int] = {}


class SavedTensorModifiedError(RuntimeError):
    """An in-place change to an array that a graph saved for its backward pass."""


class SavedGuard(list):
    """Keeps the arrays a node's backward will read read-only while the node can still run.

    A write would make the gradient silently wrong (backward would read the new values).
    Plain numpy writes (``x.data[...] = 0``) then fail at once with numpy's "assignment
    destination is read-only"; the library's own in-place updates (optimizers, ``zero_``,
    initialisers, ``load_state_dict``) call :func:`check_writable` and say why.

    What is guarded: the arrays of saved *leaf* tensors (inputs, parameters: what users and
    optimizers write to) and the arrays that saved tensors are views of (``x[t]`` guards
    x). Arrays made by ops and never exposed as a leaf are not. Each array is counted once
    per node; when the last node that saved it is released by backward (or freed), it is
    writable again.
    """

    __slots__ = ()  # a list of the guarded arrays, in the order they were guarded

    @staticmethod
    def of(inputs: Sequence[Tensor]) -> SavedGuard | None:
        """The guard for a node that saved ``inputs`` (None when there is nothing to guard)."""
        guard = None
        counts = _saved_counts
        for t in inputs:
            # A leaf's own array; for an op's result, only the array it is a view of (x[t]
            # guards x): arrays that ops made are never exposed for writing.
            array = t.data if t.grad_fn is None else _base_array(t.data)
            while array is not None:
                key = id(array)
                if key in counts:
                    counts[key] += 1
                elif array.flags.writeable:
                    array.setflags(False)  # positional: with write= it costs three times as much
                    counts[key] = 1
                else:  # read-only already, and not by us: not ours to make writable later
                    key = None
                if key is not None:
                    if guard is None:
                        guard = SavedGuard()
                    guard.append(array)
                base = array.base  # and the arrays it is a view of (inline: a hot path)
                array = base if isinstance(base, np.ndarray) else None
        return guard

    def __del__(self) -> None:
        counts = _saved_counts
        for array in reversed(self):  # bases before their views
            key = id(array)
            count = counts.pop(key, 1)
            if count > 1:
                counts[key] = count - 1
                continue
            try:
                array.setflags(True)
            except ValueError:  # a view whose base another node keeps read-only: wait for it
                _waiting_views.setdefault(id(array.base), []).append(array)
                continue
            if _waiting_views:
                _release_waiting(array)


def _base_array(array: np.ndarray) -> np.ndarray | None:
    """The array ``array`` is a view of (None for an array that owns its memory)."""
    base = array.base
    return base if base is None or isinstance(base, np.ndarray) else None


# Views released while their base was still guarded by another node: made writable with it.
_waiting_views: dict[int, list[np.ndarray]] = {}


def _release_waiting(base: np.ndarray) -> None:
    """Make writable the views that waited for ``base`` (and, in turn, their own views)."""
    for view in _waiting_views.pop(id(base), ()):
        if id(view) in _saved_counts:  # guarded again meanwhile
            continue
        try:
            view.setflags(True)
        except ValueError:  # its own base is another array, still read-only
            _waiting_views.setdefault(id(view.base), []).append(view)
            continue
        _release_waiting(view)


def check_writable(tensor: Tensor, action: str) -> None:
    """Raise a clear error if ``tensor``'s array is saved by a graph not yet backpropagated.

    Every in-place update in the library calls this first (an optimizer step between
    forward and backward, ``zero_`` on a saved tensor, …).
    """
    array = tensor.data
    while isinstance(array, np.ndarray):
        if id(array) in _saved_counts:
            raise SavedTensorModifiedError(
                f"{action}: the tensor of shape {tensor.shape} is saved by a graph that has not "
                "been backpropagated yet, and changing it now would make that gradient wrong. "
                "Call backward() first, compute the graph under ts.no_grad(), or drop it (del "
                "the tensors that hold it)."
            )
        array = array.base


# --------------------------------------------------------------------------- anomaly mode


class AnomalyError(FloatingPointError):
    """A NaN or infinity produced by an op, found by :func:`detect_anomaly`."""


class detect_anomaly(_switch):
    """Context manager: stop at the first op whose forward or backward makes NaN or inf.

    The error names the op, the file and line of your code that called it, and the input
    shapes. Off by default; when off it costs one attribute read per op.
    """

    flag = "anomaly"

    def __init__(self) -> None:
        super().__init__(True)


def _caller() -> str:
    """'file:line' of the innermost frame outside tinygrad_seq (where the user called the op)."""
    package = __name__.rsplit(".", 1)[0]
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(package):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "<unknown>"


def _finite(array: Any) -> bool:
    array = np.asarray(array)
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def check_forward(fn: Function, inputs: Sequence[Tensor], data: np.ndarray) -> None:
    fn.created_at = _caller()
    if not _finite(data) and all(_finite(t.data) for t in inputs):
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise AnomalyError(
            f"detect_anomaly: '{fn.name}' produced NaN or inf in its forward pass (input shapes "
            f"{shapes}); called at {fn.created_at}"
        )


def _values(gradient: Any) -> Any:
    """A gradient's numbers: the engine passes arrays (or numpy scalars), and Tensors when
    the gradient's own graph is recorded."""
    return gradient.data if isinstance(gradient, autograd._Tensor) else gradient


def check_backward(node: Function, g: Any, input_grads: Sequence[Any]) -> None:
    if not _finite(_values(g)):
        return  # passed on from later ops: the op that made it has already been reported
    for k, grad in enumerate(input_grads):
        values = grad.values if isinstance(grad, Scatter) else _values(grad)
        if grad is not None and not _finite(values):
            raise AnomalyError(
                f"detect_anomaly: the backward pass of '{node.name}' produced NaN or inf in the "
                f"gradient of input {k} (output shape {node.shape}); the op was called at "
                f"{getattr(node, 'created_at', '<before detect_anomaly was on>')}"
            )
