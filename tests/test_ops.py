"""Every differentiable op, proven: forward against numpy, backward against central differences.

Each entry of ``CASES`` draws one example of an op with Hypothesis: the function on Tensors,
its float64 inputs (kept away from kinks and ties), and the numpy forward it must match. The
same cases then run through four properties:

- forward equals numpy;
- the gradient equals float64 central differences with a random non-uniform upstream
  gradient (``tinygrad_seq.testing.gradcheck``), some inputs randomly held constant;
- each op's one backward gives the same numbers run on arrays (the engine's plain path) and
  on Tensors (``create_graph=True``);
- second derivatives (``gradgradcheck``).

``test_every_op_has_a_property_test`` fails when an op or composite exists without a case.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_seq as ts
from tinygrad_seq import autograd, ops
from tinygrad_seq import functional as F
from tinygrad_seq.testing import gradcheck, gradgradcheck
from tinygrad_seq.testing import strategies as tst


@dataclass
class Case:
    fn: Callable[..., ts.Tensor]
    inputs: list[np.ndarray]
    reference: Callable[..., np.ndarray]
    smooth: bool = True  # second derivatives exist (and are checked) at these inputs
    constants: list[bool] = field(default_factory=list)


CASES: dict[str, Callable[[st.DataObject], Case]] = {}


def case(name: str):
    def register(builder):
        CASES[name] = builder
        return builder

    return register


def draw_array(data, shape, elements=None, distinct=False):
    return data.draw(tst.arrays(shape, elements=elements, distinct=distinct), label="values")


def draw_shape(data, **kwargs):
    return data.draw(tst.shapes(**kwargs), label="shape")


# --------------------------------------------------------------------------- elementwise

UNARY = {
    "exp": (lambda x: x.exp(), np.exp, tst.reals(-3, 3), True),
    "log": (lambda x: x.log(), np.log, tst.positives(0.2, 5), True),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, tst.positives(0.2, 5), True),
    "tanh": (lambda x: x.tanh(), np.tanh, tst.reals(-3, 3), True),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), tst.reals(-5, 5), True),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), tst.away_from(0.0), False),
    "abs": (lambda x: x.abs(), np.abs, tst.away_from(0.0), False),
    "neg": (lambda x: -x, np.negative, tst.reals(), True),
    "clip": (
        lambda x: x.clip(-1.0, 1.0),
        lambda a: np.clip(a, -1, 1),
        tst.away_from(-1.0, 1.0),
        False,
    ),
}

for _name, (_fn, _ref, _elements, _smooth) in UNARY.items():

    def _unary(data, fn=_fn, ref=_ref, elements=_elements, smooth=_smooth):
        return Case(fn, [draw_array(data, draw_shape(data), elements)], ref, smooth)

    case(_name)(_unary)


def _binary(data, elements_a=None, elements_b=None):
    shape_a, shape_b = data.draw(tst.mutually_broadcastable_shapes(2), label="shapes")
    return draw_array(data, shape_a, elements_a), draw_array(data, shape_b, elements_b)


@case("add")
def _add(data):
    return Case(lambda a, b: a + b, list(_binary(data)), np.add)


@case("sub")
def _sub(data):
    return Case(lambda a, b: a - b, list(_binary(data)), np.subtract)


@case("mul")
def _mul(data):
    return Case(lambda a, b: a * b, list(_binary(data)), np.multiply)


@case("div")
def _div(data):
    a, b = _binary(data, elements_b=tst.away_from(0.0, margin=0.5))
    return Case(lambda a, b: a / b, [a, b], np.divide)


@case("pow")
def _pow(data):
    a, b = _binary(data, tst.positives(0.3, 3), tst.reals(-2, 2))
    return Case(lambda a, b: a**b, [a, b], np.power)


@case("pow_scalar")
def _pow_scalar(data):
    exponent = data.draw(st.sampled_from([2, 3, -1, 0.5]), label="exponent")
    x = draw_array(data, draw_shape(data), tst.positives(0.3, 3))
    return Case(lambda a: a**exponent, [x], lambda a: a**exponent)


def _untied_pair(data):
    """Two broadcastable arrays that are never equal: grid points and grid midpoints."""
    a, b = _binary(data, tst.separated(0.25), tst.separated(0.25))
    return a, b + 0.125


@case("maximum")
def _maximum(data):
    return Case(lambda a, b: a.maximum(b), list(_untied_pair(data)), np.maximum, False)


@case("minimum")
def _minimum(data):
    return Case(lambda a, b: a.minimum(b), list(_untied_pair(data)), np.minimum, False)


@case("where")
def _where(data):
    a, b = _binary(data)
    shape = np.broadcast_shapes(a.shape, b.shape)
    cond = data.draw(hnp.arrays(np.bool_, shape), label="condition")
    return Case(lambda a, b: ts.where(cond, a, b), [a, b], lambda a, b: np.where(cond, a, b))


@case("matmul")
def _matmul(data):
    shape_a, shape_b = data.draw(tst.matmul_shapes(), label="shapes")
    return Case(
        lambda a, b: a @ b, [draw_array(data, shape_a), draw_array(data, shape_b)], np.matmul
    )


@case("linear")
def _linear(data):
    batch = draw_shape(data, max_dims=2)
    features, out = data.draw(st.integers(1, 4), label="in"), data.draw(st.integers(1, 4))
    x, w = draw_array(data, batch + (features,)), draw_array(data, (out, features))
    if data.draw(st.booleans(), label="bias"):
        b = draw_array(data, (out,))
        return Case(lambda x, w, b: F.linear(x, w, b), [x, w, b], lambda x, w, b: x @ w.T + b)
    return Case(lambda x, w: F.linear(x, w), [x, w], lambda x, w: x @ w.T)


# --------------------------------------------------------------------------- reductions


def _reduction(data, min_side=1, min_dims=0):
    shape = draw_shape(data, min_side=min_side, min_dims=min_dims)
    axis = data.draw(tst.axes(len(shape)), label="axis")
    keep = data.draw(tst.keepdims(), label="keepdims")
    return shape, axis, keep


@case("sum")
def _sum(data):
    shape, axis, keep = _reduction(data)
    return Case(
        lambda x: x.sum(axis, keep),
        [draw_array(data, shape)],
        lambda a: np.sum(a, axis=axis, keepdims=keep),
    )


@case("mean")
def _mean(data):
    shape, axis, keep = _reduction(data)
    return Case(
        lambda x: x.mean(axis, keep),
        [draw_array(data, shape)],
        lambda a: np.mean(a, axis=axis, keepdims=keep),
    )


@case("max")
def _max(data):
    shape, axis, keep = _reduction(data)
    x = draw_array(data, shape, tst.separated(0.25, -4, 4), distinct=True)
    return Case(
        lambda x: x.max(axis=axis, keepdims=keep),
        [x],
        lambda a: np.max(a, axis=axis, keepdims=keep),
        False,
    )


@case("min")
def _min(data):
    shape, axis, keep = _reduction(data)
    x = draw_array(data, shape, tst.separated(0.25, -4, 4), distinct=True)
    return Case(
        lambda x: x.min(axis=axis, keepdims=keep),
        [x],
        lambda a: np.min(a, axis=axis, keepdims=keep),
        False,
    )


def _max_like_dim(data, name):
    shape = draw_shape(data, min_dims=1)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    keep = data.draw(tst.keepdims(), label="keepdim")
    x = draw_array(data, shape, tst.separated(0.25, -4, 4), distinct=True)
    return Case(
        lambda x: getattr(x, name)(dim=dim, keepdim=keep).values,
        [x],
        lambda a: getattr(np, name)(a, axis=dim, keepdims=keep),
        False,
    )


@case("max_dim")
def _max_dim(data):
    return _max_like_dim(data, "max")


@case("min_dim")
def _min_dim(data):
    return _max_like_dim(data, "min")


@case("var")
def _var(data):
    shape, axis, keep = _reduction(data, min_side=2, min_dims=1)
    axis = None if axis == () else axis  # reducing nothing leaves n − correction = 0
    correction = data.draw(st.sampled_from([0, 1]), label="correction")
    return Case(
        lambda x: x.var(axis, keepdims=keep, correction=correction),
        [draw_array(data, shape)],
        lambda a: np.var(a, axis=axis, keepdims=keep, ddof=correction),
    )


@case("logsumexp")
def _logsumexp(data):
    shape, axis, keep = _reduction(data)
    return Case(
        lambda x: x.logsumexp(axis, keep),
        [draw_array(data, shape)],
        lambda a: np.log(np.sum(np.exp(a), axis=axis, keepdims=keep)),
    )


@case("sum_to")
def _sum_to(data):
    big = draw_shape(data, min_dims=1)
    lead = data.draw(st.integers(0, len(big)), label="dropped leading axes")
    ones = data.draw(st.lists(st.booleans(), min_size=len(big), max_size=len(big)), label="ones")
    small = tuple(1 if one else n for n, one in zip(big[lead:], ones, strict=False))
    reference = lambda a: np.sum(  # noqa: E731
        a,
        axis=tuple(range(len(big) - len(small)))
        + tuple(
            len(big) - len(small) + i
            for i, n in enumerate(small)
            if n == 1 and big[len(big) - len(small) + i] != 1
        ),
    ).reshape(small)
    return Case(lambda x: x.sum_to(small), [draw_array(data, big)], reference)


# --------------------------------------------------------------------------- shape


@case("reshape")
def _reshape(data):
    shape = draw_shape(data)
    target = data.draw(st.permutations(list(shape)), label="target") if shape else []
    target = (*target[:-1], -1) if target else ()
    return Case(lambda x: x.reshape(target), [draw_array(data, shape)], lambda a: a.reshape(target))


@case("flatten")
def _flatten(data):
    shape = draw_shape(data, min_dims=1)
    start = data.draw(st.integers(0, len(shape) - 1), label="start")
    return Case(
        lambda x: x.flatten(start),
        [draw_array(data, shape)],
        lambda a: a.reshape(a.shape[:start] + (-1,)),
    )


@case("permute")
def _permute(data):
    shape = draw_shape(data)
    order = data.draw(st.permutations(range(len(shape))), label="order")
    return Case(
        lambda x: x.permute(*order), [draw_array(data, shape)], lambda a: a.transpose(order)
    )


@case("transpose")
def _transpose(data):
    shape = draw_shape(data, min_dims=2)
    d0 = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim0")
    d1 = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim1")
    return Case(
        lambda x: x.transpose(d0, d1), [draw_array(data, shape)], lambda a: np.swapaxes(a, d0, d1)
    )


@case("T")
def _T(data):
    return Case(lambda x: x.T, [draw_array(data, draw_shape(data))], lambda a: a.T)


@case("t")
def _t(data):
    shape = draw_shape(data, max_dims=2)
    return Case(lambda x: x.t(), [draw_array(data, shape)], lambda a: a.T)


@case("std")
def _std(data):
    shape, axis, keep = _reduction(data, min_side=2, min_dims=1)
    axis = None if axis == () else axis
    x = draw_array(data, shape, tst.separated(0.25, -4, 4), distinct=True)
    return Case(
        lambda x: x.std(dim=axis, keepdim=keep),
        [x],
        lambda a: np.std(a, axis=axis, keepdims=keep, ddof=1),
    )


@case("gather")
def _gather(data):
    shape = draw_shape(data, min_dims=1)
    dim = data.draw(st.integers(0, len(shape) - 1), label="dim")
    picked = tuple(data.draw(st.integers(1, n), label="side") for n in shape)
    index = data.draw(
        hnp.arrays(np.int64, picked, elements=st.integers(0, shape[dim] - 1)), label="index"
    )
    crop = tuple(slice(None) if d == dim else slice(n) for d, n in enumerate(picked))
    return Case(
        lambda x: x.gather(dim, index),
        [draw_array(data, shape)],
        lambda a: np.take_along_axis(a[crop], index, dim),
    )


@case("masked_fill")
def _masked_fill(data):
    shape = draw_shape(data)
    kept = data.draw(st.integers(0, len(shape)), label="mask dims")
    mask_shape = tuple(n if data.draw(st.booleans()) else 1 for n in shape[len(shape) - kept :])
    mask = data.draw(hnp.arrays(np.bool_, mask_shape), label="mask")
    return Case(
        lambda x: x.masked_fill(mask, -2.5),
        [draw_array(data, shape)],
        lambda a: np.where(mask, -2.5, a),
    )


@case("repeat")
def _repeat(data):
    shape = draw_shape(data, max_dims=3)
    extra = data.draw(st.integers(0, 1), label="new dims")
    count = len(shape) + extra
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count), label="sizes")
    return Case(
        lambda x: x.repeat(sizes),
        [draw_array(data, shape)],
        lambda a: np.tile(a, sizes),
    )


@case("squeeze")
def _squeeze(data):
    shape = data.draw(tst.shapes(max_side=2), label="shape")
    return Case(lambda x: x.squeeze(), [draw_array(data, shape)], np.squeeze)


@case("unsqueeze")
def _unsqueeze(data):
    shape = draw_shape(data)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return Case(
        lambda x: x.unsqueeze(axis), [draw_array(data, shape)], lambda a: np.expand_dims(a, axis)
    )


@case("broadcast_to")
def _broadcast_to(data):
    small, big = data.draw(tst.mutually_broadcastable_shapes(2), label="shapes")
    target = np.broadcast_shapes(small, big)
    return Case(
        lambda x: x.broadcast_to(target),
        [draw_array(data, small)],
        lambda a: np.broadcast_to(a, target),
    )


@case("expand")
def _expand(data):
    shape = draw_shape(data, min_dims=1, max_side=1)
    sizes = (3,) + tuple(-1 if data.draw(st.booleans()) else 2 for _ in shape)
    target = (3,) + tuple(1 if n == -1 else n for n in sizes[1:])
    return Case(
        lambda x: x.expand(*sizes), [draw_array(data, shape)], lambda a: np.broadcast_to(a, target)
    )


@case("getitem")
def _getitem(data):
    shape = draw_shape(data, min_dims=1)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True), label="index")
    return Case(lambda x: x[index], [draw_array(data, shape)], lambda a: a[index])


@case("getitem_integer_arrays")
def _getitem_integer_arrays(data):
    shape = draw_shape(data, min_dims=1)
    index = data.draw(hnp.integer_array_indices(shape), label="index")  # repeats included
    return Case(lambda x: x[index], [draw_array(data, shape)], lambda a: a[index])


@case("getitem_mask")
def _getitem_mask(data):
    shape = draw_shape(data, min_dims=1)
    mask = data.draw(hnp.arrays(np.bool_, shape), label="mask")
    return Case(lambda x: x[mask], [draw_array(data, shape)], lambda a: a[mask])


@case("index_add")
def _index_add(data):
    shape = draw_shape(data, min_dims=1)
    index = data.draw(hnp.integer_array_indices(shape), label="index")
    picked = np.zeros(shape)[index].shape

    def reference(g):
        out = np.zeros(shape)
        np.add.at(out, index, g)
        return out

    return Case(
        lambda g: ops.IndexAdd.apply(g, index=index, shape=shape),
        [draw_array(data, picked)],
        reference,
    )


def _joinable(data, count, same_shape):
    base = draw_shape(data, min_dims=1)
    axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
    arrays = []
    for _ in range(count):
        shape = list(base)
        if not same_shape:
            shape[axis] = data.draw(st.integers(1, 3), label="length")
        arrays.append(draw_array(data, tuple(shape)))
    return arrays, axis


@case("cat")
def _cat(data):
    count = data.draw(st.integers(1, 3), label="count")
    arrays, axis = _joinable(data, count, same_shape=False)
    return Case(lambda *xs: ts.cat(xs, axis=axis), arrays, lambda *a: np.concatenate(a, axis=axis))


@case("stack")
def _stack(data):
    count = data.draw(st.integers(1, 3), label="count")
    arrays, axis = _joinable(data, count, same_shape=True)
    return Case(lambda *xs: ts.stack(xs, axis=axis), arrays, lambda *a: np.stack(a, axis=axis))


@case("split")
def _split(data):
    (x,), axis = _joinable(data, 1, same_shape=False)
    size = data.draw(st.integers(1, 3), label="size")
    pieces = lambda n: list(range(size, n, size))  # noqa: E731
    return Case(
        lambda x: tuple(x.split(size, axis)),
        [x],
        lambda a: tuple(np.split(a, pieces(a.shape[axis]), axis=axis)),
    )


@case("chunk")
def _chunk(data):
    (x,), axis = _joinable(data, 1, same_shape=False)
    chunks = data.draw(st.integers(1, 3), label="chunks")
    size = -(-x.shape[axis] // chunks)
    return Case(
        lambda x: tuple(x.chunk(chunks, axis)),
        [x],
        lambda a: tuple(np.split(a, list(range(size, a.shape[axis], size)), axis=axis)),
    )


# --------------------------------------------------------------------------- composites


def _np_log_softmax(a, axis):
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@case("softmax")
def _softmax(data):
    shape = draw_shape(data, min_dims=1)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    return Case(
        lambda x: ts.softmax(x, axis),
        [draw_array(data, shape)],
        lambda a: np.exp(_np_log_softmax(a, axis)),
    )


@case("log_softmax")
def _log_softmax(data):
    shape = draw_shape(data, min_dims=1)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    return Case(
        lambda x: ts.log_softmax(x, axis),
        [draw_array(data, shape)],
        lambda a: _np_log_softmax(a, axis),
    )


def _classification(data):
    """Logits in (N, C) or (T, B, C) layout, integer targets, some of them ignored."""
    layout = data.draw(st.sampled_from(["NC", "TBC"]), label="layout")
    classes = data.draw(st.integers(2, 4), label="classes")
    lead = (data.draw(st.integers(1, 3)),)
    if layout == "TBC":
        lead += (data.draw(st.integers(1, 3)),)
        lead = (lead[0], lead[1] if lead[1] != classes else lead[1] + 1)  # unambiguous layout
    logits = draw_array(data, lead + (classes,))
    target = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(-1, classes - 1)))
    if (target == -1).all():
        target.flat[0] = 0  # at least one counted element, so 'mean' is defined
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    return logits, target, reduction


def _np_nll(log_probs, target, reduction):
    valid = target != -1
    picked = np.take_along_axis(log_probs, np.where(valid, target, 0)[..., None], -1)[..., 0]
    losses = -picked * valid
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / valid.sum()


@case("cross_entropy")
def _cross_entropy(data):
    logits, target, reduction = _classification(data)
    return Case(
        lambda x: F.cross_entropy(x, target, reduction=reduction, ignore_index=-1),
        [logits],
        lambda a: _np_nll(_np_log_softmax(a, -1), target, reduction),
    )


@case("nll_loss")
def _nll_loss(data):
    logits, target, reduction = _classification(data)
    return Case(
        lambda x: F.nll_loss(x, target, reduction=reduction, ignore_index=-1),
        [logits],
        lambda a: _np_nll(a, target, reduction),
    )


@case("mse_loss")
def _mse_loss(data):
    shape = draw_shape(data)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    x, y = draw_array(data, shape), draw_array(data, shape)
    ops_ = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}
    return Case(
        lambda a, b: F.mse_loss(a, b, reduction), [x, y], lambda a, b: ops_[reduction]((a - b) ** 2)
    )


@case("dropout")
def _dropout(data):
    shape = draw_shape(data)
    p = data.draw(st.sampled_from([0.0, 0.25, 0.5]), label="p")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    mask = (np.random.default_rng(seed).random(shape) >= p) / (1 - p)
    return Case(
        lambda x: F.dropout(x, p, rng=np.random.default_rng(seed)),
        [draw_array(data, shape)],
        lambda a: a * mask,
    )


@case("embedding")
def _embedding(data):
    rows, width = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    indices = data.draw(hnp.arrays(np.int64, draw_shape(data), elements=st.integers(0, rows - 1)))
    return Case(
        lambda w: F.embedding(indices, w),
        [draw_array(data, (rows, width))],
        lambda w: w[indices],
    )


@case("clone")
def _clone(data):
    return Case(lambda x: x.clone(), [draw_array(data, draw_shape(data))], np.copy)


def _written(a, index, v):
    out = a.copy()
    out[index] = v
    return out


def _setitem_case(data, index_strategy):
    shape = draw_shape(data, min_dims=1)
    index = data.draw(index_strategy(shape), label="index")
    written = np.zeros(shape)[index].shape
    value_shape = written[data.draw(st.integers(0, len(written)), label="broadcast") :]

    def fn(x, v):
        y = x * 1  # a non-leaf: a leaf that requires grad cannot be written in place
        y[index] = v
        return y

    return Case(
        fn,
        [draw_array(data, shape), draw_array(data, value_shape)],
        lambda a, v: _written(a, index, v),
    )


@case("setitem")
def _setitem(data):
    return _setitem_case(data, lambda shape: hnp.basic_indices(shape))


@case("setitem_integer_arrays")
def _setitem_integer_arrays(data):
    # unique places: where an index repeats, which write wins is not defined (as in PyTorch)
    def unique(shape):
        return hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=1)).filter(
            lambda index: (
                np.unique(np.ravel_multi_index(index, shape, mode="wrap")).size == index[0].size
            )
        )

    return _setitem_case(data, unique)


@case("setitem_mask")
def _setitem_mask(data):
    return _setitem_case(data, lambda shape: hnp.arrays(np.bool_, shape))


IN_PLACE = {
    "add_": (lambda y, b: y.add_(b), np.add, None),
    "sub_": (lambda y, b: y.sub_(b, alpha=0.5), lambda a, b: a - 0.5 * b, None),
    "mul_": (lambda y, b: y.mul_(b), np.multiply, None),
    "div_": (lambda y, b: y.div_(b), np.divide, tst.away_from(0.0, margin=0.5)),
    "copy_": (lambda y, b: y.copy_(b), lambda a, b: np.broadcast_to(b, a.shape) + 0, None),
}

for _name, (_method, _ref, _elements_b) in IN_PLACE.items():

    def _in_place(data, method=_method, ref=_ref, elements_b=_elements_b):
        shape = draw_shape(data)
        other = shape[data.draw(st.integers(0, len(shape)), label="broadcast") :]
        a, b = draw_array(data, shape), draw_array(data, other, elements_b)
        return Case(lambda a, b: method(a * 1, b), [a, b], ref)

    case(_name)(_in_place)


@case("clamp_")
def _clamp_(data):
    x = draw_array(data, draw_shape(data), tst.away_from(-1.0, 1.0))
    return Case(lambda a: (a * 1).clamp_(-1.0, 1.0), [x], lambda a: np.clip(a, -1, 1), False)


@case("fill_")
def _fill_(data):
    x = draw_array(data, draw_shape(data))
    return Case(lambda a: (a * 1).fill_(0.5) * a, [x], lambda a: 0.5 * a)


# --------------------------------------------------------------------------- the properties

NAMES = sorted(CASES)


def _build(data, name):
    built = CASES[name](data)
    flags = data.draw(
        st.lists(st.booleans(), min_size=len(built.inputs), max_size=len(built.inputs)),
        label="requires_grad",
    )
    if not any(flags):
        flags[data.draw(st.integers(0, len(flags) - 1))] = True
    built.constants = [not f for f in flags]
    return built


def _tensors(built):
    return [
        ts.tensor(a, dtype=np.float64, requires_grad=not const)
        for a, const in zip(built.inputs, built.constants, strict=True)
    ]


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_forward_matches_numpy(name, data):
    built = _build(data, name)
    outputs = _as_tuple(built.fn(*_tensors(built)))
    expected = _as_tuple(built.reference(*built.inputs))
    assert len(outputs) == len(expected)
    for out, ref in zip(outputs, expected, strict=True):
        assert out.shape == np.shape(ref)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_gradient_matches_central_differences(name, data):
    built = _build(data, name)
    seed = data.draw(st.integers(0, 2**16), label="upstream seed")
    gradcheck(built.fn, _tensors(built), rng=seed)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_array_fast_path_matches_the_tensor_definition(name, data):
    built = _build(data, name)
    inputs = [t for t in _tensors(built) if t.requires_grad]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="upstream seed"))

    def gradients(create_graph):
        outputs = _as_tuple(built.fn(*inputs_all))
        upstream = [rng_copy.standard_normal(o.shape) for o in outputs]
        grads = ts.grad(outputs, inputs, upstream, create_graph=create_graph, allow_unused=True)
        return [None if g is None else g.data for g in grads]

    inputs_all = _tensors(built)
    inputs = [t for t in inputs_all if t.requires_grad]
    rng_copy = np.random.default_rng(int(rng.integers(2**32)))
    state = rng_copy.bit_generator.state
    fast = gradients(create_graph=False)
    rng_copy.bit_generator.state = state
    defined = gradients(create_graph=True)
    for a, b in zip(fast, defined, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(data=st.data())
def test_second_derivatives(name, data):
    built = _build(data, name)
    seed = data.draw(st.integers(0, 2**16), label="upstream seed")
    gradgradcheck(built.fn, _tensors(built), rng=seed)


# --------------------------------------------------------------------------- completeness

# Tensor methods and functions that are not differentiable ops of their own.
NOT_OPS = {
    "backward", "detach", "detach_", "requires_grad_", "retain_grad", "zero_", "numpy", "item",
    "to", "float", "double", "astype", "all", "any", "argmax", "argmin", "contiguous", "cpu",
    "cuda", "dim", "long", "new_full", "new_ones", "new_tensor", "new_zeros", "numel", "tolist",
    "type", "type_as", "of",
}  # fmt: skip
# Differentiable names covered by a case under another name.
ALIASES = {
    "Add": "add", "Sub": "sub", "Neg": "neg", "Mul": "mul", "Div": "div", "Pow": "pow",
    "MatMul": "matmul", "Linear": "linear", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid", "Relu": "relu", "Abs": "abs", "Clip": "clip", "Maximum": "maximum",
    "Minimum": "minimum", "Where": "where", "Sum": "sum", "Mean": "mean", "Max": "max",
    "Min": "min", "SumTo": "sum_to", "Reshape": "reshape", "Permute": "permute",
    "BroadcastTo": "broadcast_to", "GetItem": "getitem", "IndexAdd": "index_add", "Cat": "cat",
    "Stack": "stack",
    "view": "reshape", "clamp": "clip", "matmul": "matmul", "Clone": "clone", "SetItem": "setitem",
    "amax": "max", "amin": "min", "swapaxes": "transpose",
    "view_as": "reshape", "expand_as": "broadcast_to",
}  # fmt: skip
# Covered by an exact test below instead of finite differences.
EXACT = {"Cast"}


def test_every_op_has_a_property_test():
    primitives = {
        name
        for name, obj in vars(ops).items()
        if inspect.isclass(obj)
        and issubclass(obj, autograd.Function)
        and obj.__module__ == ops.__name__
        and not name.startswith("_")
    }
    composites = {name for name in F.__all__}
    methods = {
        name
        for name, obj in vars(ts.Tensor).items()
        if callable(obj) and not name.startswith("_") or name == "T"
    }
    candidates = (primitives | composites | methods) - NOT_OPS - EXACT
    missing = sorted(n for n in candidates if ALIASES.get(n, n) not in CASES)
    assert not missing, f"ops without a gradient property test: {missing}"


def test_cast_gradient_is_cast_back():
    x = ts.tensor(np.array([0.5, -1.25, 3.0]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    g = np.array([1.5, -2.0, 0.25], dtype=np.float32)
    y.backward(g)
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, g.astype(np.float64))
    assert x.astype(np.float64) is x
