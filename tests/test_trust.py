"""In-place safety (saved arrays are read-only until backward) and anomaly mode."""

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn, optim
from tinygrad_seq.safety import AnomalyError, SavedTensorModifiedError

# The anomaly tests make NaN and inf on purpose; numpy's warnings about them are expected.
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def leaf(values):
    return ts.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# --------------------------------------------------------------------------- in-place safety


def test_writing_into_a_saved_array_fails_instead_of_corrupting_the_gradient():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()  # mul saved x and w for its backward
    with pytest.raises(ValueError, match="read-only"):
        x.data[...] = 5.0
    y.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 2.0])  # computed from the true x
    x.data[...] = 5.0  # after backward the array is free again


def test_a_view_of_a_saved_tensor_is_protected_through_its_base():
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = (x[0] * 2.0).sum() + (x.tanh()).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[0, 0] = 9.0
    y.backward()
    x.data[0, 0] = 9.0


def test_an_optimizer_step_between_forward_and_backward_is_caught_in_backward():
    layer = nn.Linear(2, 1, dtype=np.float64)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(ts.tensor(np.ones((3, 2)))).sum()
    layer.weight.grad = ts.tensor(np.ones((1, 2)))
    before = layer.weight.data.copy()
    opt.step()  # allowed, as in PyTorch: the graph that saved the weight is now stale
    assert not np.array_equal(layer.weight.data, before)
    stale = r"\(1, 2\) saved by 'linear'.*expected version"
    with pytest.raises(SavedTensorModifiedError, match=stale):
        loss.backward()


def test_library_in_place_operations_respect_saved_arrays():
    x = leaf([1.0, -1.0])
    y = (x.exp() * x).sum()
    with pytest.raises(RuntimeError, match="zero_: a leaf tensor that requires grad"):
        x.zero_()
    nn.init.constant_(x, 0.0)  # initialisers write as under no_grad, and count
    with pytest.raises(SavedTensorModifiedError, match="'mul'"):
        y.backward()
    with ts.no_grad():
        x.zero_()
    x.detach_()  # changes no data: always allowed
    np.testing.assert_array_equal(x.data, [0.0, 0.0])


def test_load_state_dict_and_to_while_a_graph_holds_the_weights():
    layer = nn.Linear(2, 2, dtype=np.float64)
    state = layer.state_dict()
    out = layer(ts.tensor(np.ones((1, 2)))).sum()
    layer.load_state_dict({k: v * 2 for k, v in state.items()})
    np.testing.assert_array_equal(layer.weight.data, state["weight"] * 2)
    layer.float()
    assert layer.weight.dtype == np.float32
    with pytest.raises(SavedTensorModifiedError, match="'linear'"):
        out.backward()


def test_plus_equals_is_in_place_and_backward_through_the_old_value_raises():
    x = leaf([1.0, 2.0])
    z = x * 1.0
    alias = z
    y = (z * z).sum()
    z += 1.0  # in place, as in PyTorch: the saved z changed
    assert z is alias
    with pytest.raises(SavedTensorModifiedError, match="'mul'"):
        y.backward()
    w = x * 1.0
    w += 1.0  # nothing saved w: the gradient flows through the in-place op
    (w * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_protection_is_counted_per_graph_and_released_by_backward_or_deletion():
    x = leaf([1.0, 2.0])
    first = (x * x).sum()
    second = (x * 2.0).sum()
    first.backward()
    assert not x.data.flags.writeable  # still saved by the second graph
    del second
    assert x.data.flags.writeable
    third = (x * 3.0).sum()
    third.backward(retain_graph=True)
    assert not x.data.flags.writeable  # a retained graph can backpropagate again
    del third
    assert x.data.flags.writeable


def test_arrays_that_were_read_only_before_stay_read_only():
    frozen = np.array([1.0, 2.0])
    frozen.flags.writeable = False
    x = ts.from_numpy(frozen, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert not frozen.flags.writeable


def test_no_grad_records_nothing_and_protects_nothing():
    x = leaf([1.0])
    with ts.no_grad():
        y = x * x
    x.data[...] = 2.0
    assert y.item() == 1.0


# --------------------------------------------------------------------------- anomaly mode


def test_anomaly_mode_names_the_forward_op_the_line_and_the_shapes():
    x = leaf([1.0, 0.0, 2.0])
    with ts.detect_anomaly(), pytest.raises(AnomalyError) as error:
        (x.log() * 2).sum()
    message = str(error.value)
    assert "'log' produced NaN or inf in its forward pass" in message
    assert "(3,)" in message
    assert "test_trust.py:" in message  # the user's line, not the library's


def test_anomaly_mode_finds_the_backward_step_that_makes_nan():
    x = leaf([0.0, 4.0])
    with ts.detect_anomaly():
        y = x.sqrt().sum()  # finite forward, infinite derivative at 0
        with pytest.raises(AnomalyError, match=r"backward pass of 'sqrt'.*test_trust.py:"):
            y.backward()


def test_anomaly_mode_blames_the_op_that_made_nan_not_those_that_pass_it_on():
    x = leaf([-1.0])
    with ts.detect_anomaly(), pytest.raises(AnomalyError, match="'sqrt'"):
        (x.sqrt() + 1.0).exp()


def test_anomaly_mode_is_off_by_default_and_restored():
    x = leaf([0.0])
    with np.errstate(divide="ignore"):
        y = x.log()  # no error: off
    assert np.isneginf(y.item())
    with pytest.raises(AnomalyError), ts.detect_anomaly():
        x.log()
    with np.errstate(divide="ignore"):
        x.log()  # off again after the error


def test_finite_computations_pass_anomaly_mode_untouched():
    rng = np.random.default_rng(0)
    model = nn.LSTM(3, 4, dtype=np.float64, rng=rng)
    with ts.detect_anomaly():
        out, _ = model(ts.tensor(rng.standard_normal((5, 2, 3))))
        out.sum().backward()
    assert all(np.isfinite(p.grad.data).all() for p in model.parameters())


# --------------------------------------------------------------------------- review findings


def test_index_arrays_and_masks_reused_before_backward_do_not_change_the_gradient():
    w = leaf(np.arange(6.0).reshape(3, 2))
    index = np.array([0, 1])
    loss = (ts.functional.embedding(index, w) ** 2).sum()
    index[:] = 2  # the caller reuses its index buffer
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [[0.0, 2.0], [4.0, 6.0], [0.0, 0.0]])
    a, condition = leaf([1.0, 2.0]), np.array([True, False])
    y = ts.where(condition, a, 0.0)
    condition[:] = False
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 0.0])


def test_leaves_that_are_views_of_one_buffer_are_all_writable_again_after_backward():
    flat = np.ones(6)
    first = ts.from_numpy(flat[:3], requires_grad=True)
    second = ts.from_numpy(flat[3:], requires_grad=True)
    loss = (first * first).sum() + (second * second).sum()
    loss.backward()
    del loss
    assert first.data.flags.writeable and second.data.flags.writeable and flat.flags.writeable
    optim.SGD([first, second], lr=0.5).step()
    np.testing.assert_array_equal(flat, 0.0)


def test_create_graph_gradients_share_no_memory_with_each_other_or_the_seed():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = np.ones(2)
    (x + y).backward(seed, create_graph=True)
    assert not np.shares_memory(x.grad.data, y.grad.data)
    assert not np.shares_memory(x.grad.data, seed)
    gx, gy = ts.grad(x * 1.0 + y, [x, y], grad_outputs=seed, create_graph=True)
    assert gx is not gy and not np.shares_memory(gx.data, gy.data)


def test_grad_runs_only_the_part_of_the_graph_that_leads_to_its_inputs():
    lstm = nn.LSTM(3, 4)  # fused: its backward cannot be differentiated again
    w = leaf([1.0, -2.0, 0.5])
    out, _ = lstm(ts.randn(5, 2, 3))
    (gw,) = ts.grad((w * w).sum() + out.sum(), w, create_graph=True)
    np.testing.assert_array_equal(gw.data, 2 * w.data)
    x = leaf([1.0, 2.0])
    h = x * x
    (gh,) = ts.grad((h * 3.0).sum(), h)
    np.testing.assert_array_equal(gh.data, [3.0, 3.0])
    h.sum().backward()  # the part below h was neither run nor released
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_powers_at_zero_have_pytorchs_finite_gradients():
    x = leaf([0.0, 1.0])
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    a, b = leaf([0.0, 2.0]), leaf([2.0, 3.0])
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.0, 12.0])
    np.testing.assert_allclose(b.grad.data, [0.0, 8 * np.log(2.0)])
