"""Mutation has PyTorch's semantics: in-place ops, version counters, read-only saved arrays.

Each test here failed before tensors had version counters: an in-place change either was
not in place (``+=`` rebound the name), or made a gradient silently wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.safety import SavedTensorModifiedError
from tinygrad_seq.testing import gradcheck


def leaf(values, **kwargs):
    return ts.tensor(np.asarray(values, dtype=np.float64), requires_grad=True, **kwargs)


# --------------------------------------------------------------------------- in place


@pytest.mark.parametrize(
    "update, expected",
    [
        (lambda t: t.__iadd__(2.0), [3.0, 4.0]),
        (lambda t: t.__isub__(2.0), [-1.0, 0.0]),
        (lambda t: t.__imul__(2.0), [2.0, 4.0]),
        (lambda t: t.__itruediv__(2.0), [0.5, 1.0]),
        (lambda t: t.add_(ts.tensor([1.0, 1.0]), alpha=3), [4.0, 5.0]),
        (lambda t: t.sub_(1.0), [0.0, 1.0]),
        (lambda t: t.mul_(3.0), [3.0, 6.0]),
        (lambda t: t.div_(4.0), [0.25, 0.5]),
        (lambda t: t.fill_(7.0), [7.0, 7.0]),
        (lambda t: t.copy_(ts.tensor([5.0, 6.0])), [5.0, 6.0]),
        (lambda t: t.clamp_(1.5, 1.8), [1.5, 1.8]),
        (lambda t: t.zero_(), [0.0, 0.0]),
    ],
)
def test_in_place_ops_change_the_tensor_itself(update, expected):
    t = ts.tensor([1.0, 2.0])
    array, version = t.data, t._version
    assert update(t) is t
    assert t.data is array  # the same memory: views and aliases see the change
    np.testing.assert_allclose(t.data, expected)
    assert t._version == version + 1


def test_augmented_assignment_keeps_the_object_and_its_aliases():
    t = ts.tensor([1.0, 2.0])
    alias, view = t, t.detach()
    t += 1
    assert t is alias
    np.testing.assert_array_equal(view.data, [2.0, 3.0])
    assert view._version == t._version == 1


def test_setitem_with_basic_integer_and_mask_indices():
    t = ts.zeros(3, 4)
    t[0] = 1.0
    t[[1, 2], [0, 3]] = ts.tensor([2.0, 3.0])
    t[t.data < 0.5] = 0.25
    expected = np.full((3, 4), 0.25, dtype=np.float32)
    expected[0] = 1.0
    expected[1, 0], expected[2, 3] = 2.0, 3.0
    np.testing.assert_array_equal(t.data, expected)
    assert t._version == 3


def test_setitem_in_a_graph_sends_gradients_to_the_value_and_the_rest():
    def f(x, v):
        y = x * 2
        y[1:, ::2] = v.tanh()
        return (y * y).sum()

    rng = np.random.default_rng(0)
    assert gradcheck(f, [leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal(2))])


def test_a_chain_of_in_place_ops_matches_finite_differences():
    def f(x, w):
        h = x * 1
        h *= w
        h += x.tanh()
        h.div_(w * w + 1)
        h[0] = x[0] * 3
        h.clamp_(-5, 5)
        return h.sum()

    rng = np.random.default_rng(1)
    assert gradcheck(f, [leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal(3))])


def test_in_place_on_an_integer_tensor_refuses_float_values():
    t = ts.tensor([1, 2])
    with pytest.raises(TypeError, match="add_: cannot write float"):
        t += 0.5


def test_in_place_refuses_a_result_of_another_shape():
    t = ts.zeros(3)
    with pytest.raises(ValueError, match=r"add_: the result has shape \(2, 3\)"):
        t.add_(ts.zeros(2, 3))


def test_in_place_on_a_broadcast_view_is_a_clear_error():
    t = ts.zeros(3).expand(2, 3)
    with pytest.raises(ValueError, match="broadcast view.*clone"):
        t.add_(1.0)


# --------------------------------------------------------------------------- leaves


def test_in_place_on_a_leaf_that_requires_grad_is_refused_while_recording():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*no_grad"):
        w -= 0.1
    with pytest.raises(RuntimeError, match="leaf"):
        w[0] = 3.0
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_the_lectures_update_rule_trains_a_model():
    rng = np.random.default_rng(2)
    x = ts.tensor(rng.standard_normal((64, 3)))
    y = ts.tensor(x.data @ np.array([[1.5], [-2.0], [0.5]], dtype=np.float32))
    model = nn.Linear(3, 1)
    weight = model.weight
    losses = []
    for _ in range(100):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with ts.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert model.weight is weight and weight.grad_fn is None and weight.requires_grad
    assert losses[-1] < 1e-3 * losses[0]


# --------------------------------------------------------------------------- versions


def test_backward_after_an_in_place_change_of_a_saved_input_names_everything():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = (h * h).sum()  # mul saves h
    h.add_(1.0)
    with pytest.raises(SavedTensorModifiedError) as error:
        y.backward()
    message = str(error.value)
    for part in ("'mul'", "(2,)", "version 1", "expected version 0", "out-of-place", ".clone()"):
        assert part in message


def test_backward_after_zero_of_a_saved_output_raises():
    a = leaf([0.5, 1.0])
    b = a.exp()  # exp saves its output
    loss = b.sum()
    b.zero_()
    with pytest.raises(SavedTensorModifiedError, match="'exp'"):
        loss.backward()


def test_detach_shares_the_version_counter():
    a = leaf([0.5, 1.0])
    b = a.exp()
    loss = b.sum()
    b.detach().zero_()
    with pytest.raises(SavedTensorModifiedError):
        loss.backward()


def test_numpy_writes_into_a_saved_intermediate_are_refused():
    a = leaf([0.5, 1.0])
    b = a.exp()
    loss = b.sum()
    with pytest.raises(ValueError, match="read-only"):
        b.data[...] = 0
    with pytest.raises(ValueError, match="read-only"):
        b.numpy()[0] = 0
    loss.backward()
    np.testing.assert_allclose(a.grad.data, np.exp([0.5, 1.0]))
    with pytest.raises(ValueError, match="read-only"):
        b.data[...] = 0  # a result made in a graph stays read-only to numpy
    b.detach().zero_()  # the library's own writes still work (and are counted)
    np.testing.assert_array_equal(b.data, [0.0, 0.0])


def test_numpy_writes_into_a_saved_leaf_are_refused():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 5
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])


def test_a_change_through_a_view_is_caught_where_the_view_is_used():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    z = y[:2]  # a view of y's memory
    y.mul_(3)  # z's values change too; z's graph does not know
    loss = z.sum()
    with pytest.raises(SavedTensorModifiedError, match="getitem"):
        loss.backward()


def test_a_change_through_a_view_is_caught_after_the_view_and_its_base_are_gone():
    # The view's memory may be freed before backward (nothing but the graph is left, and the
    # graph does not keep arrays it did not save): the change must still be seen.
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    z = y[:2]
    y.mul_(3)
    loss = (z + 1.0).sum()  # reads z's changed values; add saves neither input
    del y, z
    with pytest.raises(SavedTensorModifiedError, match="getitem"):
        loss.backward()


def test_in_place_on_a_view_inside_a_graph_says_what_to_write():
    x = leaf([1.0, 2.0])
    y = (x * 2)[:1]
    with pytest.raises(RuntimeError, match="view.*out of place"):
        y.add_(1.0)


def test_fused_rnn_output_zeroed_through_detach_raises_in_backward():
    rnn = nn.RNN(3, 4)
    out, h = rnn(ts.randn(5, 2, 3))
    loss = out.sum()
    out.detach().zero_()
    with pytest.raises(SavedTensorModifiedError):
        loss.backward()


# --------------------------------------------------------------------------- the library's writes


def _saved_weight_graph():
    model = nn.Linear(2, 2)
    loss = model(ts.randn(4, 2)).sum()
    return model, loss


@pytest.mark.parametrize(
    "change",
    [
        lambda m: nn.init.zeros_(m.weight),
        lambda m: m.load_state_dict({k: v + 1 for k, v in m.state_dict().items()}),
        lambda m: m.double(),
        lambda m: ts.optim.SGD(m.parameters(), lr=0.1).step(),
    ],
    ids=["init", "load_state_dict", "to", "optimizer"],
)
def test_every_library_write_bumps_the_version(change):
    model, loss = _saved_weight_graph()
    model.weight.grad = ts.ones(2, 2)
    model.bias.grad = ts.ones(2)
    before = model.weight._version
    change(model)  # allowed while a live graph saved the weight, as in PyTorch
    assert model.weight._version > before
    with pytest.raises(SavedTensorModifiedError):
        loss.backward()


def test_an_optimizer_steps_while_a_logged_prediction_holds_the_graph():
    model = nn.Linear(2, 1)
    opt = ts.optim.Adam(model.parameters(), lr=0.1)
    x = ts.randn(8, 2)
    kept = model(x)  # a prediction kept for logging: its graph saved the weight
    for _ in range(3):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    with pytest.raises(SavedTensorModifiedError):
        kept.sum().backward()


# --------------------------------------------------------------------------- operands


def test_a_numpy_operand_is_copied_not_locked():
    a = np.array([1.0, 2.0])
    x = leaf([3.0, 4.0])
    loss = (x * a).sum()
    a[0] = 100.0  # the user's array stays theirs, writable
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0])


def test_from_numpy_shares_memory_and_locks_while_saved():
    a = np.array([1.0, 2.0])
    x = ts.from_numpy(a)
    assert np.shares_memory(x.data, a)
    w = leaf([3.0, 4.0])
    loss = (x * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 5.0
    loss.backward()
    a[0] = 5.0
    assert x.data[0] == 5.0


def test_backward_twice_through_a_released_graph_is_still_a_clear_error():
    x = leaf([1.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_clip_keeps_the_bounds_it_was_given_when_they_change_in_place_later():
    """A bound passed as a Tensor (or array) decides where the gradient passes; changed in
    place before backward, it used to move that mask: silently wrong (PyTorch raises)."""
    x = leaf([0.0, 1.0, 2.0, 3.0])
    low = ts.tensor([0.5, 0.5, 2.5, 2.5], dtype=np.float64)
    high = np.array([9.0, 9.0, 9.0, 2.9])
    y = x.clip(low, high)
    low.add_(-10.0)
    high[...] = 0.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0, 0.0])


def test_np_array_of_a_tensor_is_a_snapshot():
    """``np.array(t)`` copies (numpy's copy=True, and what a torch tensor gives); the
    tensor's own array is ``np.asarray(t)`` or ``t.numpy()``."""
    t = ts.tensor([1.0, 2.0])
    snapshot, as_float64 = np.array(t), np.array(t, dtype=np.float64)
    t.add_(1.0)
    np.testing.assert_array_equal(snapshot, [1.0, 2.0])
    np.testing.assert_array_equal(as_float64, [1.0, 2.0])
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float32) is t.data
