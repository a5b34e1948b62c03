"""Primitive ops: one :class:`Function` each, forward and derivative side by side.

Notation: y is the op's output, g = ∂L/∂y the gradient arriving from above. ``backward(g,
*saved)`` returns ∂L/∂x for each input. It is written once, with operators and numpy
functions: the engine calls it with arrays (fast), or with Tensors under
``create_graph=True`` (Tensor runs numpy's functions as its own ops), so the derivative can
be differentiated again. Gradients may keep y's broadcast shape: the engine sums them back to
each input's shape (:func:`sum_to`, below), so no op undoes broadcasting itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Function
from .tensor import Tensor


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """g summed over the axes that broadcasting added or stretched, so it has ``shape``.

    The one place where broadcasting is undone (the engine calls it on every gradient that
    does not fit its input); g is an ndarray or a Tensor.
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead < 0 or any(n not in (1, m) for n, m in zip(shape, g.shape[lead:], strict=True)):
        if g.size == int(np.prod(shape)):  # only size-1 axes differ: (out,) for (1, out)
            return g.reshape(shape)
        raise ValueError(f"sum_to: cannot sum shape {g.shape} down to {shape}")
    stretched = [lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1]
    axes = tuple(range(lead)) + tuple(stretched)
    return np.sum(g, axis=axes, keepdims=True).reshape(shape)


# --------------------------------------------------------------------------- arithmetic


class Add(Function):
    """y = a + b;  ∂L/∂a = g,  ∂L/∂b = g."""

    name = "add"
    save_inputs = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def backward(self, g: Any) -> tuple[Any, Any]:
        return g, g


class Sub(Function):
    """y = a − b;  ∂L/∂a = g,  ∂L/∂b = −g."""

    name = "sub"
    save_inputs = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def backward(self, g: Any) -> tuple[Any, Any]:
        return g, (-g if self.needs_grad(1) else None)


class Neg(Function):
    """y = −x;  ∂L/∂x = −g."""

    name = "neg"
    save_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, g: Any) -> tuple[Any]:
        return (-g,)


class Clone(Function):
    """y = a copy of x with its own memory;  ∂L/∂x = g."""

    name = "clone"
    save_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def backward(self, g: Any) -> tuple[Any]:
        return (g,)


class Mul(Function):
    """y = a · b;  ∂L/∂a = g · b,  ∂L/∂b = g · a."""

    name = "mul"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        return (g * b if self.needs_grad(0) else None, g * a if self.needs_grad(1) else None)


class Div(Function):
    """y = a / b;  ∂L/∂a = g / b,  ∂L/∂b = −g · a / b²."""

    name = "div"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        grad_a = g / b if self.needs_grad(0) else None
        grad_b = -g * a / (b * b) if self.needs_grad(1) else None
        return grad_a, grad_b


class Pow(Function):
    """y = a ** b;  ∂L/∂a = g · b · a^(b−1),  ∂L/∂b = g · y · ln a.

    ∂L/∂b is only computed when b requires grad, so ``x ** 2`` with negative x stays finite.
    At a = 0 the formulas meet 0 · ∞ where the limits are finite; as in PyTorch:
    ∂L/∂a = 0 where a = 0 and b = 0 (not 0 · 0⁻¹), and ∂L/∂b = 0 where a = 0 and b ≥ 0 (y = 0 or
    1 there), −∞·g where a = 0 and b < 0. Only those places are substituted, with constants,
    so higher derivatives elsewhere stay exact.
    """

    name = "pow"
    save_output = True

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # 0 ** −1 = inf, as in PyTorch
            return a**b

    @np.errstate(divide="ignore", invalid="ignore")  # the infinities at a = 0, replaced below
    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        grad_a = grad_b = None
        zero_a = a == 0
        if self.needs_grad(0):  # exponent 1 where a = b = 0: finite, and times b = 0
            grad_a = g * b * a ** np.where(zero_a & (b == 0), 1.0, b - 1)
        if self.needs_grad(1):  # ln a → ln 1 = 0 where a = 0, b ≥ 0; → −∞ where b < 0
            log_a = np.log(np.where(zero_a, 1.0, a))
            grad_b = g * np.where(zero_a & (b < 0), -np.inf, self.output() * log_a)
        return grad_a, grad_b


def _matmul_mismatch(a: tuple[int, ...], b: tuple[int, ...]) -> str:
    if not a or not b:
        return f"matmul: {a} @ {b}: both operands need at least one dimension"
    inner_a, inner_b = a[-1], b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        return f"matmul: {a} @ {b}: inner dimensions {inner_a} and {inner_b} differ"
    return f"matmul: {a} @ {b}: batch dimensions {a[:-2]} and {b[:-2]} cannot be broadcast"


class MatMul(Function):
    """y = a @ b (numpy's matmul: 1-D, 2-D and batched with broadcasting).

    ∂L/∂a = g @ bᵀ,  ∂L/∂b = aᵀ @ g, where a 1-D operand is treated as a row (a) or a
    column (b) and batch dimensions that were broadcast are summed back.
    """

    name = "matmul"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            return a @ b
        except ValueError:
            raise ValueError(_matmul_mismatch(a.shape, b.shape)) from None

    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        if a.ndim == 1 or b.ndim == 1:  # put back the axes that matmul dropped
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            g = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        grad_a = grad_b = None
        if self.needs_grad(0):  # (sum_to also drops the row axis that a 1-D a was given)
            grad_a = sum_to(g @ b2.swapaxes(-1, -2), a.shape)
        if self.needs_grad(1):
            grad_b = sum_to(a2.swapaxes(-1, -2) @ g, b2.shape)
            grad_b = grad_b.reshape(b.shape) if b.ndim == 1 else grad_b
        return grad_a, grad_b


class Linear(Function):
    """y = x·Wᵀ + b (an affine layer; x (…, in), W (out, in), b (out,) or absent).

    ∂L/∂x = g·W,  ∂L/∂W = Σ gᵀ·x,  ∂L/∂b = Σ g, the sums over every batch position. One op
    instead of transpose, matmul and add: a recurrent cell calls it twice per step.
    """

    name = "linear"

    def forward(self, x: np.ndarray, weight: np.ndarray, *bias: np.ndarray) -> np.ndarray:
        if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input of shape {x.shape} needs a last axis of {weight.shape[-1]} "
                f"features for a weight of shape {weight.shape} (out, in)"
            )
        y = x @ weight.T
        if bias:
            y = y + bias[0]
        return y

    def backward(self, g: Any, x: Any, weight: Any, *bias: Any) -> tuple[Any, ...]:
        rows = g.reshape(-1, weight.shape[0])
        grads = [
            g @ weight if self.needs_grad(0) else None,
            rows.T @ x.reshape(-1, weight.shape[1]) if self.needs_grad(1) else None,
        ]
        if bias:
            grads.append(rows.sum(axis=0) if self.needs_grad(2) else None)
        return tuple(grads)


# --------------------------------------------------------------------------- elementwise


class Exp(Function):
    """y = eˣ;  ∂L/∂x = g · y."""

    name = "exp"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def backward(self, g: Any) -> tuple[Any]:
        return (g * self.output(),)


class Log(Function):
    """y = ln x;  ∂L/∂x = g / x."""

    name = "log"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.log(x)

    def backward(self, g: Any, x: Any) -> tuple[Any]:
        return (g / x,)


class Sqrt(Function):
    """y = √x;  ∂L/∂x = g / (2y)."""

    name = "sqrt"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)

    def backward(self, g: Any) -> tuple[Any]:
        return (g / (2 * self.output()),)


class Tanh(Function):
    """y = tanh x;  ∂L/∂x = g · (1 − y²)."""

    name = "tanh"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, g: Any) -> tuple[Any]:
        y = self.output()
        return (g * (1 - y * y),)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  ∂L/∂x = g · y · (1 − y).

    For very negative x, e⁻ˣ overflows to inf and 1 / (1 + inf) = 0, the right limit, so the
    overflow is expected and its warning silenced; every other x keeps full relative
    precision (finite for x = ±1e4, no warnings, and σ(−inf) = 0 exactly).
    """

    name = "sigmoid"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.array(x)  # a copy to work in (a 0-d input stays an array)
        with np.errstate(over="ignore"):
            np.exp(np.negative(y, out=y), out=y)
        y += 1
        return np.reciprocal(y, out=y)

    def backward(self, g: Any) -> tuple[Any]:
        y = self.output()
        return (g * y * (1 - y),)


class Relu(Function):
    """y = max(x, 0);  ∂L/∂x = g where x > 0, else 0 (so relu′(0) = 0)."""

    name = "relu"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def backward(self, g: Any, x: Any) -> tuple[Any]:
        return (g * (x > 0),)


class Abs(Function):
    """y = |x|;  ∂L/∂x = g · sign(x) (so abs′(0) = 0)."""

    name = "abs"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x)

    def backward(self, g: Any, x: Any) -> tuple[Any]:
        return (g * np.sign(x),)


class Clip(Function):
    """y = min(max(x, low), high);  ∂L/∂x = g where low ≤ x ≤ high, else 0."""

    __slots__ = ("low", "high")  # what forward keeps for backward

    name = "clip"

    def forward(self, x: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
        y = np.clip(x, low, high)
        # Bounds given as arrays or Tensors: private copies (the caller may change them in
        # place before backward, which would move the mask the gradient passes through).
        self.low, self.high = (
            b if b is None or np.isscalar(b) else np.array(getattr(b, "data", b), copy=True)
            for b in (low, high)
        )
        return y

    def backward(self, g: Any, x: Any) -> tuple[Any]:
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        return (g * ((x >= low) * (x <= high)),)


class Maximum(Function):
    """y = max(a, b) elementwise; g goes to the larger input, split evenly on ties."""

    name = "maximum"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        return _split_between(g, (a > b) + 0.5 * (a == b), self)


class Minimum(Function):
    """y = min(a, b) elementwise; g goes to the smaller input, split evenly on ties."""

    name = "minimum"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.minimum(a, b)

    def backward(self, g: Any, a: Any, b: Any) -> tuple[Any, Any]:
        return _split_between(g, (a < b) + 0.5 * (a == b), self)


def _split_between(g: Any, share_a: Any, fn: Function) -> tuple[Any, Any]:
    """Give a fraction ``share_a`` of g to the first input and the rest to the second."""
    share_a = share_a.astype(g.dtype)
    grad_a = g * share_a if fn.needs_grad(0) else None
    grad_b = g * (1 - share_a) if fn.needs_grad(1) else None
    return grad_a, grad_b


class Where(Function):
    """y = a where cond else b;  ∂L/∂a = g where cond, ∂L/∂b = g elsewhere."""

    __slots__ = ("condition",)  # what forward keeps for backward

    name = "where"
    save_inputs = False

    def forward(self, a: np.ndarray, b: np.ndarray, condition: np.ndarray) -> np.ndarray:
        if condition.dtype != np.bool_:
            raise TypeError(f"where: condition must be a bool array, got dtype {condition.dtype}")
        self.condition = condition.copy()  # the caller may reuse its mask before backward
        return np.where(condition, a, b)

    def backward(self, g: Any) -> tuple[Any, Any]:
        grad_a = g * self.condition if self.needs_grad(0) else None
        grad_b = g * ~self.condition if self.needs_grad(1) else None
        return grad_a, grad_b


class Cast(Function):
    """y = x converted to another dtype;  ∂L/∂x = g converted back."""

    __slots__ = ("source_dtype",)  # what forward keeps for backward

    name = "cast"
    save_inputs = False

    def forward(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        self.source_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g: Any) -> tuple[Any]:
        return (g.astype(self.source_dtype),)


# --------------------------------------------------------------------------- reductions


def _keepdims_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """``shape`` with the reduced axes kept as size 1."""
    if axis is None:
        return (1,) * len(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    axes = {a % len(shape) for a in axes} if shape else set()
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = Σ x over ``axis``;  ∂L/∂x = g broadcast back over the summed axes."""

    __slots__ = ("input_shape", "kept_shape")  # what forward keeps for backward

    name = "sum"
    save_inputs = False

    def forward(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        self.input_shape = x.shape
        self.kept_shape = _keepdims_shape(x.shape, axis)
        return np.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g: Any) -> tuple[Any]:
        return (np.broadcast_to(g.reshape(self.kept_shape), self.input_shape),)


class Mean(Sum):
    """y = (1/n) Σ x over ``axis``;  ∂L/∂x = g / n broadcast back."""

    name = "mean"

    def forward(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        total = super().forward(x, axis, keepdims)
        self.count = x.size // max(total.size, 1) if x.size else 0
        return np.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, g: Any) -> tuple[Any]:
        return super().backward(g / self.count)


class _Extremum(Function):
    """Shared by Max and Min: g goes to the elements equal to y, split evenly on ties."""

    __slots__ = ("kept_shape", "axis")  # what forward keeps for backward

    save_output = True
    reduce: Any = None

    def forward(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        self.kept_shape = _keepdims_shape(x.shape, axis)
        self.axis = axis
        try:
            return type(self).reduce(x, axis=axis, keepdims=keepdims)
        except ValueError:  # an empty axis has no largest (or smallest) element
            raise ValueError(
                f"{self.name}: cannot reduce an empty tensor (shape {x.shape}) along axis {axis}"
            ) from None

    def backward(self, g: Any, x: Any) -> tuple[Any]:
        hits = x == self.output().reshape(self.kept_shape)
        share = hits / np.sum(hits, axis=self.axis, keepdims=True)
        return (g.reshape(self.kept_shape) * share.astype(g.dtype),)


class Max(_Extremum):
    """y = max x over ``axis``; tied maxima share g equally (PyTorch's ``amax`` rule)."""

    name = "max"
    reduce = staticmethod(np.max)


class Min(_Extremum):
    """y = min x over ``axis``; tied minima share g equally (PyTorch's ``amin`` rule)."""

    name = "min"
    reduce = staticmethod(np.min)


class SumTo(Function):
    """y = x summed down to ``shape`` (undoes broadcasting);  ∂L/∂x = g broadcast back."""

    __slots__ = ("input_shape",)  # what forward keeps for backward

    name = "sum_to"
    save_inputs = False

    def forward(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.input_shape = x.shape
        return sum_to(x, shape)

    def backward(self, g: Any) -> tuple[Any]:
        return (np.broadcast_to(g, self.input_shape),)


# --------------------------------------------------------------------------- shape


class Reshape(Function):
    """y = x with a new shape (same elements in the same order);  ∂L/∂x = g reshaped back."""

    __slots__ = ("input_shape",)  # what forward keeps for backward

    name = "reshape"
    save_inputs = False

    def forward(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(shape)

    def backward(self, g: Any) -> tuple[Any]:
        return (g.reshape(self.input_shape),)


class Permute(Function):
    """y = x with axes reordered;  ∂L/∂x = g with the inverse order."""

    __slots__ = ("axes",)  # what forward keeps for backward

    name = "permute"
    save_inputs = False

    def forward(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        self.axes = axes
        return x.transpose(axes)  # numpy rejects anything that is not a permutation

    def backward(self, g: Any) -> tuple[Any]:
        return (np.transpose(g, self._inverse()),)

    def _inverse(self) -> list[int]:
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis] = position
        return inverse


class BroadcastTo(Function):
    """y = x broadcast to ``shape``;  ∂L/∂x = g summed back to x's shape."""

    __slots__ = ("input_shape",)  # what forward keeps for backward

    name = "broadcast_to"
    save_inputs = False

    def forward(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.input_shape = x.shape
        return np.broadcast_to(x, shape)

    def backward(self, g: Any) -> tuple[Any]:
        return (sum_to(g, self.input_shape),)


class GetItem(Function):
    """y = x[index] (slices, integers, integer arrays, bool masks).

    ∂L/∂x = zeros with g added at the indexed places; an element picked several times
    receives the sum of its gradients.
    """

    __slots__ = ("index", "input_shape", "basic")  # what forward keeps for backward

    name = "getitem"
    save_inputs = False

    def forward(self, x: np.ndarray, index: Any) -> np.ndarray:
        self.index = _own_index(index)  # the caller may reuse its index array before backward
        self.input_shape = x.shape
        self.basic = _is_basic_index(index)
        return x[index]

    def backward(self, g: Any) -> tuple[Any]:
        if isinstance(g, Tensor):  # under create_graph: an op, differentiable again
            return (IndexAdd.apply(g, index=self.index, shape=self.input_shape),)
        return (Scatter(self.index, g, self.basic),)


class Scatter:
    """∂L/∂x of ``x[index]``, kept sparse: g at ``index``, zero elsewhere.

    The engine adds it straight into x's gradient (``add_into``), instead of adding a
    mostly-zero array of x's shape: a loop over ``x[t]`` for T steps then costs O(T) and
    not O(T²).
    """

    __slots__ = ("index", "values", "basic")

    def __init__(self, index: Any, values: np.ndarray, basic: bool) -> None:
        self.index, self.values, self.basic = index, values, basic

    def add_into(self, buffer: np.ndarray) -> None:
        if self.basic:  # each place picked at most once
            buffer[self.index] += self.values
        else:  # integer arrays may repeat a place: those contributions accumulate
            np.add.at(buffer, self.index, self.values)


def _own_index(index: Any) -> Any:
    """``index`` with private copies of its arrays (slices and integers are immutable)."""
    if isinstance(index, np.ndarray):
        return index.copy()
    if isinstance(index, tuple):
        for item in index:
            if isinstance(item, np.ndarray):
                return tuple(
                    item.copy() if isinstance(item, np.ndarray) else item for item in index
                )
    return index


_BASIC_ITEMS = (int, np.integer, slice, type(None), type(Ellipsis))


def _is_basic_index(index: Any) -> bool:
    """Whether ``index`` picks each place at most once (no integer arrays or masks)."""
    if type(index) is not tuple:
        return isinstance(index, _BASIC_ITEMS)
    for item in index:
        if not isinstance(item, _BASIC_ITEMS):
            return False
    return True


class IndexAdd(Function):
    """y = zeros(shape) with g added at ``index`` (repeats accumulate);  ∂L/∂g = ∂L/∂y[index].

    The adjoint of GetItem, so that indexing can be differentiated twice.
    """

    __slots__ = ("index",)  # what forward keeps for backward

    name = "index_add"
    save_inputs = False

    def forward(self, g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
        self.index = index
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] = g  # each place picked once
        else:  # places picked several times accumulate
            np.add.at(out, index, g)
        return out

    def backward(self, gg: Any) -> tuple[Any]:
        return (gg[self.index],)


class Stack(Function):
    """y = the inputs (all of one shape) stacked along a new ``axis``;  ∂L/∂xᵢ = g's i-th
    slice along that axis. One op: a recurrent layer stacks its T outputs with it."""

    __slots__ = ("axis",)  # what forward keeps for backward

    name = "stack"
    save_inputs = False

    def forward(self, *xs: np.ndarray, axis: int) -> np.ndarray:
        y = np.stack(xs, axis=axis)
        self.axis = axis % y.ndim
        return y

    def backward(self, g: Any) -> tuple[Any, ...]:
        lead = (slice(None),) * self.axis
        return tuple(
            g[(*lead, i)] if self.needs_grad(i) else None for i in range(len(self.parents))
        )


class Cat(Function):
    """y = the inputs joined along ``axis``;  ∂L/∂xᵢ = the slice of g where xᵢ went."""

    __slots__ = ("axis", "bounds")  # what forward keeps for backward

    name = "cat"
    save_inputs = False

    def forward(self, *xs: np.ndarray, axis: int) -> np.ndarray:
        if not xs:
            raise ValueError("cat: needs at least one tensor")
        ndims = {x.ndim for x in xs}
        if len(ndims) != 1 or 0 in ndims:
            raise ValueError(
                "cat: all tensors need the same number of dimensions (at least 1); got shapes "
                + ", ".join(str(x.shape) for x in xs)
            )
        ndim = ndims.pop()
        if not -ndim <= axis < ndim:
            raise IndexError(f"cat: axis {axis} is out of range for {ndim}-d tensors")
        axis %= ndim
        for x in xs[1:]:
            if x.shape[:axis] + x.shape[axis + 1 :] != xs[0].shape[:axis] + xs[0].shape[axis + 1 :]:
                raise ValueError(
                    f"cat: shapes must match except along axis {axis}; got shapes "
                    + ", ".join(str(x.shape) for x in xs)
                )
        self.axis = axis
        self.bounds = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
        return np.concatenate(xs, axis=axis)

    def backward(self, g: Any) -> tuple[Any, ...]:
        return tuple(None if index is None else g[index] for index in self._pieces())

    def _pieces(self) -> list[tuple[slice, ...] | None]:
        """The index of each input's slice of y (None for inputs that need no gradient)."""
        lead = (slice(None),) * self.axis
        return [
            lead + (slice(start, stop),) if self.needs_grad(i) else None
            for i, (start, stop) in enumerate(zip(self.bounds, self.bounds[1:], strict=False))
        ]


class SetItem(Function):
    """y = x with ``value`` written at ``index`` (what ``x[index] = value`` records).

    ∂L/∂x = g with zeros at the written places;  ∂L/∂value = g at those places (summed back
    to value's shape where it was broadcast).
    """

    __slots__ = ("index", "written")  # what forward keeps for backward

    name = "setitem"
    save_inputs = False

    def forward(self, x: np.ndarray, value: np.ndarray, index: Any) -> np.ndarray:
        self.index = _own_index(index)
        self.written = np.zeros(x.shape, dtype=bool)
        self.written[index] = True
        y = x.copy()
        y[index] = value
        return y

    def backward(self, g: Any) -> tuple[Any, Any]:
        grad_x = g * ~self.written if self.needs_grad(0) else None
        return grad_x, (g[self.index] if self.needs_grad(1) else None)


# numpy's ufuncs that are ops: a Tensor runs them as these (``np.exp(t)``, ``array * t``).
UFUNCS: dict[np.ufunc, type[Function]] = {
    np.add: Add,
    np.subtract: Sub,
    np.multiply: Mul,
    np.true_divide: Div,
    np.power: Pow,
    np.matmul: MatMul,
    np.maximum: Maximum,
    np.minimum: Minimum,
    np.negative: Neg,
    np.exp: Exp,
    np.log: Log,
    np.sqrt: Sqrt,
    np.tanh: Tanh,
    np.absolute: Abs,
}
