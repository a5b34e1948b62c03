"""Tensor: an ndarray plus what autograd needs (``requires_grad``, ``grad``, ``grad_fn``).

Every operator and method here is a thin call into an op of ``ops.py`` (a primitive with its
own derivative) or ``functional.py`` (a composite). Shapes broadcast as in numpy. A Python
number never changes a tensor's dtype: ``x * 2.0`` stays float32 when ``x`` is float32.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .spelling import ElementCount, ValuesIndices, accepts_dim

DEFAULT_DTYPE = np.dtype(np.float32)

Shape = tuple[int, ...]
Axis = int | Sequence[int] | None


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, dtype=None, requires_grad=False)`` copies ``data``. Python floats become
    float32 (the default dtype), Python ints int64, numpy arrays keep their dtype. Only
    floating-point tensors can require grad.
    """

    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_name", "__weakref__")

    __hash__ = object.__hash__  # == compares elementwise; tensors still go in sets and dicts

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        self.data = _to_array(data, dtype, copy=True)
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Function | None = None
        self._name: str | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def of(value: Any, dtype: Any = None) -> Tensor:
        """``value`` as a Tensor: the one way every op turns what a user passes into one.

        A Tensor is returned as it is. A Python number takes ``dtype`` when given (the other
        operand's: ``x * 2.0`` stays float32), except that a float meeting an integer dtype
        becomes float32, as in PyTorch. Anything else is copied into a new array, as
        ``torch.tensor`` copies: arrays keep their dtype, Python floats become float32.
        """
        if isinstance(value, Tensor):
            return value
        if dtype is not None and isinstance(value, _SCALARS):
            dtype = np.dtype(dtype)
            if isinstance(value, float) and dtype.kind != "f":
                dtype = DEFAULT_DTYPE
            return Tensor._wrap(np.array(value, dtype=dtype))
        return Tensor._wrap(_to_array(value, None, copy=True))

    @staticmethod
    def _wrap(data: np.ndarray, grad_fn: Any = None) -> Tensor:
        """A Tensor around an array the library made (no copy, no checks): op results."""
        t = _new_tensor(Tensor)
        t.data, t.grad, t.grad_fn, t._name = data, None, grad_fn, None
        t.requires_grad = grad_fn is not None
        return t

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *args: Any, **kwargs: Any) -> Any:
        """numpy's ufuncs on Tensors (``np.exp(t)``, ``array * t``) run as Tensor ops: so each
        op's derivative, written once with numpy, runs on arrays and on Tensors alike.

        A ufunc whose derivative is zero wherever it exists (comparisons, ``np.sign``, …), or
        one that no input differentiates through, gives a constant; any other is refused.
        """
        op = ops.UFUNCS.get(ufunc)
        if method != "__call__" or kwargs:
            return NotImplemented
        if op is not None:
            like = next(a for a in args if isinstance(a, Tensor)).dtype
            return op.apply(*[Tensor.of(a, like) for a in args])
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        if (
            ufunc.types[0][-1] not in "?"
            and ufunc.__name__ not in _PIECEWISE_CONSTANT
            and any(isinstance(a, Tensor) and a.requires_grad for a in args)
        ):
            raise TypeError(
                f"np.{ufunc.__name__} has no derivative in tinygrad_seq; compute it on "
                ".detach() (no gradient), or write it as a Function with its backward"
            )
        return Tensor._wrap(np.asarray(ufunc(*arrays)))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """The numpy functions a derivative uses (np.sum, np.broadcast_to, np.where, …) run
        as Tensor ops; any other gets the arrays (``__array__``) and returns an ndarray,
        unless a Tensor that requires grad is among them (its gradient would be lost)."""
        method = _ARRAY_FUNCTIONS.get(func)
        if method is not None:
            return method(*args, **kwargs)
        items = [x for a in args for x in (a if isinstance(a, list | tuple) else (a,))]
        if any(isinstance(x, Tensor) and x.requires_grad for x in items):
            raise TypeError(
                f"np.{func.__name__} on a Tensor that requires grad would drop its gradient; "
                f"use the Tensor's own op, or np.{func.__name__}(t.detach()) for the values"
            )
        plain = [
            type(a)(x.data if isinstance(x, Tensor) else x for x in a)
            if isinstance(a, list | tuple)
            else a.data
            if isinstance(a, Tensor)
            else a
            for a in args
        ]
        return func(*plain, **kwargs)

    # ----------------------------------------------------------------- attributes

    @property
    def name(self) -> str | None:
        """A name for drawings and ``repr``. Naming a result of an op links it to its node,
        so that graph drawings label the op with it (:meth:`Function.result`)."""
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value
        if value is not None and self.grad_fn is not None:
            self.grad_fn.out = weakref.ref(self)

    @property
    def shape(self) -> Shape:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> ElementCount:
        """The number of elements (numpy's ``size``); ``x.size()`` is the shape and
        ``x.size(0)`` one dimension's length (PyTorch's ``size``), see :class:`ElementCount`."""
        return ElementCount(self.data.shape)

    @property
    def _version(self) -> int:
        """How many in-place changes were made to this tensor's memory (PyTorch's counter)."""
        return safety.version(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (inputs and parameters)."""
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """All axes reversed (numpy's ``.T``)."""
        return self.permute(*reversed(range(self.ndim)))

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The single value of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted to a Python number; "
                f"this one has shape {self.shape}"
            )
        return self.data.item()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len: a 0-d tensor has no length")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; use "
                ".any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The array itself, or a copy when numpy asks for one (``np.array(t)``: a snapshot
        that a later in-place change of ``t`` must not reach, as with a torch tensor)."""
        array = self.data if dtype is None else self.data.astype(dtype, copy=bool(copy))
        return array.copy() if copy and array is self.data else array

    def __repr__(self) -> str:
        body = np.array2string(
            self.data, separator=", ", precision=4, threshold=50, prefix="tensor("
        )
        extra = f"shape={self.shape}, dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{type(self.grad_fn).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"tensor({body}, {extra})"

    # ----------------------------------------------------------------- autograd

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate ∂self/∂leaf into ``leaf.grad`` for every leaf that requires grad (see
        :func:`tinygrad_seq.autograd.backward`)."""
        autograd.backward(self, gradient, retain_graph, create_graph)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; only floating-point tensors can."""
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients; this "
                f"tensor has dtype {self.dtype} and shape {self.shape}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad_: cannot turn off requires_grad on a non-leaf tensor "
                f"(shape {self.shape}, made by {self.grad_fn.name}); use detach() instead"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` for this intermediate tensor after backward (leaves always keep it)."""
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)
        elif not self.requires_grad:
            raise RuntimeError(
                f"retain_grad: the tensor (shape {self.shape}) does not require grad"
            )
        return self

    def detach(self) -> Tensor:
        """A new tensor sharing this data (and its version counter), cut from the graph."""
        return Tensor._wrap(self.data)

    def clone(self) -> Tensor:
        """A copy with its own memory; in a graph, the gradient flows back through it."""
        return ops.Clone.apply(self)

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place: it becomes a leaf that needs no grad."""
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ----------------------------------------------------------------- in place

    def _in_place(
        self, action: str, op: Callable[..., Tensor], *others: Any, saves_input: bool = False
    ) -> Tensor:
        """Change this tensor in place to ``op(self, *others)``, as PyTorch does.

        The version of its memory goes up (a graph that saved it raises in backward). In a
        recorded graph the change is an op: this tensor takes the new node, whose input is
        the old value (a copy of it when ``op`` saves its input, which is about to change).
        """
        recording = autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
        )
        if recording and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(
                f"{action}: a leaf tensor that requires grad (shape {self.shape}) cannot be "
                "changed in place while the graph is recorded; for an update, wrap it in "
                "'with ts.no_grad():', or use an out-of-place op (x = x + 1)"
            )
        if recording and isinstance(self.data.base, np.ndarray):
            raise RuntimeError(
                f"{action}: in-place change of a view (shape {self.shape}) inside a recorded "
                "graph; write it out of place (y = y + 1), or change the tensor it views"
            )
        new = op(self.clone() if recording and saves_input else self, *others)
        if new.shape != self.shape:
            raise ValueError(
                f"{action}: the result has shape {new.shape}, but the tensor changed in place "
                f"has shape {self.shape}"
            )
        if not np.can_cast(new.dtype, self.dtype, "same_kind"):
            raise TypeError(
                f"{action}: cannot write {new.dtype} values into a {self.dtype} tensor in "
                f"place; convert first (x = x.astype(...))"
            )
        with safety.writing(self, action) as array:
            np.copyto(array, new.data, casting="same_kind")
        if recording:
            self.grad_fn, self.requires_grad = new.grad_fn, True
        return self

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._in_place("add_", Tensor.__add__, other if alpha == 1 else other * alpha)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._in_place("sub_", Tensor.__sub__, other if alpha == 1 else other * alpha)

    def mul_(self, other: Any) -> Tensor:
        return self._in_place("mul_", Tensor.__mul__, other, saves_input=True)

    def div_(self, other: Any) -> Tensor:
        return self._in_place("div_", Tensor.__truediv__, other, saves_input=True)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return self._in_place("clamp_", Tensor.clip, min, max, saves_input=True)

    def copy_(self, src: Any) -> Tensor:
        """Write ``src`` (broadcast to this shape) into this tensor; the gradient goes to src."""
        return self._in_place("copy_", _replace_all, src)

    def fill_(self, value: Any) -> Tensor:
        return self._in_place("fill_", _replace_all, value)

    def zero_(self) -> Tensor:
        return self._in_place("zero_", _replace_all, 0)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value`` in place (basic, integer-array and boolean-mask indexing); in a
        graph the gradient reaches ``value`` at the written places and the old x elsewhere."""
        self._in_place("__setitem__", _set_item, _normalize_index(index), value)

    # ----------------------------------------------------------------- operators

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, _operand(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(Tensor.of(other, self.data.dtype), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, _operand(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(Tensor.of(other, self.data.dtype), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, _operand(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(Tensor.of(other, self.data.dtype), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(*_true_division(self, _operand(other, self)))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(*_true_division(Tensor.of(other, self.data.dtype), self))

    def __pow__(self, other: Any) -> Tensor:
        return ops.Pow.apply(self, _operand(other, self))

    def __rpow__(self, other: Any) -> Tensor:
        return ops.Pow.apply(Tensor.of(other, self.data.dtype), self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, _operand(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(Tensor.of(other, self.data.dtype), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_normalize_index(index))

    # Comparisons give bool tensors and record no graph.
    def _compare(self, other: Any, op: Any) -> Tensor:
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(np.asarray(op(self.data, other_data)))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    def __and__(self, other: Any) -> Tensor:
        return self._compare(other, np.bitwise_and)

    def __or__(self, other: Any) -> Tensor:
        return self._compare(other, np.bitwise_or)

    def __invert__(self) -> Tensor:
        return Tensor._wrap(np.invert(self.data))

    # ----------------------------------------------------------------- elementwise

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient passes where min ≤ x ≤ max."""
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return ops.Maximum.apply(self, Tensor.of(other, self.dtype))

    def minimum(self, other: Any) -> Tensor:
        return ops.Minimum.apply(self, Tensor.of(other, self.dtype))

    def astype(self, dtype: Any) -> Tensor:
        """This tensor converted to ``dtype`` (differentiable between float dtypes)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        return ops.Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    # ----------------------------------------------------------------- reductions

    @accepts_dim
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=_axis(axis), keepdims=keepdims)

    @accepts_dim
    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Mean.apply(self, axis=_axis(axis), keepdims=keepdims)

    @accepts_dim(indices="argmax")
    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor | ValuesIndices:
        """Largest value; tied maxima share the gradient equally (as PyTorch's ``amax``).

        ``max(dim=d)`` is PyTorch's: ``(values, indices)``; ``max(d)`` is refused as
        ambiguous; ``max(other)`` with a tensor is :meth:`maximum`.
        """
        return ops.Max.apply(self, axis=_axis(axis), keepdims=keepdims)

    @accepts_dim(indices="argmin")
    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor | ValuesIndices:
        """Smallest value; tied minima share the gradient equally (as PyTorch's ``amin``).

        ``min(dim=d)`` is PyTorch's: ``(values, indices)``; ``min(d)`` is refused as
        ambiguous; ``min(other)`` with a tensor is :meth:`minimum`.
        """
        return ops.Min.apply(self, axis=_axis(axis), keepdims=keepdims)

    @accepts_dim(correction=True)
    def var(self, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        return functional.var(self, axis=axis, keepdims=keepdims, correction=correction)

    @accepts_dim
    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return functional.logsumexp(self, axis, keepdims)

    @accepts_dim
    def softmax(self, axis: int | None = None) -> Tensor:
        return functional.softmax(self, axis)

    @accepts_dim
    def log_softmax(self, axis: int | None = None) -> Tensor:
        return functional.log_softmax(self, axis)

    def sum_to(self, shape: Shape) -> Tensor:
        """Sum over broadcast dimensions so the result has ``shape`` (undoes broadcasting)."""
        shape = tuple(shape)
        if shape == self.shape:
            return self
        return ops.SumTo.apply(self, shape=shape)

    # ----------------------------------------------------------------- shape

    def reshape(self, *shape: Any) -> Tensor:
        shape = _shape_args(shape)
        if shape == self.shape:
            return self
        return ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes ``start_dim`` … ``end_dim`` into one."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (_check_axis("flatten", d, self.shape) for d in (start_dim, end_dim))
        if start > end:
            raise ValueError(
                f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape "
                f"{self.shape}"
            )
        merged = int(np.prod(self.shape[start : end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def permute(self, *axes: Any) -> Tensor:
        """Reorder the axes: ``axes`` is a permutation of ``range(ndim)``."""
        axes = _shape_args(axes)
        if len(axes) != self.ndim:
            raise ValueError(
                f"permute: {axes} names {len(axes)} axes but the tensor has {self.ndim} "
                f"(shape {self.shape})"
            )
        return ops.Permute.apply(self, axes=axes)

    def transpose(self, dim0: int = -2, dim1: int = -1, *more: int) -> Tensor:
        """Swap two axes (PyTorch's ``transpose``; the default swaps the last two)."""
        if more:
            order = ", ".join(str(d) for d in (dim0, dim1, *more))
            raise TypeError(
                f"transpose swaps two axes, as in PyTorch; for numpy's transpose({order}) "
                f"write permute({order})"
            )
        axes = list(range(self.ndim))
        d0, d1 = (
            _check_axis("transpose", dim0, self.shape),
            _check_axis("transpose", dim1, self.shape),
        )
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return ops.Permute.apply(self, axes=tuple(axes))

    swapaxes = transpose  # numpy's and PyTorch's name for the same swap of two axes

    @accepts_dim
    def squeeze(self, axis: Axis = None) -> Tensor:
        """Remove axes of size 1 (all of them, or those named)."""
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = {_check_axis("squeeze", a, self.shape) for a in np.atleast_1d(axis).tolist()}
        for a in sorted(axes):
            if self.shape[a] != 1:
                raise ValueError(
                    f"squeeze: axis {a} has size {self.shape[a]}, not 1 (shape {self.shape}); "
                    "PyTorch would leave the tensor unchanged: leave out this squeeze"
                )
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    @accepts_dim
    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of size 1 at position ``axis`` (negative counts from the end)."""
        new_ndim = self.ndim + 1
        if not -new_ndim <= axis < new_ndim:
            raise IndexError(
                f"unsqueeze: axis {axis} is out of range for a result of {new_ndim} "
                f"dimensions (input shape {self.shape})"
            )
        axis %= new_ndim
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes``; -1 keeps an existing size (PyTorch's ``expand``)."""
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(
                f"expand: cannot expand shape {self.shape} to fewer dimensions {sizes}"
            )
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)
        )
        return self.broadcast_to(shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        shape = tuple(shape)
        if shape == self.shape:
            return self
        return ops.BroadcastTo.apply(self, shape=shape)

    def split(self, *args: Any, **kwargs: Any) -> list[Tensor]:
        """``functional.split(self, split_size_or_sections, axis=0)`` (``dim=`` too)."""
        return functional.split(self, *args, **kwargs)

    def chunk(self, *args: Any, **kwargs: Any) -> list[Tensor]:
        """``functional.chunk(self, chunks, axis=0)`` (``dim=`` too)."""
        return functional.chunk(self, *args, **kwargs)

    def matmul(self, other: Any) -> Tensor:
        return self @ other

    # ----------------------------------------------------------------- PyTorch names
    # The names a student brings from PyTorch, each with PyTorch's meaning, built from the
    # methods above. docs/coming-from-pytorch.md lists every choice made here.

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.data.ndim

    def tolist(self) -> Any:
        """The values as (nested) Python lists of Python numbers."""
        return self.data.tolist()

    @accepts_dim
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the first largest value along ``axis`` (of the flattened tensor when
        None); int64, no gradient."""
        return Tensor(np.argmax(self.data, axis=axis, keepdims=keepdims).astype(np.int64))

    @accepts_dim
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the first smallest value along ``axis`` (of the flattened tensor when
        None); int64, no gradient."""
        return Tensor(np.argmin(self.data, axis=axis, keepdims=keepdims).astype(np.int64))

    @accepts_dim
    def all(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """True where every element along ``axis`` is nonzero; bool, no gradient."""
        return Tensor(np.all(self.data, axis=_axis(axis), keepdims=keepdims))

    @accepts_dim
    def any(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """True where some element along ``axis`` is nonzero; bool, no gradient."""
        return Tensor(np.any(self.data, axis=_axis(axis), keepdims=keepdims))

    @accepts_dim
    def amax(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The largest values only (never indices); ties share the gradient."""
        return self.max(axis=axis, keepdims=keepdims)

    @accepts_dim
    def amin(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The smallest values only (never indices); ties share the gradient."""
        return self.min(axis=axis, keepdims=keepdims)

    @accepts_dim(correction=True)
    def std(self, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """√var: the standard deviation with PyTorch's ``correction=1`` by default."""
        return self.var(axis=axis, keepdims=keepdims, correction=correction).sqrt()

    def gather(self, dim: int, index: Any) -> Tensor:
        """``out[i][j] = self[index[i][j]][j]`` for ``dim=0`` (PyTorch's ``gather``): ``index``
        has this tensor's number of dimensions; the gradient goes to the picked elements."""
        index = np.asarray(index.data if isinstance(index, Tensor) else index)
        if index.ndim != self.ndim or index.dtype.kind not in "iu":
            raise ValueError(
                f"gather: index must be an integer array with the tensor's {self.ndim} "
                f"dimensions; got dtype {index.dtype} and shape {index.shape} for a tensor of "
                f"shape {self.shape}"
            )
        dim = _check_axis("gather", dim, self.shape)
        sides = enumerate(zip(index.shape, self.shape, strict=True))
        if any(n > m for d, (n, m) in sides if d != dim):
            raise ValueError(
                f"gather: index shape {index.shape} must be no larger than the tensor's shape "
                f"{self.shape} except along dim {dim}"
            )
        if index.size and (index.min() < 0 or index.max() >= self.shape[dim]):
            raise IndexError(
                f"gather: an index is out of range for dim {dim} of size {self.shape[dim]}"
            )
        grid = list(np.indices(index.shape, sparse=True))
        grid[dim] = index
        return self[tuple(grid)]

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        """``value`` where the bool ``mask`` (broadcast to this shape) is True, else this
        tensor; the gradient passes where ``mask`` is False."""
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: mask must be bool, got dtype {mask.dtype}")
        try:
            fits = np.broadcast_shapes(mask.shape, self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"masked_fill: mask of shape {mask.shape} does not broadcast to the tensor's "
                f"shape {self.shape}"
            )
        return functional.where(mask, value, self)

    def t(self) -> Tensor:
        """Transpose of a tensor of at most 2 dimensions (PyTorch's ``t``)."""
        if self.ndim > 2:
            raise ValueError(
                f"t: expects a tensor of at most 2 dimensions, got shape {self.shape}; write "
                "transpose(dim0, dim1) or permute(...)"
            )
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (a batch of matrices, each transposed)."""
        if self.ndim < 2:
            raise ValueError(f"mT: needs at least 2 dimensions, got shape {self.shape}")
        return self.transpose(-2, -1)

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile the tensor ``sizes[i]`` times along axis i (PyTorch's ``repeat``, numpy's
        ``tile``); numpy's ``repeat``, which repeats each element, is not this."""
        sizes = _shape_args(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(
                f"repeat: {len(sizes)} repeat counts for a tensor of {self.ndim} dimensions "
                f"(shape {self.shape}); give at least one count per dimension"
            )
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        pairs = [n for pair in zip(sizes, shape, strict=True) for n in pair]
        spread = self.reshape([n for s in shape for n in (1, s)]).broadcast_to(pairs)
        return spread.reshape([r * s for r, s in zip(sizes, shape, strict=True)])

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.broadcast_to(other.shape)

    def contiguous(self) -> Tensor:
        """This tensor: every tensor here is usable as it is (no strides to fix)."""
        return self

    @property
    def device(self) -> str:
        """Always ``'cpu'``: the data are numpy arrays."""
        return "cpu"

    def to(
        self, *args: Any, dtype: Any = None, device: Any = None, non_blocking: bool = False
    ) -> Tensor:
        """``to(dtype)``, ``to('cpu')``, ``to(other)`` or ``to(device, dtype)``, as in PyTorch.

        The only device is the CPU; any other is an error. ``non_blocking`` changes nothing
        on the CPU.
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, str) or type(arg).__name__ == "device":
                device = arg
            else:
                dtype = arg
        check_device("to", device)
        return self if dtype is None else self.astype(dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        raise ValueError(
            "cuda: tinygrad_seq computes on the CPU with numpy; leave out .cuda() (or write .cpu())"
        )

    def type(self, dtype: Any = None) -> Tensor:
        """``type(dtype)`` converts, like ``to(dtype)``. Without ``dtype`` PyTorch returns a
        class name such as ``'torch.FloatTensor'``; here that is an error naming ``dtype``."""
        if dtype is None or isinstance(dtype, str):
            raise TypeError(
                f"type: write x.dtype to read the dtype ({self.dtype}) and x.to(dtype) or "
                "x.type(ts.float64) to convert; PyTorch's type names such as "
                "'torch.FloatTensor' do not exist here"
            )
        return self.astype(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.astype(other.dtype)

    def long(self) -> Tensor:
        return self.astype(np.int64)

    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A new tensor from ``data``, with this tensor's dtype unless ``dtype`` is given."""
        return Tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(
        self, size: Sequence[int], fill_value: float, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return self.new_full(_shape_args(size), 0, dtype, requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return self.new_full(_shape_args(size), 1, dtype, requires_grad)

    def add(self, other: Any) -> Tensor:
        return self + other

    def sub(self, other: Any) -> Tensor:
        return self - other

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any) -> Tensor:
        return self / other

    def pow(self, exponent: Any) -> Tensor:
        return self**exponent

    def __floordiv__(self, other: Any) -> Tensor:
        """Floor division, rounding towards −∞ as Python and PyTorch do; no gradient."""
        return Tensor(
            np.floor_divide(self.data, other.data if isinstance(other, Tensor) else other)
        )

    def __rfloordiv__(self, other: Any) -> Tensor:
        return Tensor(np.floor_divide(other, self.data))


# --------------------------------------------------------------------------- helpers


def _to_array(data: Any, dtype: Any, copy: bool) -> np.ndarray:
    """An ndarray from user data: Python floats become float32, arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype, copy=copy)
    if isinstance(data, np.ndarray | np.generic):
        return np.array(data, copy=copy)
    array = np.asarray(data)
    if array.dtype == np.float64:
        array = array.astype(DEFAULT_DTYPE)
    elif array.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} data")
    return array


_new_tensor = object.__new__
_SCALARS = (int, float, bool, np.number, np.bool_)


def _operand(other: Any, like: Tensor) -> Tensor:
    """The other operand of ``like``'s binary operator, through :meth:`Tensor.of` (a Python
    number takes ``like``'s dtype); a Tensor as it is, without the call (operators run a lot)."""
    return other if isinstance(other, Tensor) else Tensor.of(other, like.data.dtype)


def _true_division(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Integers divided give the default float dtype (float32), as in PyTorch; numpy would
    give float64."""
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return a.astype(DEFAULT_DTYPE), b.astype(DEFAULT_DTYPE)
    return a, b


def _replace_all(old: Tensor, value: Any) -> Tensor:
    """``value`` broadcast to old's shape, as an op of old (whose gradient is then zero)."""
    value = Tensor.of(value, old.dtype)
    return functional.where(np.ones(old.shape, dtype=bool), value, old).astype(old.dtype)


def _set_item(old: Tensor, index: Any, value: Any) -> Tensor:
    return ops.SetItem.apply(old, Tensor.of(value, old.dtype), index=index)


def _axis(axis: Axis) -> int | tuple[int, ...] | None:
    if axis is None or isinstance(axis, int | np.integer):
        return axis if axis is None else int(axis)
    return tuple(int(a) for a in axis)


def _check_axis(op: str, axis: int, shape: Shape) -> int:
    """``axis`` made non-negative, or an IndexError naming the op and the shape."""
    ndim = len(shape)
    if not -ndim <= axis < max(ndim, 1):
        raise IndexError(
            f"{op}: axis {axis} is out of range for a tensor of {ndim} dimensions (shape {shape})"
        )
    return axis % max(ndim, 1)


def _shape_args(args: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(args) == 1 and isinstance(args[0], Sequence | np.ndarray):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


def _normalize_index(index: Any) -> Any:
    """Tensors inside an index become their arrays; lists become integer or bool arrays."""
    if isinstance(index, tuple):
        for item in index:
            if isinstance(item, (Tensor, list)):  # (a tuple of types: faster than |)
                return tuple(_normalize_index_item(i) for i in index)
        return index
    return _normalize_index_item(index)


def _normalize_index_item(item: Any) -> Any:
    if isinstance(item, Tensor):
        return item.data
    if isinstance(item, list):
        return np.asarray(item)
    return item


# --------------------------------------------------------------------------- factories

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator used by ``randn``, ``rand``, dropout and initialisers by default."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The generator used when no ``rng`` is passed (see :func:`manual_seed`)."""
    return _generator


def _generator_of(op: str, rng: Any, generator: Any) -> np.random.Generator:
    """The numpy Generator given as ``rng=`` or ``generator=`` (PyTorch's name), or the default."""
    if rng is not None and generator is not None:
        raise TypeError(f"{op}: got both rng= and generator=; give one (they mean the same)")
    chosen = rng if rng is not None else generator
    if chosen is not None and not isinstance(chosen, np.random.Generator):
        raise TypeError(
            f"{op}: generator must be a numpy Generator (np.random.default_rng(seed)), not "
            f"{type(chosen).__name__}"
        )
    return chosen if chosen is not None else _generator


def check_device(op: str, device: Any) -> None:
    """The only device is the CPU: any other is an error that says what to write."""
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(
            f"{op}: there is no device {str(device)!r}; tinygrad_seq computes on the CPU "
            "with numpy: leave out .to(device) (or write .to('cpu'))"
        )


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A tensor sharing memory with ``array`` (no copy; the dtype is kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an ndarray, got {type(array).__name__}")
    t = Tensor._wrap(array)
    return t.requires_grad_(True) if requires_grad else t


def _filled(shape: tuple[Any, ...], value: Any, dtype: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(np.full(_shape_args(shape), value, dtype=dtype or DEFAULT_DTYPE))
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(shape, 0, dtype, requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(shape, 1, dtype, requires_grad)


def full(
    shape: Sequence[int], fill_value: float, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    return _filled((tuple(shape),), fill_value, dtype, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled((t.shape,), 0, dtype or t.dtype, requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled((t.shape,), 1, dtype or t.dtype, requires_grad)


def randn(
    *shape: Any,
    rng: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Standard normal samples (float32 unless ``dtype`` says otherwise); ``generator=`` (a
    numpy Generator) is PyTorch's name for ``rng=``."""
    rng = _generator_of("randn", rng, generator)
    data = rng.standard_normal(_shape_args(shape)).astype(dtype or DEFAULT_DTYPE)
    t = Tensor._wrap(data)
    return t.requires_grad_(True) if requires_grad else t


def rand(
    *shape: Any,
    rng: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Uniform samples in [0, 1) (float32 unless ``dtype`` says otherwise); ``generator=`` (a
    numpy Generator) is PyTorch's name for ``rng=``."""
    rng = _generator_of("rand", rng, generator)
    data = rng.random(_shape_args(shape)).astype(dtype or DEFAULT_DTYPE)
    t = Tensor._wrap(data)
    return t.requires_grad_(True) if requires_grad else t


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values in [start, stop): integers give int64, floats float32."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and values.dtype.kind == "f":
        dtype = DEFAULT_DTYPE
    return Tensor._wrap(values.astype(dtype) if dtype is not None else values)


# The engine, ops and functional import Tensor from here: imported last, they find it.
from . import autograd, functional, ops, safety  # noqa: E402

# Their derivative is zero wherever it exists: a constant result is exact.
_PIECEWISE_CONSTANT = {"sign", "floor", "ceil", "trunc", "rint", "heaviside"}


def _sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, **_: Any) -> Tensor:
    t = Tensor.of(a)
    return (t if dtype is None else t.astype(dtype)).sum(axis=axis, keepdims=keepdims)


_ARRAY_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: _sum,
    np.broadcast_to: lambda a, shape, **_: Tensor.of(a).broadcast_to(shape),
    np.reshape: lambda a, shape, **_: Tensor.of(a).reshape(shape),
    np.transpose: lambda a, axes=None: Tensor.of(a).permute(
        *(reversed(range(a.ndim)) if axes is None else axes)
    ),
    np.swapaxes: lambda a, axis1, axis2: Tensor.of(a).transpose(axis1, axis2),
    np.where: lambda condition, a, b: functional.where(condition, a, b),
}
