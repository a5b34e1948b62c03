"""Trust: what a graph saved for backward stays what it was, and anomaly mode.

- **Version counters.** Every in-place change the library makes (``add_``, ``x[i] = v``,
  ``+=``, optimizer steps, initialisers, ``load_state_dict``) bumps the version of the
  memory it writes, shared by every tensor on that memory (views, ``detach()``). A node
  records the versions of what it saved; backward through it after a change raises
  :class:`SavedTensorModifiedError`, as PyTorch does.
- **Read-only while saved.** A write the library cannot see (``x.data[...] = 0``, numpy on
  ``x.numpy()``) would make a gradient silently wrong, so the arrays a node saved (and the
  arrays they are views of) are read-only until its backward has run or the graph is freed:
  numpy refuses the write at once. The library's own in-place changes lift the flag for the
  moment of the write (:func:`writing`) and bump the version instead.
- **Anomaly mode.** ``autograd.detect_anomaly()`` stops at the first op whose forward or backward
  makes NaN or inf, and names the op, the user's file and line, and the shapes.

See ``docs/reliability.md`` for what is and is not covered.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import autograd
from .tensor import Tensor

if TYPE_CHECKING:
    from .autograd import Function

__all__ = ["AnomalyError", "SavedTensorModifiedError"]

_locks: dict[int, int] = {}  # id(array) → how many live nodes keep it read-only
_versions: dict[int, int] = {}  # id(memory owner) → in-place changes made through the library
_waiting: dict[int, list[np.ndarray]] = {}  # views to unlock once their base is (by base id)
RELEASED = "released"  # a node's ``saved`` after backward freed it


class SavedTensorModifiedError(RuntimeError):
    """Backward through a node whose saved tensor was changed in place since."""


def _chain(array: np.ndarray) -> list[np.ndarray]:
    """``array`` and the arrays it is a view of, down to the one that owns the memory."""
    if array.base is None:
        return [array]
    chain = [array]
    while isinstance(chain[-1].base, np.ndarray):
        chain.append(chain[-1].base)
    return chain


def version(array: np.ndarray) -> int:
    """How many in-place changes the library made to the memory ``array`` lives in."""
    return _versions.get(id(_chain(array)[-1]), 0)


class SavedGuard:
    """What one node saved: each array with the version it had, kept read-only."""

    __slots__ = ("entries", "locked")

    @staticmethod
    def of(fn: Function, out: np.ndarray) -> SavedGuard | None:
        """The guard of a new node: what it saved, and the version of the memory its output
        is a view of (a later in-place change there changes the output's values too)."""
        viewed = _chain(out)[-1] if isinstance(out.base, np.ndarray) else None
        if not fn.saved and fn.out_data is None and viewed is None:
            return None
        saved = [(t, t.data) for t in fn.saved]
        if fn.out_data is not None:
            saved.append((None, fn.out_data))
        guard = SavedGuard()
        guard.entries, guard.locked = [], []
        if viewed is not None:
            guard.entries.append((None, out, viewed, _versions.get(id(viewed), 0)))
        for tensor, array in saved:
            chain = _chain(array)
            guard.entries.append((tensor, array, chain[-1], _versions.get(id(chain[-1]), 0)))
            for a in chain:
                if id(a) in _locks:
                    _locks[id(a)] += 1
                elif a.flags.writeable:
                    a.setflags(False)  # positional: write= costs three times as much
                    _locks[id(a)] = 1
                else:
                    continue  # read-only already, and not by us: not ours to unlock later
                guard.locked.append(a)
        return guard

    def check(self, fn: Function) -> None:
        for tensor, array, owner, expected in self.entries:
            found = _versions.get(id(owner), 0)
            if found != expected or (tensor is not None and tensor.data is not array):
                what = "its output" if tensor is None else "an input"
                raise SavedTensorModifiedError(
                    f"backward: {what} of shape {array.shape} saved by '{fn.name}' was modified "
                    f"by an in-place operation (version {found}; expected version {expected}"
                    f"{', and its array was replaced' if found == expected else ''}). Use an "
                    "out-of-place op (x = x * 2, not x *= 2), or .clone() the tensor before "
                    "changing it."
                )

    def __del__(self) -> None:
        for array in reversed(self.locked):  # the memory owner first, then its views
            left = _locks.pop(id(array), 1) - 1
            if left:
                _locks[id(array)] = left
            elif isinstance(array.base, np.ndarray) and not array.base.flags.writeable:
                _waiting.setdefault(id(array.base), []).append(array)  # once the base is
            else:
                array.setflags(True)
                for view in _waiting.pop(id(array), ()):
                    if id(view) not in _locks:
                        view.setflags(True)


def check_saved(fn: Function) -> Sequence[Tensor]:
    """The tensors ``fn`` saved, after checking that they are still what it saw."""
    if fn.saved is RELEASED:
        raise RuntimeError(
            f"backward: trying to backpropagate through the graph a second time (op "
            f"'{fn.name}', output shape {fn.shape}); its saved arrays were released by the "
            "first backward. Pass retain_graph=True to the first backward call if you need "
            "to backpropagate twice."
        )
    if fn.guard is not None:
        fn.guard.check(fn)
    return fn.saved


def _set_version(owner: np.ndarray, value: int) -> None:
    if id(owner) not in _versions:
        weakref.finalize(owner, _versions.pop, id(owner), None)
    _versions[id(owner)] = value


@contextlib.contextmanager
def writing(tensor: Tensor, action: str) -> Iterator[np.ndarray]:
    """Write into ``tensor``'s array in place: the version of its memory goes up, and the
    read-only flag of saved arrays (and of views made from them since) is lifted for the
    moment of the write."""
    chain = _chain(tensor.data)
    ours = any(id(a) in _locks for a in chain)
    flipped = [a for a in reversed(chain) if ours and not a.flags.writeable]  # owner first
    try:
        for a in flipped:
            a.setflags(True)
    except ValueError:
        flipped = flipped[: flipped.index(a)]
    try:
        if not tensor.data.flags.writeable:
            raise ValueError(
                f"{action}: the tensor of shape {tensor.shape} is a read-only view (made by "
                "expand or broadcast_to, or read-only in numpy); write into a .clone() instead"
            )
        _set_version(chain[-1], _versions.get(id(chain[-1]), 0) + 1)
        yield tensor.data
    finally:
        for a in reversed(flipped):
            a.setflags(False)


def replace_array(tensor: Tensor, array: np.ndarray, action: str) -> None:
    """Give ``tensor`` a new array (``Module.to``): counted as an in-place change."""
    with writing(tensor, action):
        pass
    _set_version(_chain(array)[-1], version(tensor.data))
    tensor.data = array


def op_error(name: str, inputs: Sequence[Tensor], error: Exception) -> Exception:
    """numpy's error inside an op, with the op's name and the input shapes and dtypes."""
    if str(error).startswith(f"{name}:"):
        return error
    shapes, dtypes = (", ".join(str(getattr(t, a)) for t in inputs) for a in ("shape", "dtype"))
    kind = next(k for k in (IndexError, TypeError, ValueError) if isinstance(error, k))
    return kind(f"{name}: {error} (input shapes {shapes}; dtypes {dtypes})")


def check_seed(output: Any, gradient: Any, caller: str, k: int = 0) -> Tensor:
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


def check_inputs(inputs: Sequence[Any]) -> None:
    """What ``grad`` differentiates with respect to must be tensors that require grad."""
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} ({getattr(t, 'shape', type(t).__name__)}) does not require "
                "grad; call requires_grad_() on it before computing the outputs"
            )


def hand_out(g: Any, given: set[int]) -> Tensor:
    """Gradient g as a Tensor that shares memory with nothing handed out before (``given``:
    ids of those arrays): a later in-place update of one gradient must not change another."""
    if isinstance(g, Tensor):  # create_graph: a copy must stay in the gradient's graph
        if id(g.data) in given or g.data.base is not None:
            with autograd.enable_grad():
                g = g.clone()
    elif id(g) in given or g.base is not None:
        g = g.copy()
    g = g if isinstance(g, Tensor) else Tensor._wrap(g)
    given.add(id(g.data))
    return g


class AnomalyError(FloatingPointError):
    """A NaN or infinity produced by an op, found by :func:`detect_anomaly`."""


def _caller() -> str:
    """'file:line' of the innermost frame outside tinygrad_seq (where the user called the op)."""
    package = __name__.rsplit(".", 1)[0]
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(package):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "<unknown>"


def _finite(value: Any) -> bool:
    """No NaN or inf in a value: an array, a Tensor, or a sparse gradient (``.values``)."""
    if not isinstance(value, np.ndarray | np.generic):
        value = value.values if hasattr(value, "add_into") else value.data
    array = np.asarray(value)
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def check_forward(fn: Function, inputs: Sequence[Tensor], data: np.ndarray) -> None:
    fn.created_at = _caller()
    if not _finite(data) and all(_finite(t.data) for t in inputs):
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise AnomalyError(
            f"detect_anomaly: '{fn.name}' produced NaN or inf in its forward pass (input shapes "
            f"{shapes}); called at {fn.created_at}"
        )


def check_backward(fn: Function, g: Any, input_grads: Any, create_graph: bool) -> None:
    """A backward returns one gradient (or None) per input; in anomaly mode, finite ones."""
    if type(input_grads) not in (tuple, list) or len(input_grads) != len(fn.parents):
        raise TypeError(
            f"{fn.name}.backward must return a tuple with one entry per input "
            f"({len(fn.parents)}), got {input_grads!r:.80}"
        )
    if create_graph:
        for input_grad in input_grads:
            if input_grad is not None and not isinstance(input_grad, Tensor):
                raise TypeError(
                    f"{fn.name}.backward returned a {type(input_grad).__name__} under "
                    "create_graph=True; write it with operators and numpy functions on the "
                    "saved values it is given, so that it returns Tensors"
                )
    if autograd.mode.anomaly and _finite(g):
        for k, grad in enumerate(input_grads):
            if grad is not None and not _finite(grad):
                raise AnomalyError(
                    f"detect_anomaly: the backward pass of '{fn.name}' produced NaN or inf in "
                    f"the gradient of input {k} (output shape {fn.shape}); the op was called "
                    f"at {getattr(fn, 'created_at', '<before detect_anomaly was on>')}"
                )
