"""Composite functions, built from the primitive ops (their gradients come for free).

Also the function forms of the Tensor methods (``ts.tanh(x)`` is ``x.tanh()``), so code can
be written either way, as in PyTorch.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import ops
from .spelling import ValuesIndices, accepts_dim
from .tensor import Axis, Tensor, _check_axis

__all__ = [
    "abs",
    "argmax",
    "argmin",
    "cat",
    "chunk",
    "clip",
    "cross_entropy",
    "dropout",
    "embedding",
    "linear",
    "exp",
    "flatten",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mse_loss",
    "nll_loss",
    "permute",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "tanh",
    "transpose",
    "unsqueeze",
    "var",
    "where",
]


def _reduced_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    if axis is None:
        return ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = {_check_axis("reduce", a, shape) for a in axes}
    return tuple(n for i, n in enumerate(shape) if i not in axes)


# --------------------------------------------------------------------------- reductions


@accepts_dim
def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log Σ exp(x) over ``axis``, computed as m + log Σ exp(x − m) with m = max x.

    Shifting by the (constant) maximum keeps every exponent ≤ 0: finite for x = ±1e4.
    ∂/∂x = softmax(x).
    """
    x = Tensor.of(x)
    shift = np.max(x.data, axis=axis, keepdims=True) if x.size else np.zeros(())
    shift = Tensor._wrap(np.where(np.isfinite(shift), shift, 0).astype(x.dtype))
    out = (x - shift).exp().sum(axis=axis, keepdims=True).log() + shift
    return out if keepdims else out.reshape(_reduced_shape(x.shape, axis))


@accepts_dim(correction=True)
def var(x: Tensor, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Variance Σ (x − x̄)² / (n − correction); ``correction=1`` is PyTorch's default."""
    x = Tensor.of(x)
    n = x.size // builtins.max(int(np.prod(_reduced_shape(x.shape, axis))), 1) if x.size else 0
    deviation = x - x.mean(axis=axis, keepdims=True)
    return (deviation * deviation).sum(axis=axis, keepdims=keepdims) / builtins.max(
        n - correction, 0
    )


def _softmax_axis(op: str, x: Tensor, axis: int | None) -> int:
    """The axis a softmax runs along: the last by default, and only where that is the axis
    PyTorch's (deprecated) implicit choice takes too, that is up to 2 dimensions."""
    if axis is not None:
        return axis
    if x.ndim > 2:
        raise ValueError(
            f"{op}: for a tensor of {x.ndim} dimensions (shape {x.shape}) say which axis: "
            f"{op}(x, dim=-1) for the last (PyTorch's implicit choice here would be dim="
            f"{0 if x.ndim == 3 else 1})"
        )
    return -1


@accepts_dim
def softmax(x: Tensor, axis: int | None = None) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis``, shifted by the maximum so nothing overflows.

    ``axis`` may be left out for up to 2 dimensions (the last axis).
    """
    x = Tensor.of(x)
    axis = _softmax_axis("softmax", x, axis)
    shift = Tensor._wrap(np.max(x.data, axis=axis, keepdims=True))
    e = (x - shift).exp()
    return e / e.sum(axis=axis, keepdims=True)


@accepts_dim
def log_softmax(x: Tensor, axis: int | None = None) -> Tensor:
    """x − logsumexp(x) along ``axis``: log-probabilities, finite for logits of ±1e4.

    ``axis`` may be left out for up to 2 dimensions (the last axis).
    """
    x = Tensor.of(x)
    axis = _softmax_axis("log_softmax", x, axis)
    return x - logsumexp(x, axis=axis, keepdims=True)


# --------------------------------------------------------------------------- losses


def _class_axis(op: str, input: Tensor, target: np.ndarray, axis: int | None) -> int:
    """Which axis of ``input`` holds the classes, checked against the target's shape.

    (C,) with a 0-d target, (N, C) with (N,), and for more dimensions either PyTorch's
    (N, C, d1, …) with (N, d1, …) or the sequence layout (T, B, C) with (T, B).
    """
    if axis is not None:
        axis = _check_axis(op, axis, input.shape)
        candidates = [axis]
    elif input.ndim <= 2:
        candidates = [input.ndim - 1]
    else:
        candidates = [a for a in (1, input.ndim - 1)]
    fits = [a for a in candidates if input.shape[:a] + input.shape[a + 1 :] == target.shape]
    if not fits:
        raise ValueError(
            f"{op}: target shape {target.shape} does not fit input shape {input.shape}; "
            "expected the input's shape without its class axis"
        )
    if len(fits) > 1:
        raise ValueError(
            f"{op}: input shape {input.shape} with target shape {target.shape} is ambiguous: "
            "the classes could be on axis 1 or on the last axis; pass axis= to say which"
        )
    return fits[0]


def nll_loss(
    log_probs: Tensor,
    target: Any,
    reduction: str = "mean",
    ignore_index: int = -100,
    axis: int | None = None,
) -> Tensor:
    """Negative log-likelihood −log p[target], from log-probabilities.

    ``target`` holds integer class indices; places equal to ``ignore_index`` (padding)
    contribute nothing and are not counted by ``reduction='mean'``. When every place is
    ignored, ``'mean'`` is NaN (0 / 0) with zero gradients, as in PyTorch.
    """
    log_probs = Tensor.of(log_probs)
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"nll_loss: target must hold integer class indices, got dtype {target.dtype}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    class_axis = _class_axis("nll_loss", log_probs, target, axis)
    classes = log_probs.shape[class_axis]
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(
            f"nll_loss: target value {target[bad].flat[0]} is out of range for {classes} "
            f"classes (and is not ignore_index={ignore_index})"
        )
    if class_axis != log_probs.ndim - 1:
        order = [a for a in range(log_probs.ndim) if a != class_axis] + [class_axis]
        log_probs = log_probs.permute(*order)
    rows = log_probs.reshape(-1, classes)
    flat_target = np.where(valid, target, 0).reshape(-1)
    picked = rows[np.arange(flat_target.size), flat_target]
    # where, not a 0/1 weight: an ignored place's −log p may be inf, and inf · 0 is NaN
    losses = where(valid.reshape(-1), -picked, 0.0)
    if reduction == "none":
        return losses.reshape(target.shape)
    total = losses.sum()
    if reduction == "sum":
        return total
    count = int(valid.sum())
    if count == 0:
        # As PyTorch: the mean over no targets is NaN, but nothing moves (zero gradients);
        # dividing by 0 would make every gradient NaN and wreck the model under Adam.
        return total + math.nan
    return total / count


def cross_entropy(
    input: Tensor,
    target: Any,
    reduction: str = "mean",
    ignore_index: int = -100,
    axis: int | None = None,
) -> Tensor:
    """Cross-entropy of logits against integer targets: nll_loss(log_softmax(input)).

    Shapes: (N, C) with (N,), (N, C, d…) with (N, d…), or (T, B, C) with (T, B). Finite
    for logits of ±1e4.
    """
    input = Tensor.of(input)
    target_array = np.asarray(target.data if isinstance(target, Tensor) else target)
    class_axis = _class_axis("cross_entropy", input, target_array, axis)
    return nll_loss(
        log_softmax(input, axis=class_axis), target_array, reduction, ignore_index, class_axis
    )


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (input − target)²; the shapes must match exactly."""
    input = Tensor.of(input)
    target = Tensor.of(target, input.dtype)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {input.shape} and target shape {target.shape} differ "
            "(broadcasting them is almost always a bug)"
        )
    difference = input - target
    squared = difference * difference
    if reduction == "none":
        return squared
    if reduction == "sum":
        return squared.sum()
    if reduction == "mean":
        return squared.mean()
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# --------------------------------------------------------------------------- layers' maths


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1−p) (inverted dropout).

    The identity when not ``training``. ``rng`` makes the mask reproducible; by default the
    generator seeded by ``ts.manual_seed`` is used.
    """
    from .tensor import default_generator

    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    x = Tensor.of(x)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    rng = rng if rng is not None else default_generator()
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * Tensor._wrap(keep)


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``; repeated rows accumulate gradient."""
    index = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {index.dtype}")
    rows = weight.shape[0]
    if index.size and (index.min() < 0 or index.max() >= rows):
        bad = index[(index < 0) | (index >= rows)].flat[0]
        raise IndexError(f"embedding: index {bad} is out of range for {rows} embeddings")
    return weight[index]


# --------------------------------------------------------------------------- joining, splitting


@accepts_dim
def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return ops.Cat.apply(*[Tensor.of(t) for t in tensors], axis=axis)


@accepts_dim
def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = [Tensor.of(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(
            "stack: all tensors must have the same shape; got "
            + ", ".join(str(t.shape) for t in tensors)
        )
    return ops.Stack.apply(*tensors, axis=axis)


@accepts_dim
def split(x: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Pieces along ``axis``: each of size n (the last may be smaller), or the given sizes."""
    x = Tensor.of(x)
    axis = _check_axis("split", axis, x.shape)
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int | np.integer):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split size must be positive, got {size}")
        sizes = [builtins.min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        sizes = [int(n) for n in split_size_or_sections]
        if builtins.sum(sizes) != length or any(n < 0 for n in sizes):
            raise ValueError(
                f"split: sizes {sizes} do not add up to {length}, the length of axis {axis} "
                f"(shape {x.shape})"
            )
    lead = (slice(None),) * axis
    bounds = [0, *itertools.accumulate(sizes)]
    return [x[(*lead, slice(a, b))] for a, b in itertools.pairwise(bounds)]


@accepts_dim
def chunk(x: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as PyTorch."""
    x = Tensor.of(x)
    if chunks <= 0:
        raise ValueError(f"chunk: the number of chunks must be positive, got {chunks}")
    length = x.shape[_check_axis("chunk", axis, x.shape)]
    return split(x, builtins.max(math.ceil(length / chunks), 1), axis)


# --------------------------------------------------------------------------- function forms


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise choice: ``a`` where ``condition`` is true, else ``b``."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be bool, got dtype {cond.dtype}")
    dtype = next((t.dtype for t in (a, b) if isinstance(t, Tensor)), np.dtype(np.float32))
    return ops.Where.apply(Tensor.of(a, dtype), Tensor.of(b, dtype), condition=cond)


def exp(x: Tensor) -> Tensor:
    return Tensor.of(x).exp()


def log(x: Tensor) -> Tensor:
    return Tensor.of(x).log()


def sqrt(x: Tensor) -> Tensor:
    return Tensor.of(x).sqrt()


def tanh(x: Tensor) -> Tensor:
    return Tensor.of(x).tanh()


def sigmoid(x: Tensor) -> Tensor:
    return Tensor.of(x).sigmoid()


def relu(x: Tensor) -> Tensor:
    return Tensor.of(x).relu()


def abs(x: Tensor) -> Tensor:
    return Tensor.of(x).abs()


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    return Tensor.of(x).clip(min, max)


def maximum(a: Any, b: Any) -> Tensor:
    return Tensor.of(a).maximum(b)


def minimum(a: Any, b: Any) -> Tensor:
    return Tensor.of(a).minimum(b)


@accepts_dim
def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Tensor.of(x).sum(axis, keepdims)


@accepts_dim
def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Tensor.of(x).mean(axis, keepdims)


@accepts_dim(indices="argmax")
def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor | ValuesIndices:
    """As :meth:`Tensor.max`: ``max(x, dim=d)`` is ``(values, indices)``, ``max(x, y)``
    the elementwise maximum."""
    return Tensor.of(x).max(axis=axis, keepdims=keepdims)


@accepts_dim(indices="argmin")
def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor | ValuesIndices:
    """As :meth:`Tensor.min`: ``min(x, dim=d)`` is ``(values, indices)``, ``min(x, y)``
    the elementwise minimum."""
    return Tensor.of(x).min(axis=axis, keepdims=keepdims)


@accepts_dim
def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return Tensor.of(x).argmax(axis, keepdims)


@accepts_dim
def argmin(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return Tensor.of(x).argmin(axis, keepdims)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    return Tensor.of(x).reshape(*shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return Tensor.of(x).flatten(start_dim, end_dim)


def transpose(x: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    return Tensor.of(x).transpose(dim0, dim1)


def permute(x: Tensor, *axes: Any) -> Tensor:
    return Tensor.of(x).permute(*axes)


@accepts_dim
def squeeze(x: Tensor, axis: Axis = None) -> Tensor:
    return Tensor.of(x).squeeze(axis)


@accepts_dim
def unsqueeze(x: Tensor, axis: int) -> Tensor:
    return Tensor.of(x).unsqueeze(axis)


def matmul(a: Any, b: Any) -> Tensor:
    return Tensor.of(a) @ b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x·Wᵀ + b with ``weight`` (out, in), as ``torch.nn.functional.linear``: one op."""
    inputs = (Tensor.of(x), weight) if bias is None else (Tensor.of(x), weight, bias)
    return ops.Linear.apply(*inputs)
