"""Trust: what a graph saved for backward stays what it was, and anomaly mode.

- **Version counters.** Every in-place change the library makes (``add_``, ``x[i] = v``,
  ``+=``, optimizer steps, initialisers, ``load_state_dict``) bumps the version of the
  memory it writes, shared by every tensor on that memory (views, ``detach()``). A node
  records the versions of what it saved; backward through it after a change raises
  :class:`SavedTensorModifiedError`, as PyTorch does.
- **Read-only to numpy.** A write the library cannot see (``x.data[...] = 0``, numpy on
  ``x.numpy()``) would make a gradient silently wrong. So the result of every op recorded in
  a graph is read-only from birth, and the inputs and parameters a node saved (and the
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
_waiting: dict[int, list[np.ndarray]] = {}  # views to unlock once their base is (by base id)
_memory: dict[int, _Memory] = {}  # id(memory owner) → its record, while the owner lives
_clock = [0]  # counts every in-place change: a node made after the last one needs no check
RELEASED = "released"  # a node's ``saved`` after backward freed it


class SavedTensorModifiedError(RuntimeError):
    """Backward through a node whose saved tensor was changed in place since."""


def _chain(array: np.ndarray) -> list[np.ndarray]:
    """``array`` and the arrays it is a view of, down to the one that owns the memory."""
    chain = [array]
    while isinstance(chain[-1].base, np.ndarray):
        chain.append(chain[-1].base)
    return chain


class _Memory:
    """The in-place changes the library made to one memory owner: how many (its version),
    and the clock at the last few. A node whose output views that memory holds the record:
    it outlives the memory, which may be freed before backward reads the record."""

    __slots__ = ("version", "changes", "alive")

    def __init__(self, owner: np.ndarray) -> None:
        key = id(owner)  # (freed with the owner, before another array can take its id)
        self.version, self.changes = 0, []
        self.alive = weakref.ref(owner, lambda _: _memory.pop(key, None))


def _record(owner: np.ndarray) -> _Memory:
    record = _memory.get(id(owner))
    if record is None:
        record = _memory[id(owner)] = _Memory(owner)
    return record


def version(array: np.ndarray) -> int:
    """How many in-place changes the library made to the memory ``array`` lives in."""
    record = _memory.get(id(_chain(array)[-1]))
    return 0 if record is None else record.version


def keep(fn: Function, out: np.ndarray) -> None:
    """Guard what a new node saved: note the clock, and make its result read-only to numpy.
    The inputs it saved that no recorded op made (leaves, parameters, constants), or that
    view other memory, are made read-only with that memory until the node is released. A
    view output is noted too: an in-place change of its memory changes its values."""
    # (the record of the memory a view output shows: the view must not keep a buffer alive)
    fn.clock, fn.view = _clock[0], _record(_chain(out)[-1]) if out.base is not None else None
    out.setflags(False)  # an op's result in a graph: numpy may not write into it (see top)
    if not fn.saved:
        fn.kept = ()
        return
    kept = [t.data for t in fn.saved if t.grad_fn is None or t.data.base is not None]
    fn.kept = _Kept(kept) if kept else ()
    for a in kept:
        while True:  # the array, and the arrays it is a view of
            count = _locks.get(id(a))
            if count:
                _locks[id(a)] = count + 1
            elif a.flags.writeable:
                a.setflags(False)  # positional: write= costs three times as much
                _locks[id(a)] = 1
            if not isinstance(a.base, np.ndarray):
                break
            a = a.base


class _Kept(tuple):
    """The arrays a node keeps read-only: unlocked when it is released or freed."""

    __slots__ = ()

    def __del__(self) -> None:
        for array in self:
            chain = _chain(array) if array.base is not None else (array,)
            for a in reversed(chain):  # the memory owner first, then its views
                count = _locks.get(id(a))
                if count is None:
                    continue  # read-only before the node saw it: not ours to unlock
                if count > 1:
                    _locks[id(a)] = count - 1
                    continue
                del _locks[id(a)]
                if isinstance(a.base, np.ndarray) and not a.base.flags.writeable:
                    _waiting.setdefault(id(a.base), []).append(a)  # unlocked with its base
                    continue
                a.setflags(True)
                if _waiting:
                    for view in _waiting.pop(id(a), ()):
                        if id(view) not in _locks:
                            view.setflags(True)


def release(fn: Function) -> None:
    """Free what ``fn`` saved, after its backward: the arrays it kept are writable again."""
    fn.saved, fn.out_data, fn.kept, fn.view = RELEASED, None, (), None


def saved_values(fn: Function, create_graph: bool) -> Sequence[Any]:
    """What ``fn`` saved, checked to be still what it saw: the arrays, or under create_graph
    the tensors themselves (so that the derivative's own graph reaches them)."""
    if fn.saved is RELEASED:
        raise RuntimeError(
            f"backward: trying to backpropagate through the graph a second time (op "
            f"'{fn.name}', output shape {fn.shape}); its saved arrays were released by the "
            "first backward. Pass retain_graph=True to the first backward call if you need "
            "to backpropagate twice."
        )
    if fn.clock != _clock[0]:  # something was changed in place since: was it ours?
        _check_versions(fn)
    return fn.saved if create_graph or not fn.saved else [t.data for t in fn.saved]


def _check_versions(fn: Function) -> None:
    now = [t.data for t in fn.saved]
    replaced = [a for a in fn.kept if not any(a is b for b in now)]  # (Module.to)
    watched = [(a, "an input", False) for a in now] + [(a, "an input", True) for a in replaced]
    watched += [(fn.out_data, "the output", False)]
    records = [(_memory.get(id(_chain(a)[-1])), a, *rest) for a, *rest in watched if a is not None]
    records += [(fn.view, None, None, False)]  # the memory the output shows (no array)
    for record, array, what, was_replaced in records:
        changes = [c for c in record.changes if c >= fn.clock] if record else []
        if changes or was_replaced:
            found = record.version if record else 0
            expected = found - len(changes)
            what = (
                f"the memory that the output of '{fn.name}' (shape {fn.shape}) is a view of"
                if array is None
                else f"{what} of shape {array.shape} saved by '{fn.name}'"
            )
            raise SavedTensorModifiedError(
                f"backward: {what} was modified "
                f"by an in-place operation (version {found}; expected version "
                f"{'at most ' if len(changes) == _RECENT else ''}{expected}"
                f"{', and its array was replaced' if was_replaced else ''}). Use an "
                "out-of-place op (x = x * 2, not x *= 2), or .clone() the tensor before "
                "changing it."
            )


_RECENT = 8  # changes remembered per memory (for the version a node expected)


def _changed(owner: np.ndarray) -> None:
    """Count an in-place change of the memory ``owner`` holds."""
    record = _record(owner)
    record.version += 1
    record.changes = [*record.changes[-_RECENT + 1 :], _clock[0]]
    _clock[0] += 1


@contextlib.contextmanager
def writing(tensor: Tensor, action: str) -> Iterator[np.ndarray]:
    """Write into ``tensor``'s array in place: the version of its memory goes up, and the
    read-only flag of saved arrays (and of views made from them since) is lifted for the
    moment of the write."""
    data = tensor.data
    if any(step == 0 and n > 1 for step, n in zip(data.strides, data.shape, strict=True)):
        raise ValueError(
            f"{action}: the tensor of shape {tensor.shape} is a broadcast view (made by expand "
            "or broadcast_to): several of its elements are one place in memory; write into "
            "a .clone() instead"
        )
    chain = _chain(data)
    flipped = [a for a in reversed(chain) if not a.flags.writeable]  # the owner first
    try:
        for a in flipped:
            a.setflags(True)
    except ValueError:
        flipped = flipped[: flipped.index(a)]
    try:
        if not tensor.data.flags.writeable:
            raise ValueError(
                f"{action}: the tensor of shape {tensor.shape} is read-only in numpy; write "
                "into a .clone() instead"
            )
        _changed(chain[-1])
        yield tensor.data
    finally:
        for a in reversed(flipped):
            a.setflags(False)


def replace_array(tensor: Tensor, array: np.ndarray, action: str) -> None:
    """Give ``tensor`` a new array (``Module.to``): counted as an in-place change."""
    with writing(tensor, action):
        pass
    _record(_chain(array)[-1]).version = version(tensor.data)
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
    if gradient is None and output.data.size != 1:
        raise RuntimeError(
            f"{caller}: output {k} has shape {output.shape}, not a scalar; pass the gradient "
            "∂L/∂output explicitly (a tensor of that shape) for non-scalar outputs"
        )
    if gradient is None:
        return Tensor._wrap(np.ones(output.data.shape, output.data.dtype))
    seed = gradient if isinstance(gradient, Tensor) else Tensor.of(gradient, output.data.dtype)
    if seed.data.shape != output.data.shape:
        raise ValueError(
            f"{caller}: the gradient for output {k} has shape {seed.shape}, but the output "
            f"has shape {output.shape}"
        )
    return seed


def check_inputs(inputs: list[Any]) -> list[Tensor]:
    """What ``grad`` differentiates with respect to must be tensors that require grad."""
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(
                f"grad: input {k} ({getattr(t, 'shape', type(t).__name__)}) does not require "
                "grad; call requires_grad_() on it before computing the outputs"
            )
    return inputs


def check_seeds(outputs: list[Any], grad_outputs: Any) -> list[Tensor]:
    """``grad``'s ∂L/∂output for each output (ones for scalars when not given), checked."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} gradients")
    pairs = enumerate(zip(outputs, grad_outputs, strict=True))
    return [check_seed(out, g, "grad", k) for k, (out, g) in pairs]


def hand_out(g: Any, given: set[int]) -> Tensor:
    """Gradient g as a Tensor that shares memory with nothing handed out before (``given``:
    ids of those arrays): a later in-place update of one gradient must not change another."""
    if type(g) is np.ndarray:
        if id(g) in given or g.base is not None:
            g = g.copy()
        given.add(id(g))
        return Tensor._wrap(g)
    if id(g.data) in given or g.data.base is not None:  # create_graph: the copy is recorded
        with autograd.enable_grad():
            g = g.clone()
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


def check_backward(
    fn: Function, g: Any, input_grads: Any, create_graph: bool, anomaly: bool
) -> None:
    """A backward returns one gradient (or None) per input; in anomaly mode, finite ones."""
    if type(input_grads) not in (tuple, list) or len(input_grads) != len(fn.parents):
        got = type(input_grads).__name__
        got += f" of length {len(input_grads)}" if type(input_grads) in (tuple, list) else ""
        got += f" of shape {input_grads.shape}" if hasattr(input_grads, "shape") else ""
        raise TypeError(
            f"{fn.name}.backward must return a tuple with one gradient (or None) per input "
            f"({len(fn.parents)} here), got {got}"
        )
    if create_graph:
        for input_grad in input_grads:
            if input_grad is not None and not isinstance(input_grad, Tensor):
                raise TypeError(
                    f"{fn.name}.backward returned a {type(input_grad).__name__} under "
                    "create_graph=True; write it with operators and numpy functions on the "
                    "saved values it is given, so that it returns Tensors"
                )
    if anomaly and _finite(g):
        for k, grad in enumerate(input_grads):
            if grad is not None and not _finite(grad):
                raise AnomalyError(
                    f"detect_anomaly: the backward pass of '{fn.name}' produced NaN or inf in "
                    f"the gradient of input {k} (output shape {fn.shape}); the op was called "
                    f"at {getattr(fn, 'created_at', '<before detect_anomaly was on>')}"
                )
