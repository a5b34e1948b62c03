"""Gradient clipping: the norm returned is the one before clipping, clipped gradients obey the
bound and keep their direction, nothing changes below the bound, old gradient arrays are
never written to; optionally against torch.nn.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq.nn import Parameter
from tinygrad_seq.nn.utils import clip_grad_norm_, clip_grad_value_
from tinygrad_seq.testing import strategies as tst


def with_grads(grads):
    params = []
    for g in grads:
        p = Parameter(np.zeros(g.shape, dtype=g.dtype))
        p.grad = ts.tensor(g)
        params.append(p)
    return params


@st.composite
def gradient_lists(draw):
    """1–3 float64 gradients of random shapes (entries in ±3, at least one non-zero)."""
    count = draw(st.integers(1, 3))
    grads = [draw(tst.arrays(tst.shapes(max_dims=2))) for _ in range(count)]
    grads[0].flat[0] = draw(tst.away_from(0.0, margin=0.1))
    return grads


def flat(grads):
    return np.concatenate([np.ravel(g) for g in grads])


@given(gradient_lists(), st.floats(0.01, 10.0), st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_returns_the_norm_before_clipping_and_obeys_the_bound(
    grads, max_norm, norm_type
):
    params = with_grads(grads)
    originals = [p.grad.data for p in params]
    expected = np.linalg.norm(flat(grads), ord=norm_type)

    total = clip_grad_norm_(params, max_norm, norm_type)

    assert isinstance(total, ts.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    clipped = flat([p.grad.data for p in params])
    assert np.linalg.norm(clipped, ord=norm_type) <= max_norm * (1 + 1e-12)
    coefficient = max_norm / (expected + 1e-6)
    scale = coefficient if coefficient < 1 else 1.0
    np.testing.assert_allclose(clipped, scale * flat(grads), rtol=1e-12, atol=0)
    for p, original, g in zip(params, originals, grads, strict=True):
        np.testing.assert_array_equal(original, g)  # the old arrays are untouched
        assert p.grad.dtype == g.dtype


def test_below_the_bound_nothing_changes():
    params = with_grads([np.array([3.0, 4.0])])
    grad = params[0].grad
    total = clip_grad_norm_(params, max_norm=5.1)
    assert total.item() == 5.0
    assert params[0].grad is grad


def test_clip_to_the_bound_exactly():
    params = with_grads([np.array([3.0, 0.0]), np.array([[4.0]])])
    total = clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == 5.0
    np.testing.assert_allclose(params[0].grad.data, [0.6 / (1 + 2e-7), 0.0], rtol=1e-12)
    np.testing.assert_allclose(params[1].grad.data, [[0.8 / (1 + 2e-7)]], rtol=1e-12)


def test_inf_norm_is_the_largest_magnitude():
    params = with_grads([np.array([1.0, -7.0]), np.array([2.0])])
    total = clip_grad_norm_(params, max_norm=3.5, norm_type=float("inf"))
    assert total.item() == 7.0
    np.testing.assert_allclose(params[0].grad.data, [0.5, -3.5], rtol=1e-6)


def test_float32_gradients_stay_float32():
    params = with_grads([np.array([30.0, 40.0], dtype=np.float32)])
    total = clip_grad_norm_(params, 1.0)
    assert total.dtype == np.float32 and params[0].grad.dtype == np.float32


def test_parameters_without_grad_are_ignored_and_none_gives_zero():
    p, q = Parameter(np.ones(2)), Parameter(np.ones(2))
    q.grad = ts.tensor(np.array([0.0, 2.0]))
    assert clip_grad_norm_([p, q], 1.0).item() == 2.0
    assert p.grad is None
    assert clip_grad_norm_([p], 1.0).item() == 0.0
    assert clip_grad_norm_(q, 10.0).item() == pytest.approx(1.0, rel=1e-5)  # a single tensor


def test_non_finite_norm_follows_pytorch_unless_asked_to_raise():
    params = with_grads([np.array([np.inf, 1.0])])
    total = clip_grad_norm_(params, 1.0)
    assert total.item() == math.inf
    # max_norm / ∞ = 0 multiplies every entry: ∞·0 = NaN, 1·0 = 0 (as torch does).
    assert np.isnan(params[0].grad.data[0]) and params[0].grad.data[1] == 0.0
    params = with_grads([np.array([np.nan, 1.0])])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is nan"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_norm": -1.0}, "max_norm must be ≥ 0, got -1.0"),
        ({"max_norm": 1.0, "norm_type": 0}, "norm_type"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        clip_grad_norm_(with_grads([np.ones(2)]), **kwargs)


@given(gradient_lists(), st.floats(0.0, 2.0))
def test_clip_grad_value_clips_each_entry_without_writing_to_the_old_arrays(grads, clip_value):
    params = with_grads(grads)
    originals = [p.grad.data for p in params]
    clip_grad_value_(params, clip_value)
    for p, original, g in zip(params, originals, grads, strict=True):
        np.testing.assert_array_equal(
            p.grad.data, np.minimum(np.maximum(g, -clip_value), clip_value)
        )
        np.testing.assert_array_equal(original, g)


def test_clip_grad_value_refuses_a_negative_bound():
    with pytest.raises(ValueError, match="clip_value must be ≥ 0, got -0.5"):
        clip_grad_value_(with_grads([np.ones(2)]), -0.5)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 2.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = with_grads(grads)
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for q, g in zip(theirs, grads, strict=True):
        q.grad = torch.tensor(g)
    total = clip_grad_norm_(params, max_norm, norm_type)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(total.item(), torch_total.item(), rtol=1e-12)
    for p, q in zip(params, theirs, strict=True):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12, atol=1e-15)

    params = with_grads(grads)
    clip_grad_value_(params, 0.7)
    for q, g in zip(theirs, grads, strict=True):
        q.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(params, theirs, strict=True):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())
