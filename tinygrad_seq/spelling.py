"""PyTorch's spellings beside numpy's, resolved in one place.

``dim=`` / ``keepdim=`` mean numpy's ``axis=`` / ``keepdims=``; :func:`accepts_dim` renames
them before the function runs, so every function keeps one body with numpy's names.

Where numpy and PyTorch give different answers to the same spelling, the answer here is
PyTorch's or an error naming what to write, never a silently different result:

- ``x.max(dim=1)`` is PyTorch's ``(values, indices)``; ``x.max(axis=1)`` numpy's values;
  ``x.max(1)`` could be either, so it is an error naming both (and ``x.amax(1)``).
- ``x.size`` is numpy's element count, and ``x.size()`` / ``x.size(0)`` PyTorch's shape and
  length of one dimension (:class:`ElementCount`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

__all__ = ["ElementCount", "ValuesIndices", "accepts_dim"]

F = TypeVar("F", bound=Callable[..., Any])

_RENAMES = (("dim", "axis"), ("keepdim", "keepdims"))


class ValuesIndices(NamedTuple):
    """What ``x.max(dim=…)`` / ``x.min(dim=…)`` return, as PyTorch: ``values, indices``."""

    values: Any
    indices: Any


def accepts_dim(
    function: F | None = None, *, indices: str | None = None, correction: bool = False
) -> Any:
    """Let ``function`` take ``dim=`` / ``keepdim=`` as well as ``axis=`` / ``keepdims=``.

    Giving both spellings of one argument is an error. With ``correction=True`` (variance
    and standard deviation) PyTorch's ``unbiased=`` and numpy's ``ddof=`` become
    ``correction=``, and a second positional argument is refused: PyTorch reads
    ``var(1, False)`` as ``unbiased=False``. With ``indices="argmax"`` the
    function is a max-like reduction (its first argument is the tensor, its second the
    axis): ``dim=`` then returns PyTorch's ``(values, indices)``, a positional integer axis
    is refused as ambiguous, and a tensor in its place is PyTorch's elementwise form
    (``x.max(y)`` is ``x.maximum(y)``).
    """

    def decorate(function: F) -> F:
        name = function.__name__

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if correction:
                _as_correction(name, args, kwargs)
            torch_dim = "dim" in kwargs
            if indices is None and not torch_dim and "keepdim" not in kwargs:
                return function(*args, **kwargs)  # numpy's names: the common call, kept cheap
            if torch_dim or "keepdim" in kwargs:
                for torch_name, numpy_name in _RENAMES:
                    if torch_name in kwargs:
                        if numpy_name in kwargs:
                            raise TypeError(
                                f"{name}: got both {numpy_name}= and {torch_name}=; give one "
                                f"(they mean the same)"
                            )
                        kwargs[numpy_name] = kwargs.pop(torch_name)
            if indices is None:
                return function(*args, **kwargs)
            if len(args) > 1:
                return _max_like_positional(name, function, indices, args, kwargs)
            if torch_dim and kwargs["axis"] is not None:
                keepdim = bool(kwargs.get("keepdims", False))
                return _values_and_indices(name, args[0], indices, kwargs["axis"], keepdim)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if function is None else decorate(function)


def _as_correction(name: str, args: tuple, kwargs: dict) -> None:
    """PyTorch's ``unbiased=`` and numpy's ``ddof=`` as ``correction=``, in ``kwargs``."""
    if len(args) > 2:
        axis, second = args[1], args[2]
        raise TypeError(
            f"{name}({axis!r}, {second!r}) is ambiguous: PyTorch reads the second argument as "
            f"unbiased=; write {name}({axis!r}, correction=0) for unbiased=False, or "
            f"{name}({axis!r}, keepdim={second!r})"
        )
    for other in ("unbiased", "ddof"):
        if other in kwargs:
            if "correction" in kwargs:
                raise TypeError(f"{name}: got both correction= and {other}=; give one")
            value = kwargs.pop(other)
            kwargs["correction"] = int(value) if other == "ddof" else int(bool(value))


def _max_like_positional(
    name: str, function: Callable[..., Any], indices: str, args: tuple, kwargs: dict
) -> Any:
    from .tensor import Tensor

    x, second = args[0], args[1]
    if isinstance(second, Tensor | np.ndarray):
        return getattr(x, "maximum" if indices == "argmax" else "minimum")(second)
    if isinstance(second, int | np.integer):
        raise TypeError(
            f"{name}({second}) is ambiguous: write {name}(axis={second}) for the values "
            f"(numpy; or a{name}({second})), or {name}(dim={second}) for (values, indices) "
            f"(PyTorch)"
        )
    return function(*args, **kwargs)


def _values_and_indices(name: str, x: Any, indices: str, dim: int, keepdim: bool) -> ValuesIndices:
    """PyTorch's ``max(dim)``: the first extreme's index, and the value taken from there
    (so its gradient goes to that element only, as in PyTorch)."""
    if not isinstance(dim, int | np.integer):
        raise TypeError(
            f"{name}: dim= takes one integer, got {dim!r}; for several axes write a{name}(dim=…)"
        )
    where = getattr(x, indices)(axis=dim, keepdims=True)
    values = x.gather(dim, where)
    if not keepdim:
        values, where = values.squeeze(dim), where.squeeze(dim)
    return ValuesIndices(values, where)


class ElementCount(int):
    """``x.size``: numpy's number of elements, an int, that PyTorch's ``x.size()`` can call.

    ``x.size == 12``, ``x.size() == (3, 4)`` (the shape) and ``x.size(0) == 3`` all hold.
    Arithmetic on it gives plain ints.
    """

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> ElementCount:  # shape: a tuple of ints
        count = super().__new__(cls, math.prod(shape))
        count.shape = shape
        return count

    def __reduce__(self) -> tuple:  # pickle and copy rebuild it from the shape
        return ElementCount, (self.shape,)

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        ndim = len(self.shape)
        if not isinstance(dim, int | np.integer) or not -ndim <= dim < ndim:
            raise IndexError(
                f"size: dim {dim!r} is out of range for a tensor of {ndim} dimensions "
                f"(shape {self.shape})"
            )
        return self.shape[dim]
