"""Primitive ops: one :class:`Function` each, forward and derivative side by side.

Notation: y is the op's output, g = ∂L/∂y the gradient arriving from above. ``backward``
returns ∂L/∂x for each input, written in Tensor ops so that it can itself be differentiated
(``create_graph=True``). Gradients may keep the broadcast shape of y: the engine sums them
back to each input's shape (``autograd._fit``), so no op undoes broadcasting itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Function, Scatter, _sum_to
from .tensor import Tensor, _make_tensor

# --------------------------------------------------------------------------- helpers


def _constant(array: np.ndarray) -> Tensor:
    """A Tensor that is not part of any graph (masks, counts)."""
    return _make_tensor(np.asarray(array), False, None)


def _replace(t: Tensor, condition: np.ndarray, value: float) -> Tensor:
    """``t`` with ``value`` where ``condition`` holds (differentiable in t elsewhere)."""
    if not condition.any():
        return t
    return Where.apply(_constant(np.asarray(value, dtype=t.dtype)), t, condition=condition)


def _keepdims_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """``shape`` with the reduced axes kept as size 1."""
    if axis is None:
        return (1,) * len(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    axes = {a % len(shape) for a in axes} if shape else set()
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# --------------------------------------------------------------------------- arithmetic


class Add(Function):
    """y = a + b;  ∂L/∂a = g,  ∂L/∂b = g."""

    name = "add"
    save_inputs = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor]:
        return g, g

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return g, g


class Sub(Function):
    """y = a − b;  ∂L/∂a = g,  ∂L/∂b = −g."""

    name = "sub"
    save_inputs = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor | None]:
        return g, (-g if self.needs_grad(1) else None)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return g, (-g if self.parents[1] is not None else None)


class Neg(Function):
    """y = −x;  ∂L/∂x = −g."""

    name = "neg"
    save_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (-g,)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (-g,)


class Mul(Function):
    """y = a · b;  ∂L/∂a = g · b,  ∂L/∂b = g · a."""

    name = "mul"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        return (g * b if self.needs_grad(0) else None, g * a if self.needs_grad(1) else None)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = self.saved
        return (
            g * b.data if self.parents[0] is not None else None,
            g * a.data if self.parents[1] is not None else None,
        )


class Div(Function):
    """y = a / b;  ∂L/∂a = g / b,  ∂L/∂b = −g · a / b²."""

    name = "div"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        grad_a = g / b if self.needs_grad(0) else None
        grad_b = -g * a / (b * b) if self.needs_grad(1) else None
        return grad_a, grad_b


class Pow(Function):
    """y = a ** b;  ∂L/∂a = g · b · a^(b−1),  ∂L/∂b = g · y · ln a.

    ∂L/∂b is only computed when b requires grad, so ``x ** 2`` with negative x stays finite.
    Where b = 0 the first is 0 (not 0 · 0⁻¹ = NaN at a = 0), and where a = 0 the second is 0
    (y = 0 there), as in PyTorch.
    """

    name = "pow"
    save_output = True

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a**b

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        grad_a = grad_b = None
        if self.needs_grad(0):  # a^(b−1) with exponent 1 where b = 0: finite, times b = 0
            grad_a = g * b * a ** _replace(b - 1, b.data == 0, 1.0)
        if self.needs_grad(1):  # ln a with a = 1 where a = 0: y = 0 there anyway
            grad_b = g * self.output() * _replace(a, a.data == 0, 1.0).log()
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

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        if a.ndim == 2 and b.ndim == 2:  # the common case, no reshaping
            return (
                g @ b.transpose() if self.needs_grad(0) else None,
                a.transpose() @ g if self.needs_grad(1) else None,
            )
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        grad_a = grad_b = None
        if self.needs_grad(0):
            grad_a = (g2 @ b2.transpose()).sum_to(a2.shape).reshape(a.shape)
        if self.needs_grad(1):
            grad_b = (a2.transpose() @ g2).sum_to(b2.shape).reshape(b.shape)
        return grad_a, grad_b

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = self.saved[0].data, self.saved[1].data
        if a.ndim != 2 or b.ndim != 2:
            return tuple(None if t is None else t.data for t in self.backward(_constant(g)))
        return (
            g @ b.T if self.parents[0] is not None else None,
            a.T @ g if self.parents[1] is not None else None,
        )


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
            y += bias[0]
        return y

    def backward(self, g: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = self.saved[0], self.saved[1]
        rows = g.reshape(-1, weight.shape[0])
        grads = [
            g @ weight if self.needs_grad(0) else None,
            rows.transpose() @ x.reshape(-1, weight.shape[1]) if self.needs_grad(1) else None,
        ]
        if len(self.parents) == 3:
            grads.append(rows.sum(axis=0) if self.needs_grad(2) else None)
        return tuple(grads)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        x, weight = self.saved[0].data, self.saved[1].data
        rows = g.reshape(-1, weight.shape[0])
        grads = [
            g @ weight if self.parents[0] is not None else None,
            rows.T @ x.reshape(-1, weight.shape[1]) if self.parents[1] is not None else None,
        ]
        if len(self.parents) == 3:
            grads.append(rows.sum(axis=0) if self.parents[2] is not None else None)
        return tuple(grads)


# --------------------------------------------------------------------------- elementwise


class Exp(Function):
    """y = eˣ;  ∂L/∂x = g · y."""

    name = "exp"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g * self.output(),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * self.out_data,)


class Log(Function):
    """y = ln x;  ∂L/∂x = g / x."""

    name = "log"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.log(x)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        (x,) = self.saved
        return (g / x,)


class Sqrt(Function):
    """y = √x;  ∂L/∂x = g / (2y)."""

    name = "sqrt"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g / (2 * self.output()),)


class Tanh(Function):
    """y = tanh x;  ∂L/∂x = g · (1 − y²)."""

    name = "tanh"
    save_inputs = False
    save_output = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        y = self.output()
        return (g * (1 - y * y),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        y = self.out_data
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

    def backward(self, g: Tensor) -> tuple[Tensor]:
        y = self.output()
        return (g * y * (1 - y),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        y = self.out_data
        return (g * y * (1 - y),)


class Relu(Function):
    """y = max(x, 0);  ∂L/∂x = g where x > 0, else 0 (so relu′(0) = 0)."""

    name = "relu"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        (x,) = self.saved
        return (g * _constant(x.data > 0).astype(g.dtype),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * (self.saved[0].data > 0).astype(g.dtype),)


class Abs(Function):
    """y = |x|;  ∂L/∂x = g · sign(x) (so abs′(0) = 0)."""

    name = "abs"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        (x,) = self.saved
        return (g * _constant(np.sign(x.data)).astype(g.dtype),)


class Clip(Function):
    """y = min(max(x, low), high);  ∂L/∂x = g where low ≤ x ≤ high, else 0."""

    name = "clip"

    def forward(self, x: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
        self.low, self.high = low, high
        return np.clip(x, low, high)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        (x,) = self.saved
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x.data >= self.low
        if self.high is not None:
            inside &= x.data <= self.high
        return (g * _constant(inside).astype(g.dtype),)


class Maximum(Function):
    """y = max(a, b) elementwise; g goes to the larger input, split evenly on ties."""

    name = "maximum"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        share_a = (a.data > b.data) + 0.5 * (a.data == b.data)
        return _split_between(g, share_a, self)


class Minimum(Function):
    """y = min(a, b) elementwise; g goes to the smaller input, split evenly on ties."""

    name = "minimum"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.minimum(a, b)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved
        share_a = (a.data < b.data) + 0.5 * (a.data == b.data)
        return _split_between(g, share_a, self)


def _split_between(
    g: Tensor, share_a: np.ndarray, fn: Function
) -> tuple[Tensor | None, Tensor | None]:
    """Give a fraction ``share_a`` of g to the first input and the rest to the second."""
    share = _constant(share_a).astype(g.dtype)
    grad_a = g * share if fn.needs_grad(0) else None
    grad_b = g * (1 - share) if fn.needs_grad(1) else None
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

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        mask = _constant(self.condition).astype(g.dtype)
        grad_a = g * mask if self.needs_grad(0) else None
        grad_b = g * (1 - mask) if self.needs_grad(1) else None
        return grad_a, grad_b

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        mask = self.condition.astype(g.dtype)
        grad_a = g * mask if self.parents[0] is not None else None
        grad_b = g * (1 - mask) if self.parents[1] is not None else None
        return grad_a, grad_b


class Cast(Function):
    """y = x converted to another dtype;  ∂L/∂x = g converted back."""

    __slots__ = ("source_dtype",)  # what forward keeps for backward

    name = "cast"
    save_inputs = False

    def forward(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        self.source_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.astype(self.source_dtype),)


# --------------------------------------------------------------------------- reductions


class Sum(Function):
    """y = Σ x over ``axis``;  ∂L/∂x = g broadcast back over the summed axes."""

    __slots__ = ("input_shape", "kept_shape")  # what forward keeps for backward

    name = "sum"
    save_inputs = False

    def forward(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        self.input_shape = x.shape
        self.kept_shape = _keepdims_shape(x.shape, axis)
        return np.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.reshape(self.kept_shape).broadcast_to(self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to(g.reshape(self.kept_shape), self.input_shape),)


class Mean(Function):
    """y = (1/n) Σ x over ``axis``;  ∂L/∂x = g / n broadcast back."""

    __slots__ = ("input_shape", "kept_shape", "count")  # what forward keeps for backward

    name = "mean"
    save_inputs = False

    def forward(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        self.input_shape = x.shape
        self.kept_shape = _keepdims_shape(x.shape, axis)
        y = np.mean(x, axis=axis, keepdims=keepdims)
        self.count = x.size // max(y.size, 1) if x.size else 0
        return y

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return ((g / self.count).reshape(self.kept_shape).broadcast_to(self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to((g / self.count).reshape(self.kept_shape), self.input_shape),)


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

    def backward(self, g: Tensor) -> tuple[Tensor]:
        (x,) = self.saved
        y = self.output()
        hits = x.data == y.data.reshape(self.kept_shape)
        share = hits / np.sum(hits, axis=self.axis, keepdims=True)
        return (g.reshape(self.kept_shape) * _constant(share).astype(g.dtype),)


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
        return _sum_to(x, shape)

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.broadcast_to(self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
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

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.reshape(self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g.reshape(self.input_shape),)


class Permute(Function):
    """y = x with axes reordered;  ∂L/∂x = g with the inverse order."""

    __slots__ = ("axes",)  # what forward keeps for backward

    name = "permute"
    save_inputs = False

    def forward(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        self.axes = axes
        return x.transpose(axes)  # numpy rejects anything that is not a permutation

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.permute(self._inverse()),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g.transpose(self._inverse()),)

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

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (g.sum_to(self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (_sum_to(g, self.input_shape) if g.shape != self.input_shape else g,)


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

    def backward(self, g: Tensor) -> tuple[Tensor]:
        return (IndexAdd.apply(g, index=self.index, shape=self.input_shape),)

    def backward_arrays(self, g: np.ndarray) -> tuple[Scatter]:
        # Sparse: the engine adds g into x's gradient buffer at ``index`` (see Scatter).
        return (Scatter(self.index, g, self.basic),)


def _index_add(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    """zeros(shape) with g added at ``index``; places picked several times accumulate."""
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic_index(index):
        out[index] = g  # each place picked once
    else:
        np.add.at(out, index, g)
    return out


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
        return _index_add(g, index, shape)

    def backward(self, gg: Tensor) -> tuple[Tensor]:
        return (gg[self.index],)


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

    def backward(self, g: Tensor) -> tuple[Tensor | None, ...]:
        return tuple(None if index is None else g[index] for index in self._pieces())

    def backward_arrays(self, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        return tuple(None if index is None else g[index] for index in self._pieces())

    def _pieces(self) -> list[tuple[slice, ...] | None]:
        """The index of each input's slice of y (None for inputs that need no gradient)."""
        lead = (slice(None),) * self.axis
        return [
            lead + (slice(start, stop),) if self.needs_grad(i) else None
            for i, (start, stop) in enumerate(zip(self.bounds, self.bounds[1:], strict=False))
        ]
