"""The engine's contract: accumulation, retain/release, grad(), grad mode, higher order, errors."""

import gc
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq.autograd import Function
from tinygrad_seq.testing import gradcheck


def leaf(values, dtype=np.float64):
    return ts.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# --------------------------------------------------------------------------- backward basics


def test_leaf_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data + 3)


def test_diamond_graph_sums_both_paths():
    x = leaf([0.5, -1.5])
    y = x.tanh()
    z = (y * y + y.exp()).sum()
    z.backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, (2 * t + np.exp(t)) * (1 - t * t), rtol=1e-12)


def test_gradient_of_a_sum_of_losses_is_the_sum_of_gradients():
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((3, 4)))
    x = ts.tensor(rng.standard_normal((5, 3)))
    losses = [((x @ w).tanh() * float(k + 1)).sum() for k in range(3)]
    (losses[0] + losses[1] + losses[2]).backward()
    together = w.grad.data.copy()
    w.grad = None
    for k in range(3):
        ((x @ w).tanh() * float(k + 1)).sum().backward()
    np.testing.assert_allclose(w.grad.data, together, rtol=1e-12)


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match=r"backward: output 0 has shape \(1, 2\), not a scalar"):
        (x * 2).backward()


def test_gradient_of_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(3,\).*output has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ts.tensor([1.0]).sum().backward()


def test_upstream_gradient_is_used_not_assumed_ones():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, -2.0, 0.5]))
    np.testing.assert_array_equal(x.grad.data, [2.0, -8.0, 3.0])


def test_leaf_gradients_never_share_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = np.array([0.5, -1.0])
    (a + b).backward(seed)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, seed)
    a.grad.data *= 10  # an in-place update of one gradient leaves the other alone
    np.testing.assert_array_equal(b.grad.data, seed)


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, -2.0])
    y = x * 3.0
    y.retain_grad()
    z = x * 4.0
    (y * y + z).sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)
    assert z.grad is None


def test_second_backward_through_a_released_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.tanh() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_saved_arrays_are_released_after_backward():
    x = leaf(np.ones((4, 4)))
    y = x.tanh()
    node = y.grad_fn
    assert node.out_data is not None
    y.sum().backward()
    assert node.out_data is None


def test_graph_is_freed_once_the_output_is_dropped():
    x = leaf(np.ones(3))
    y = ((x * 2).tanh() * x).sum()
    node_ref = weakref.ref(y.grad_fn)
    inner_ref = weakref.ref(y.grad_fn.parents[0])
    y.backward()
    del y
    gc.disable()  # freed by reference counting alone: no cycles through outputs
    try:
        assert node_ref() is None
        assert inner_ref() is None
    finally:
        gc.enable()


def test_functions_hold_their_output_weakly():
    x = leaf(np.ones(3))
    with ts.autograd.keep_outputs():
        y = x.exp()
    z = x.exp()
    assert y.grad_fn.result() is y
    assert z.grad_fn.result() is None  # not linked outside keep_outputs: no weak reference
    z.name = "z"  # naming links it
    assert z.grad_fn.result() is z
    node, other = y.grad_fn, z.grad_fn
    del y, z
    assert node.result() is None and other.result() is None


# --------------------------------------------------------------------------- a long chain


class _CountingTanh(Function):
    """tanh that counts how often the engine calls its backward (for the linearity test)."""

    name = "counting_tanh"
    save_inputs = False
    save_output = True
    calls = 0

    def forward(self, x):
        return np.tanh(x)

    def backward(self, g):
        type(self).calls += 1
        y = self.output()
        return (g * (1 - y * y),)


def test_a_10000_step_recurrence_backpropagates_visiting_each_node_once():
    rng = np.random.default_rng(1)
    w = leaf(rng.standard_normal((4, 4)) * 0.3)
    h = ts.zeros(1, 4, dtype=np.float64)
    x = ts.tensor(rng.standard_normal((10_000, 1, 4)) * 0.1)
    _CountingTanh.calls = 0
    for t in range(10_000):
        h = _CountingTanh.apply(h @ w + x[t])
    h.sum().backward()  # no RecursionError
    assert _CountingTanh.calls == 10_000
    assert np.isfinite(w.grad.data).all()


# --------------------------------------------------------------------------- grad()


def test_grad_returns_gradients_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    (gx,) = ts.grad((x**3).sum(), x)
    np.testing.assert_allclose(gx.data, 3 * x.data**2)
    assert x.grad is None


def test_grad_of_an_intermediate_tensor():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    (gy,) = ts.grad((y * y).sum(), y)
    np.testing.assert_allclose(gy.data, 2 * y.data)


def test_grad_unused_input_is_an_error_unless_allowed():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="input 1.*not used.*allow_unused=True"):
        ts.grad((x * 2).sum(), [x, unused])
    x2 = leaf([1.0])
    gx, gu = ts.grad((x2 * 2).sum(), [x2, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(gx.data, [2.0])


def test_grad_of_several_outputs_with_upstream_gradients():
    x = leaf([1.0, 2.0])
    a, b = x * 2.0, x * x
    (gx,) = ts.grad([a, b], x, grad_outputs=[np.array([1.0, 1.0]), np.array([3.0, -1.0])])
    np.testing.assert_allclose(gx.data, [2 + 3 * 2, 2 - 2 * 2])


@pytest.mark.parametrize(
    ("make", "second"),
    [
        (lambda x: x.tanh(), lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2)),
        (lambda x: x**3, lambda v: 6 * v),
        (
            lambda x: x.sigmoid(),
            lambda v: (s := 1 / (1 + np.exp(-v))) * (1 - s) * (1 - 2 * s),
        ),
        (lambda x: x.exp(), np.exp),
        (lambda x: x.log(), lambda v: -1 / v**2),
        (lambda x: x.sqrt(), lambda v: -0.25 * v**-1.5),
    ],
    ids=["tanh", "cube", "sigmoid", "exp", "log", "sqrt"],
)
def test_create_graph_gives_known_second_derivatives(make, second):
    values = np.array([0.3, 1.1, 2.0])
    x = leaf(values)
    (g,) = ts.grad(make(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (gg,) = ts.grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, second(values), rtol=1e-10)


def test_hessian_vector_product_through_matmul():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 3))
    x = leaf(rng.standard_normal(3))
    f = (x @ ts.tensor(a) * x).sum()  # xᵀAx: Hessian A + Aᵀ
    (g,) = ts.grad(f, x, create_graph=True)
    v = rng.standard_normal(3)
    (hv,) = ts.grad((g * ts.tensor(v)).sum(), x)
    np.testing.assert_allclose(hv.data, (a + a.T) @ v, rtol=1e-12)


def test_backward_with_create_graph_leaves_a_differentiable_grad():
    x = leaf([0.5, 1.5])
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (gg,) = ts.grad(x.grad.sum(), x)
    np.testing.assert_allclose(gg.data, 6 * x.data)


# --------------------------------------------------------------------------- grad mode


def test_no_grad_builds_no_graph():
    x = leaf([1.0])
    with ts.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert ts.is_grad_enabled()


def test_no_grad_as_decorator_and_enable_grad_inside():
    x = leaf([1.0])

    @ts.no_grad()
    def update():
        assert not ts.is_grad_enabled()
        with ts.enable_grad():
            inner = x * 2
        return x * 2, inner

    outer, inner = update()
    assert outer.grad_fn is None
    assert inner.grad_fn is not None
    assert ts.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context():
    with ts.set_grad_enabled(False):
        assert not ts.is_grad_enabled()
    assert ts.is_grad_enabled()
    ts.set_grad_enabled(False)
    try:
        assert not ts.is_grad_enabled()
    finally:
        ts.set_grad_enabled(True)
    assert ts.is_grad_enabled()


def test_set_grad_enabled_can_be_used_again_and_as_a_decorator():
    switch = ts.set_grad_enabled(False)
    with switch:
        assert not ts.is_grad_enabled()
    assert ts.is_grad_enabled()
    with switch:  # a second use restores the same mode
        pass
    assert ts.is_grad_enabled()

    @ts.set_grad_enabled(False)
    def inside():
        return ts.is_grad_enabled()

    assert ts.is_grad_enabled() and not inside() and ts.is_grad_enabled()


def test_grad_mode_is_restored_after_an_error_inside_no_grad():
    with pytest.raises(ZeroDivisionError), ts.no_grad():
        raise ZeroDivisionError
    assert ts.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


def test_detach_in_place():
    x = leaf([1.0])
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad


def test_requires_grad_flags():
    x = ts.tensor([1.0])
    assert x.is_leaf and not x.requires_grad
    x.requires_grad_()
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad_(False)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_and_bool_tensors_cannot_require_grad(dtype):
    with pytest.raises(TypeError, match=f"requires_grad: only floating-point.*{np.dtype(dtype)}"):
        ts.tensor(np.zeros(3, dtype=dtype), requires_grad=True)


def test_comparisons_give_bool_tensors_without_graph():
    x = leaf([1.0, 2.0])
    mask = x > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal(mask.data, [False, True])


# --------------------------------------------------------------------------- dtypes


def test_default_dtypes():
    assert ts.tensor([1.0, 2.0]).dtype == np.float32
    assert ts.tensor([1, 2]).dtype == np.int64
    assert ts.randn(2, 3).dtype == np.float32
    assert ts.zeros(2).dtype == np.float32
    assert ts.tensor(np.zeros(2)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_keep_the_dtype(dtype):
    x = ts.tensor(np.ones(3, dtype=dtype), requires_grad=True)
    for y in (x * 2.5, 2.5 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x**2, 2.0**x):
        assert y.dtype == dtype
    (x * 2.5).sum().backward()
    assert x.grad.dtype == dtype


def test_mixed_precision_gradients_come_back_in_each_inputs_dtype():
    a = ts.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = ts.tensor(np.ones(3, dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


# --------------------------------------------------------------------------- ties and edges


def test_max_ties_share_the_gradient_equally():
    x = leaf([1.0, 3.0, 3.0, 0.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.5, 0.5, 0.0])


def test_min_ties_along_an_axis_share_the_gradient_equally():
    x = leaf([[2.0, 2.0, 2.0], [1.0, 5.0, 1.0]])
    x.min(axis=1).backward(np.array([3.0, 1.0]))
    np.testing.assert_allclose(x.grad.data, [[1.0, 1.0, 1.0], [0.5, 0.0, 0.5]])


def test_maximum_ties_split_between_the_inputs():
    a, b = leaf([1.0, 2.0]), leaf([1.0, 0.0])
    a.maximum(b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 0.0])


def test_kink_conventions():
    x = leaf([0.0, 0.0])
    (x.relu() + x.abs()).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    y = leaf([-1.0, 1.0, 0.5])
    y.clip(-1.0, 1.0).sum().backward()  # the bounds themselves pass the gradient
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0, 1.0])


def test_repeated_indices_accumulate():
    x = leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [7.0, 0.0, 3.0])


def test_large_logits_stay_finite_without_warnings():
    logits = leaf([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = [
            logits.sigmoid().sum(),
            logits.log_softmax(axis=1).sum(),
            logits.logsumexp(axis=1).sum(),
            ts.functional.cross_entropy(logits, np.array([1, 0])),
        ]
        for part in parts:
            assert np.isfinite(part.data).all()
            part.backward()
            assert np.isfinite(logits.grad.data).all()
            logits.grad = None


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("action", "error", "pattern"),
    [
        (lambda: ts.ones(3) + ts.ones(4), ValueError, r"add: .*\(3,\), \(4,\)"),
        (lambda: ts.ones(3, 4) @ ts.ones(5, 6), ValueError, r"matmul: \(3, 4\) @ \(5, 6\): inner"),
        (lambda: ts.ones(()) @ ts.ones(3), ValueError, "matmul: .*at least one dimension"),
        (lambda: ts.cat([ts.ones(2, 3), ts.ones(2, 4)], axis=0), ValueError, r"cat: .*\(2, 4\)"),
        (lambda: ts.ones(2, 3).reshape(4), ValueError, r"reshape: .*size 6.*\(4,\)"),
        (lambda: ts.ones(2, 3).sum(axis=2), (IndexError, ValueError), r"sum: axis 2.*\(2, 3\)"),
        (lambda: ts.ones(2, 3).transpose(0, 5), IndexError, r"transpose: axis 5.*\(2, 3\)"),
        (lambda: ts.ones(3)[5], IndexError, r"getitem: index 5 .*\(3,\)"),
        (lambda: ts.ones(2).unsqueeze(4), IndexError, "unsqueeze: axis 4"),
        (lambda: ts.stack([ts.ones(2), ts.ones(3)]), ValueError, r"stack: .*\(2,\), \(3,\)"),
        (lambda: ts.ones(2, 3).squeeze(1), ValueError, "squeeze: axis 1 has size 3"),
        (lambda: ts.ones(4).split([1, 2]), ValueError, r"split: sizes \[1, 2\] do not add up to 4"),
    ],
)
def test_bad_input_names_the_op_and_the_shapes(action, error, pattern):
    with pytest.raises(error, match=pattern):
        action()


def test_a_retained_tensor_made_a_leaf_keeps_its_leaf_gradient():
    # y retains its gradient as the result of x * 2, then becomes a leaf of its own (detach_):
    # the graph reaches it both ways, and the leaf's gradient is the one .grad holds.
    x = leaf(np.array([1.0, 2.0]))
    y = x * 2
    u = y + 1  # the node of y stays in the graph through u
    y.retain_grad()
    y.detach_().requires_grad_(True)
    (u + y * 3).sum().backward()
    np.testing.assert_array_equal(y.grad.data, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


# --------------------------------------------------------------------------- review fixes


def test_pow_exponent_gradient_at_a_zero_base_is_pytorchs():
    a = ts.tensor([0.0, 0.0, 0.0], dtype=np.float64, requires_grad=True)
    b = ts.tensor([-1.5, 0.0, 2.0], dtype=np.float64, requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [-np.inf, 0.0, 0.0])
    assert a.grad.data[1] == 0.0 and a.grad.data[2] == 0.0


def test_pow_mixed_second_derivative_is_symmetric_where_the_exponent_is_zero():
    a = ts.tensor(0.75, dtype=np.float64, requires_grad=True)
    b = ts.tensor(0.0, dtype=np.float64, requires_grad=True)
    grad_a, grad_b = ts.grad(a**b, [a, b], create_graph=True)
    (ab,) = ts.grad(grad_a, b)
    (ba,) = ts.grad(grad_b, a)
    np.testing.assert_allclose([ab.item(), ba.item()], [1 / 0.75, 1 / 0.75], rtol=1e-14)


def _second_derivative(x):
    """f'' for f(x) = (x² + 0.5)^x, in closed form: f = e^u, u = x·ln(x² + 0.5)."""
    q = x * x + 0.5
    u1 = np.log(q) + 2 * x * x / q
    u2 = 2 * x / q + (4 * x * q - 4 * x**3) / q**2
    return q**x * (u1 * u1 + u2)


@pytest.mark.parametrize("at", [1.0, 0.5, 1.7])
def test_pow_second_and_third_derivatives_where_the_exponent_meets_one(at):
    x = ts.tensor(at, dtype=np.float64, requires_grad=True)
    (g1,) = ts.grad((x * x + 0.5) ** x, x, create_graph=True)
    (g2,) = ts.grad(g1, x, create_graph=True)
    (g3,) = ts.grad(g2, x)
    np.testing.assert_allclose(g2.item(), _second_derivative(at), rtol=1e-12)
    h = 1e-5
    third = (_second_derivative(at + h) - _second_derivative(at - h)) / (2 * h)
    np.testing.assert_allclose(g3.item(), third, rtol=1e-8)


def test_linear_accepts_a_bias_of_shape_one_by_out():
    rng = np.random.default_rng(3)
    x = leaf(rng.standard_normal((4, 3)))
    w = leaf(rng.standard_normal((2, 3)))
    b = leaf(rng.standard_normal((1, 2)))
    assert gradcheck(lambda x, w, b: ts.functional.linear(x, w, b), [x, w, b])
    assert b.grad is None  # gradcheck uses ts.grad
    ts.functional.linear(x, w, b).sum().backward()
    assert b.grad.shape == (1, 2)


def test_grad_mode_is_per_thread():
    import threading

    errors: list[str] = []
    stop = threading.Event()

    def toggle():
        for _ in range(3000):
            with ts.no_grad():
                if ts.is_grad_enabled():
                    errors.append("grad enabled inside no_grad")
        stop.set()

    def train():
        w = leaf([0.5, -0.25])
        steps = 0
        while not stop.is_set() or steps < 200:
            loss = (w * w).sum()
            if not loss.requires_grad:
                errors.append("a step recorded no graph")
                break
            loss.backward()
            steps += 1

    threads = [threading.Thread(target=toggle) for _ in range(2)]
    threads.append(threading.Thread(target=train))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert ts.is_grad_enabled()


def test_a_backward_returning_the_wrong_number_of_gradients_is_named():
    class Twice(ts.Function):
        name = "twice"

        def forward(self, x):
            return 2 * x

        def backward(self, g, x):
            return g * 2, g

    with pytest.raises(
        TypeError, match=r"twice.backward must return a tuple .* \(1 here\), got tuple of length 2"
    ):
        Twice.apply(leaf([1.0])).sum().backward()


def test_a_backward_returning_a_bare_array_is_named_by_its_class_with_the_shape():
    class Softsign(ts.Function):  # no name of its own: the class's name is the op's
        def forward(self, x):
            return x / (1 + np.abs(x))

        def backward(self, g, x):
            return g / (1 + np.abs(x)) ** 2  # forgot the tuple

    x = leaf(np.ones((2, 3)))
    y = Softsign.apply(x)
    assert y.grad_fn.name == "Softsign"
    with pytest.raises(TypeError) as caught:
        y.sum().backward()
    message = str(caught.value)
    assert "\n" not in message and "array(" not in message
    assert message.endswith("got ndarray of shape (2, 3)")
    assert message.startswith("Softsign.backward must return a tuple")


def test_the_engine_stays_a_page_and_each_op_has_one_derivative():
    # autograd.py is read in one sitting (at most 300 lines); every op's derivative is its
    # one `backward`, run on arrays or on Tensors: no second form beside it.
    import inspect

    from tinygrad_seq import autograd, ops
    from tinygrad_seq.kernels import gru, lstm, rnn, sequence

    assert len(inspect.getsource(autograd).splitlines()) <= 300
    modules = (ops, gru, lstm, rnn, sequence)
    classes = [c for m in modules for c in vars(m).values() if inspect.isclass(c)]
    functions = [c for c in classes if issubclass(c, autograd.Function)]
    assert len(functions) > 20
    for cls in functions:
        derivatives = [n for n in vars(cls) if n.startswith("backward") or n.endswith("backward")]
        assert derivatives in ([], ["backward"]), (cls.__name__, derivatives)
