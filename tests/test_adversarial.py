"""Hostile inputs: NaN, ±inf, huge and tiny magnitudes, empty dimensions, 0-d tensors.

Every op either agrees with numpy, IEEE special values included, or raises an error that
names the op; it never crashes deep inside. Where the inputs are finite and the maths is
finite, the gradients are finite too (sigmoid, tanh, log_softmax, logsumexp at ±1e4).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_seq as ts
from tinygrad_seq import functional as F

SPECIAL = st.sampled_from(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300, 1e-300, 5e-324, 1e4, -1e4]
)
ANY_FLOAT = st.one_of(SPECIAL, st.floats(allow_nan=True, allow_infinity=True, width=64))


def hostile_arrays(min_side=0, max_dims=3):
    shape = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=min_side, max_side=3)
    return hnp.arrays(np.float64, shape, elements=ANY_FLOAT, fill=st.nothing())


UNARY = {
    "exp": (lambda x: x.exp(), np.exp),
    "log": (lambda x: x.log(), np.log),
    "sqrt": (lambda x: x.sqrt(), np.sqrt),
    "tanh": (lambda x: x.tanh(), np.tanh),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 0.5 * (1 + np.tanh(a / 2))),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0)),
    "abs": (lambda x: x.abs(), np.abs),
    "neg": (lambda x: -x, np.negative),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda a: np.clip(a, -1, 1)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(values=hostile_arrays())
def test_unary_ops_are_ieee_consistent_with_numpy(name, values):
    ours, reference = UNARY[name]
    with np.errstate(all="ignore"):
        expected = reference(values)
        result = ours(ts.tensor(values))
    assert result.shape == values.shape and result.dtype == np.float64
    np.testing.assert_allclose(result.data, expected, rtol=1e-12, atol=1e-300)


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a**b, np.power),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_ops_are_ieee_consistent_with_numpy(name, data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_side=0, max_side=3))
    a, b = (
        data.draw(hnp.arrays(np.float64, shape, elements=ANY_FLOAT, fill=st.nothing()))
        for shape in shapes.input_shapes
    )
    ours, reference = BINARY[name]
    with np.errstate(all="ignore"):
        expected = reference(a, b)
        result = ours(ts.tensor(a), ts.tensor(b))
    assert result.shape == shapes.result_shape
    np.testing.assert_array_equal(result.data, expected)


REDUCTIONS = {
    "sum": (lambda x, ax: x.sum(ax), lambda a, ax: np.sum(a, axis=ax)),
    "mean": (lambda x, ax: x.mean(ax), lambda a, ax: np.mean(a, axis=ax)),
    "max": (lambda x, ax: x.max(axis=ax), lambda a, ax: np.max(a, axis=ax)),
    "min": (lambda x, ax: x.min(axis=ax), lambda a, ax: np.min(a, axis=ax)),
    # numpy's own stable log-sum-exp (log(sum(exp(a))) rounds exp(1e-300) to 1, giving 0)
    "logsumexp": (
        lambda x, ax: x.logsumexp(ax),
        lambda a, ax: np.logaddexp.reduce(a, axis=ax, initial=-np.inf),
    ),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(values=hostile_arrays(), data=st.data())
def test_reductions_agree_with_numpy_or_name_the_op(name, values, data):
    axis = data.draw(st.none() | st.integers(0, max(values.ndim - 1, 0)), label="axis")
    axis = None if values.ndim == 0 else axis
    ours, reference = REDUCTIONS[name]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            expected = reference(values, axis)
        except ValueError:  # numpy refuses, e.g. max of an empty array
            with pytest.raises(ValueError, match=f"^{name}: "):
                ours(ts.tensor(values), axis)
            return
        result = ours(ts.tensor(values), axis)
    if name == "logsumexp" and (np.abs(values[np.isfinite(values)]) > 700).any():
        return  # the plain numpy formula overflows there; the shifted one is tested below
    np.testing.assert_allclose(result.data, expected, rtol=1e-12)


def test_logsumexp_of_infinities_is_ieee_consistent():
    x = ts.tensor(np.array([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 0.0]]))
    with np.errstate(divide="ignore"):  # log 0 = −inf, as numpy says (and warns)
        out = x.logsumexp(axis=1).data
    np.testing.assert_array_equal(out, [-np.inf, np.inf, 0.0])
    big = ts.tensor(np.array([1e4, 1e4 - np.log(3.0)]))
    np.testing.assert_allclose(big.logsumexp().item(), 1e4 + np.log(4 / 3), rtol=1e-15)


@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(max_side=3),
        elements=st.sampled_from([1e4, -1e4, 1e3, -7e3, 0.0, 30.0, -30.0]),
    )
)
def test_saturated_smooth_ops_keep_finite_values_and_gradients(values):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        for op in (
            lambda x: x.sigmoid(),
            lambda x: x.tanh(),
            lambda x: ts.log_softmax(x, axis=-1),
            lambda x: x.logsumexp(axis=-1),
            lambda x: ts.softmax(x, axis=-1),
        ):
            x = ts.tensor(values, requires_grad=True)
            y = op(x)
            assert np.isfinite(y.data).all()
            y.backward(np.ones(y.shape))
            assert np.isfinite(x.grad.data).all()


def test_cross_entropy_at_extreme_logits_is_finite_with_finite_gradients():
    logits = ts.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(logits, np.array([1, 2]))
        loss.backward()
    assert np.isfinite(loss.item()) and loss.item() > 1e3
    assert np.isfinite(logits.grad.data).all()


@pytest.mark.parametrize(
    "shape", [(0,), (0, 3), (3, 0), (2, 0, 4)], ids=lambda s: "x".join(map(str, s))
)
def test_empty_dimensions_flow_through_forward_and_backward(shape):
    x = ts.zeros(*shape, dtype=np.float64, requires_grad=True)
    y = (x.tanh() * 2 + x.exp()).sum(axis=-1)
    assert y.shape == shape[:-1]
    y.backward(np.ones(y.shape))
    assert x.grad.shape == shape
    z = x.reshape(-1)
    assert z.shape == (0,)
    assert ts.cat([x, x], axis=0).shape[0] == 2 * shape[0]


def test_empty_max_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^max: cannot reduce an empty tensor \(shape \(0, 3\)\)"):
        ts.zeros(0, 3).max()
    assert ts.zeros(0, 3).max(axis=1).shape == (0,)  # nothing to reduce: no error


def test_zero_dimensional_tensors_work_everywhere():
    x = ts.tensor(np.float64(0.5), requires_grad=True)
    y = (x * x).tanh() + x.sigmoid() - x.exp() / (x + 1) + x.maximum(0.25)
    assert y.shape == ()
    y.backward()
    assert x.grad.shape == () and np.isfinite(x.grad.item())
    assert (x.reshape(1, 1) @ ts.ones(1, 2, dtype=np.float64)).shape == (1, 2)


@given(values=hostile_arrays(min_side=1, max_dims=2))
def test_gradients_of_nan_free_cases_stay_nan_free(values):
    finite = np.nan_to_num(values, nan=0.0, posinf=1e4, neginf=-1e4).clip(-1e4, 1e4)
    x = ts.tensor(finite, requires_grad=True)
    with np.errstate(all="ignore"):
        y = (x.tanh() + x.sigmoid() + x.clip(-1, 1) + x.abs() + x.relu()).sum()
        y.backward()
    assert np.isfinite(x.grad.data).all()


@pytest.mark.parametrize(
    ("action", "pattern"),
    [
        (lambda: ts.tensor("text"), "tensor: cannot make a tensor from str"),
        (lambda: ts.tensor([1.0]) @ ts.tensor(2.0), "matmul: .*at least one dimension"),
        (lambda: ts.ones(2).item(), r"item: only a tensor with one element.*\(2,\)"),
        (lambda: bool(ts.ones(2)), r"bool: the truth value of a tensor of shape \(2,\)"),
        (lambda: ts.where(np.ones(2), ts.ones(2), 0.0), "where: condition must be bool"),
        (lambda: ts.ones(2, 3).permute(0), r"permute: \(0,\) names 1 axes.*\(2, 3\)"),
        (lambda: ts.ones(2)[None, None, None, 5], r"getitem: .*index 5"),
        (lambda: F.cross_entropy(ts.ones(2, 3), np.array([0, 3])), "out of range for 3 classes"),
        (lambda: F.cross_entropy(ts.ones(2, 3), np.array([0.0, 1.0])), "integer class indices"),
        (lambda: F.mse_loss(ts.ones(3), ts.ones(3, 1)), r"mse_loss: input shape \(3,\)"),
        (lambda: F.dropout(ts.ones(2), p=2.0), "dropout: p must be between 0 and 1"),
        (lambda: ts.ones(3).split(0), "split: split size must be positive"),
    ],
)
def test_misuse_gets_an_error_that_names_the_op(action, pattern):
    with pytest.raises((ValueError, TypeError, IndexError, RuntimeError), match=pattern):
        action()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_relative_precision_down_to_the_smallest_normal_float(dtype):
    # σ(x) ≈ eˣ for very negative x: compare with exp in float64, where it is exact enough.
    tiny = np.finfo(dtype).tiny
    x = np.linspace(np.log(tiny), 0.0, 2001).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ts.tensor(x).sigmoid().data
    expected = 1.0 / (1.0 + np.exp(-x.astype(np.longdouble)))
    np.testing.assert_allclose(y, expected.astype(dtype), rtol=4 * np.finfo(dtype).eps, atol=0)
    # Further down it underflows to 0, exactly 0 at −inf (as PyTorch), never NaN or negative.
    far = ts.tensor(np.array([-np.inf, -1e4, -1e3, np.log(tiny) - 50], dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y_far = far.sigmoid().data
    assert np.all((y_far >= 0) & (y_far < tiny)) and y_far[0] == 0 and y_far[1] == 0
