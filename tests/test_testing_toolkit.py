"""The gradient-testing toolkit proves itself: it catches deliberately wrong ops, passes
correct ones, and its strategies generate what they promise.

Each wrong op below is a :class:`Function` with exactly one bug, and the test asserts which
check reports it — a toolkit that only said "something is off" would teach nothing.
"""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq.autograd import Function
from tinygrad_seq.testing import (
    GradcheckError,
    assert_grads_close,
    gradcheck,
    gradgradcheck,
    load_profile,
    numerical_grad,
)
from tinygrad_seq.testing import strategies as tst
from tinygrad_seq.testing.profiles import ENV_VAR, PROFILES


def leaf(values, requires_grad=True):
    return ts.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


X = [0.3, -0.7, 1.2]


# --------------------------------------------------------------------------- wrong ops


class SquareMissingFactor(Function):
    """y = x²; backward forgets the 2: ∂L/∂x = g·x."""

    name = "square_missing_factor"

    def forward(self, x):
        return x * x

    def backward(self, g, x):
        return (g * x,)


class TanhIgnoresUpstream(Function):
    """y = tanh x; backward returns 1 − y², dropping g (correct only for g = 1)."""

    name = "tanh_ignores_upstream"
    save_inputs = False
    save_output = True

    def forward(self, x):
        return np.tanh(x)

    def backward(self, g):
        y = self.output()
        return (1 - y * y,)


class DoubleSquaresUpstream(Function):
    """y = 2x; backward uses g² — zero in gives zero out, but it is not linear."""

    name = "double_squares_upstream"
    save_inputs = False

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return (g * g * 2,)


class DoubleWritesInput(Function):
    """y = 2x; backward zeroes its saved input in place."""

    name = "double_writes_input"

    def forward(self, x):
        return 2 * x

    def backward(self, g, x):
        x[...] = 0
        return (g * 2,)


class DoubleWritesInputForward(Function):
    """y = 2x, computed by doubling x in place."""

    name = "double_writes_input_forward"

    def forward(self, x):
        x *= 2
        return x.copy()

    def backward(self, g, x):
        return (g * 2,)


class DoubleForcesWrite(Function):
    """y = 2x; backward switches the read-only flag off and changes its input anyway."""

    name = "double_forces_write"

    def forward(self, x):
        return 2 * x

    def backward(self, g, x):
        x.setflags(write=True)
        x[...] += 1
        return (g * 2,)


class SumWrongShape(Function):
    """y = Σx; backward returns the scalar g instead of g broadcast to x's shape."""

    name = "sum_wrong_shape"
    save_inputs = False

    def forward(self, x):
        return np.sum(x)

    def backward(self, g):
        return (g.reshape(1, 1),)


class DoubleBroadcastGrad(Function):
    """y = 2x for x of shape (3,); backward returns shape (2, 3), which the engine sums back
    to (3,) — so the shape looks right and the values are doubled."""

    name = "double_broadcast_grad"
    save_inputs = False

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return (np.broadcast_to(g, (2, *g.shape)) * 2,)


class SquareNondeterministic(Function):
    """y = x²; backward is right to 1e-13 but differs at the last bits on every call."""

    name = "square_nondeterministic"

    def forward(self, x):
        return x * x

    def backward(self, g, x):
        jitter = 1 + 1e-13 * np.random.default_rng().random(x.shape)
        return (g * x * 2 * jitter,)


class HalfSquareReturnsInput(Function):
    """y = x²/2; backward hands out its saved input x itself as the gradient (right only for
    g = 1), so ``x.grad`` and ``x`` are one array: ``x -= lr * x.grad`` would corrupt both."""

    name = "half_square_returns_input"

    def forward(self, x):
        return x * x / 2

    def backward(self, g, x):
        return (x,)


class SquareTwoBackwards(Function):
    """y = x²; a "fast path" for arrays is right, the Tensor path (taken under
    create_graph=True) forgets the 2. Backward should be one formula for both."""

    name = "square_two_backwards"

    def forward(self, x):
        return x * x

    def backward(self, g, x):
        if isinstance(g, np.ndarray):
            return (2 * g * x,)
        return (g * x,)


class CubeConstantDerivative(Function):
    """y = x³; backward g·3x² is right, but np.asarray(x) turns the Tensor x into a constant
    array under create_graph=True, so the gradient is not differentiable with respect to x:
    the second derivative comes out as 0 instead of 6x·g."""

    name = "cube_constant_derivative"

    def forward(self, x):
        return x**3

    def backward(self, g, x):
        return (g * (3 * np.asarray(x) ** 2),)


def check_name(fn, inputs, **kwargs):
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, inputs, **kwargs)
    return info.value


def test_missing_factor_fails_numerical_check():
    error = check_name(SquareMissingFactor.apply, [leaf(X)])
    assert error.check == "numerical"
    assert error.input == "inputs[0]"
    assert error.analytical == pytest.approx(error.numerical / 2)


def test_ignoring_the_upstream_gradient_fails_linearity():
    error = check_name(TanhIgnoresUpstream.apply, [leaf(X)])
    assert error.check == "linearity"
    assert "zero upstream gradient gave a nonzero gradient" in str(error)


def test_squaring_the_upstream_gradient_fails_superposition():
    error = check_name(DoubleSquaresUpstream.apply, [leaf(X)])
    assert error.check == "linearity"
    assert "not linear in the upstream gradient" in str(error)


def test_a_gradient_zero_by_cancellation_passes_the_exact_checks():
    # softmax's second derivative at x = [0, 0] is 0 by cancellation of order-1 terms, which
    # leave rounding of 1e-16: allowed (as rounding of atol's scale), not a linearity failure.
    x = ts.tensor(np.array([0.0, 0.0]), requires_grad=True)
    for seed in range(5):
        assert gradgradcheck(lambda t: ts.functional.softmax(t, axis=0), [x], rng=seed)


@pytest.mark.parametrize(
    ("op", "report"),
    [
        # numpy refuses the write: gradcheck's inputs are read-only, and the engine keeps
        # what a node saved read-only until its backward has run
        (DoubleWritesInput, "the backward pass wrote into an input"),
        # numpy refuses the write: gradcheck's inputs are read-only
        (DoubleWritesInputForward, "the forward pass wrote into an input"),
        # the write got through: gradcheck compares the inputs with its copies
        (DoubleForcesWrite, "inputs[0] (shape (3,)) was modified during the check"),
    ],
)
def test_writing_into_an_input_fails_mutation(op, report):
    x = leaf(X)
    error = check_name(op.apply, [x])
    assert error.check == "mutation"
    assert report in str(error)
    np.testing.assert_array_equal(x.data, X)  # the caller's tensor is never touched


def test_gradient_of_impossible_shape_fails_shape_check():
    error = check_name(SumWrongShape.apply, [leaf(X)])
    assert error.check == "shape"
    assert "(1, 1)" in str(error) and "(3,)" in str(error)


def test_gradient_summed_back_from_a_wrong_shape_fails_numerical_check():
    error = check_name(DoubleBroadcastGrad.apply, [leaf(X)])
    assert error.check == "numerical"
    assert error.analytical == pytest.approx(2 * error.numerical)


def test_nondeterministic_backward_fails_reentrancy():
    error = check_name(SquareNondeterministic.apply, [leaf(X)])
    assert error.check == "reentrancy"


def test_gradient_sharing_memory_with_the_input_fails_aliasing():
    error = check_name(HalfSquareReturnsInput.apply, [leaf(X)], upstream=np.ones(3))
    assert error.check == "aliasing"
    assert "shares memory with inputs[0]" in str(error)


def test_two_backward_paths_that_disagree_fail_create_graph():
    error = check_name(SquareTwoBackwards.apply, [leaf(X)])
    assert error.check == "create_graph"
    # The array path is right (2·g·x), the Tensor path gives half of it.
    found = re.search(r"create_graph=True (\S+), create_graph=False (\S+);", str(error))
    assert float(found[1]) == pytest.approx(float(found[2]) / 2)


def test_failure_message_stands_on_its_own():
    x = ts.tensor(np.arange(6.0).reshape(2, 3) / 7, requires_grad=True)
    # With g = 1 the error g·x is largest at the largest x.
    message = str(check_name(SquareMissingFactor.apply, [x], upstream=np.ones((2, 3))))
    for part in [
        "'numerical' check",
        "inputs[0]",
        "shape (2, 3)",
        "worst element (1, 2)",
        "analytical",
        "numerical",
        "abs error",
        "rel error",
        "eps=1e-06",
        "atol=1e-05",
        "rtol=0.001",
    ]:
        assert part in message, part


def test_kink_gets_a_hint():
    error = check_name(lambda a: a.relu(), [leaf([0.0, 1.0])])
    assert error.check == "numerical"
    assert "not differentiable" in str(error)
    # A plain wrong derivative is not mistaken for a kink.
    assert "not differentiable" not in str(check_name(SquareMissingFactor.apply, [leaf(X)]))


def test_raise_exception_false_returns_false():
    assert gradcheck(SquareMissingFactor.apply, [leaf(X)], raise_exception=False) is False
    assert gradcheck(lambda a: a.tanh(), [leaf(X)], raise_exception=False) is True


# --------------------------------------------------------------------------- correct ops


def test_correct_functions_pass():
    a, b = leaf(X), leaf([[0.5], [-1.5]])
    assert gradcheck(lambda x: x.tanh(), [a])
    assert gradcheck(lambda x, y: x * y, [a, b])  # broadcast to (2, 3)
    assert gradcheck(lambda x, y: (x * y * x).sum(), [a, b])
    assert gradcheck(lambda x: x.sum(), [leaf(2.0)])  # 0-d input and output


def test_outputs_that_ignore_inputs_or_need_no_grad_are_fine():
    def cell(x, h, scale):
        # Like an LSTM cell returning (h, c): c ignores x; the count needs no grad.
        new_h = (x * h * scale).tanh()
        c = h.sigmoid()
        return new_h, c, ts.tensor(np.float64(x.shape[0]))

    assert gradcheck(cell, [leaf(X), leaf([0.1, 0.2, -0.3]), 2.0])
    assert gradcheck(lambda x, y: x.exp(), [leaf(X), leaf([1.0])])  # y is unused


def test_nested_inputs_and_constant_tensors():
    def step(x, state, w):
        h, c = state
        return (x * w + h).tanh(), c * w

    state = (leaf([0.2, -0.1, 0.4]), leaf([1.0, 2.0, 3.0]))
    assert gradcheck(step, [leaf(X), state, leaf([0.5, 1.5, -1.0], requires_grad=False)])
    error = check_name(lambda x, s: SquareMissingFactor.apply(s[1]) + x, [leaf(X), state])
    assert error.input == "inputs[1][1]"


def test_caller_inputs_untouched_and_float32_checked_as_float64_with_a_warning():
    x = ts.tensor(np.array(X, dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match=r"float64 copies of inputs\[0\] \(float32"):
        assert gradcheck(lambda a: a.tanh(), [x])
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.data, np.array(X, dtype=np.float32))


def test_output_below_float64_is_refused():
    error = check_name(lambda a: a.astype(np.float32) * 2, [leaf(X)])
    assert error.check == "forward" and "float32" in str(error)


def test_a_float32_step_inside_fn_is_named():
    error = check_name(lambda a: a.astype(np.float32).astype(np.float64), [leaf(X)])
    assert error.check == "linearity" and "float32 rounding" in str(error)


def test_given_upstream_is_used():
    v = np.array([1.0, -2.0, 0.5])
    x = leaf(X)
    assert gradcheck(lambda a: a * a, [x], upstream=v)
    (grad,) = numerical_grad(lambda a: a * a, [x], v)
    np.testing.assert_allclose(grad, 2 * np.array(X) * v, rtol=1e-8)


def test_misuse_is_a_clear_error():
    with pytest.raises(ValueError, match="no input tensor requires grad"):
        gradcheck(lambda a: a * 2, [leaf(X, requires_grad=False)])
    with pytest.raises(TypeError, match="sequence"):
        gradcheck(lambda a: a * 2, leaf(X))
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda a: 3, [leaf(X)])
    with pytest.raises(ValueError, match="none of fn's 1 outputs requires grad"):
        gradcheck(lambda a: a.detach(), [leaf(X)])
    with pytest.raises(ValueError, match=r"upstream entry 0 has shape \(2,\)"):
        gradcheck(lambda a: a * 2, [leaf(X)], upstream=np.ones(2))


# --------------------------------------------------------------------------- second order


def test_gradgradcheck_passes_smooth_functions():
    assert gradgradcheck(lambda x: x**3, [leaf(X)])
    assert gradgradcheck(lambda x, y: (x * y).tanh(), [leaf(X), leaf([[0.5], [-1.0]])])


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = leaf(X)
    assert gradcheck(CubeConstantDerivative.apply, [x])  # first order is right
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(CubeConstantDerivative.apply, [x])
    assert info.value.check == "numerical"
    assert info.value.input == "inputs[0]"
    assert info.value.analytical == 0
    assert "second order" in str(info.value)
    assert gradgradcheck(CubeConstantDerivative.apply, [x], raise_exception=False) is False


# --------------------------------------------------------------------------- helpers


def test_assert_grads_close_reports_the_worst_element_by_name():
    expected = [np.zeros((2, 2)), np.array([1.0, 2.0, 3.0])]
    assert_grads_close([np.zeros((2, 2)), expected[1] * (1 + 1e-9)], expected)
    with np.errstate(all="raise"):  # no 0/0 anywhere
        with pytest.raises(GradcheckError) as info:
            assert_grads_close(
                [np.array([[0.0, 0.0], [0.0, 1e-3]]), np.array([1.0, 2.5, 3.0])],
                expected,
                names=["w", "b"],
            )
    message = str(info.value)
    assert "w (shape (2, 2)): worst element (1, 1)" in message
    assert "rel error inf" in message and "nan" not in message
    assert "b (shape (3,)): worst element (1,): actual 2.5, expected 2" in message


def test_assert_grads_close_none_means_zero_and_shapes_must_match():
    assert_grads_close([None, None], [np.zeros(3), None])
    with pytest.raises(GradcheckError, match=r"actual shape \(3,\) but expected shape \(1, 3\)"):
        assert_grads_close(np.zeros(3), np.zeros((1, 3)))


# --------------------------------------------------------------------------- properties


@given(
    shapes=tst.mutually_broadcastable_shapes(2),
    data=st.data(),
)
def test_products_pass_for_any_broadcast(shapes, data):
    a, b = (data.draw(tst.tensors(shape)) for shape in shapes)
    assert gradcheck(lambda x, y: x * y.tanh(), [a, b])


@given(x=tst.tensors(elements=tst.away_from(0.0)))
def test_relu_and_abs_pass_away_from_the_kink(x):
    assert gradcheck(lambda a: a.relu() + a.abs() * 0.5, [x])


@given(data=st.data(), shape=tst.shapes(min_dims=1), keep=tst.keepdims())
def test_max_passes_without_ties(data, shape, keep):
    x = data.draw(tst.tensors(shape, elements=tst.separated(), distinct=True))
    axis = data.draw(tst.axes(len(shape)))
    assert gradcheck(lambda a: a.max(axis=axis, keepdims=keep), [x])


@given(shapes=tst.matmul_shapes(), data=st.data())
def test_matmul_passes(shapes, data):
    a, b = (data.draw(tst.tensors(shape)) for shape in shapes)
    assert gradcheck(lambda x, y: x @ y, [a, b])


# --------------------------------------------------------------------------- strategies


@pytest.mark.parametrize(
    ("points", "margin", "lo", "hi"),
    [((0.0,), 0.05, -3.0, 3.0), ((-1.0, 1.0), 0.1, -2.0, 2.0), ((0.3, 0.35), 0.05, 0.0, 1.0)],
)
def test_away_from_keeps_its_distance(points, margin, lo, hi):
    @given(tst.away_from(*points, margin=margin, lo=lo, hi=hi))
    def check(x):
        assert lo <= x <= hi
        assert all(abs(x - p) >= margin for p in points)

    check()


def test_away_from_shrinks_next_to_the_kink_not_onto_it():
    assert abs(find(tst.away_from(0.0), lambda x: True)) == 0.05
    assert find(tst.away_from(1.0, margin=0.1), lambda x: x < 1) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="no value"):
        tst.away_from(0.0, margin=2.0, lo=-1.0, hi=1.0)


@given(tst.arrays(tst.shapes(), elements=tst.separated(step=0.25), distinct=True))
def test_separated_distinct_arrays_have_no_ties(x):
    gaps = np.diff(np.sort(x.ravel()))
    assert np.all(gaps >= 0.25)


@given(tst.arrays((4, 3)))
def test_arrays_are_bounded_float64(x):
    assert x.dtype == np.float64 and x.shape == (4, 3)
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 3)


def test_arrays_are_rarely_one_repeated_value():
    # hypothesis.extra.numpy.arrays fills small arrays with one repeated value; ours draws
    # every element, so only the simplest example (all zeros) is constant.
    constant = []

    @given(tst.arrays((3, 3)))
    def draw(x):
        constant.append(len(np.unique(x)) == 1)

    draw()
    assert sum(constant) <= max(2, len(constant) // 10)


@given(data=st.data(), shape=tst.shapes(max_dims=4), keep=tst.keepdims())
def test_axes_are_valid_for_the_ndim(data, shape, keep):
    axis = data.draw(tst.axes(len(shape)))
    if isinstance(axis, tuple):
        assert len({a % len(shape) for a in axis}) == len(axis)
    np.sum(np.zeros(shape), axis=axis, keepdims=keep)


def test_axes_cover_none_ints_negatives_and_tuples():
    assert find(tst.axes(3), lambda a: a is None) is None
    assert find(tst.axes(3), lambda a: isinstance(a, int) and a < 0) < 0
    assert find(tst.axes(3), lambda a: isinstance(a, tuple) and len(a) == 2)
    assert find(tst.axes(0), lambda a: a is not None) == ()


@given(tst.matmul_shapes())
def test_matmul_shapes_multiply(shapes):
    a, b = shapes
    np.matmul(np.zeros(a), np.zeros(b))


def test_matmul_shapes_include_vectors_and_batches():
    assert find(tst.matmul_shapes(), lambda s: len(s[0]) == 1 or len(s[1]) == 1)
    assert find(tst.matmul_shapes(), lambda s: len(s[0]) > 2 and len(s[1]) > 2)


@given(tst.mutually_broadcastable_shapes(3), tst.shapes())
def test_shapes_broadcast_as_promised(triple, shape):
    assert len(triple) == 3
    np.broadcast_shapes(*triple)
    assert len(shape) <= 3 and all(1 <= n <= 4 for n in shape)


@given(st.data(), tst.shapes())
def test_broadcastable_shapes_broadcast_with_the_target(data, target):
    shape = data.draw(tst.broadcastable_shapes(target))
    np.broadcast_shapes(shape, target)
    assert len(shape) <= 3 and all(1 <= n <= 4 for n in shape)


@given(tst.sequences(max_T=5, max_batch=3, max_features=4))
def test_sequences_are_time_batch_features(x):
    T, B, D = x.shape
    assert x.dtype == np.float64
    assert 1 <= T <= 5 and 1 <= B <= 3 and 1 <= D <= 4


@pytest.mark.parametrize(("kind", "gates"), [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_cell_params_have_pytorch_names_shapes_and_scale(kind, gates):
    @given(tst.cell_params(kind, input_size=st.integers(1, 3), hidden_size=st.integers(1, 4)))
    def check(params):
        assert list(params) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        H = params["weight_hh"].shape[1]
        D = params["weight_ih"].shape[1]
        assert params["weight_ih"].shape == (gates * H, D)
        assert params["weight_hh"].shape == (gates * H, H)
        assert params["bias_ih"].shape == params["bias_hh"].shape == (gates * H,)
        for value in params.values():
            assert value.dtype == np.float64
            assert np.all(np.abs(value) <= 1 / math.sqrt(H))

    check()


def test_cell_params_reject_unknown_kinds():
    with pytest.raises(ValueError, match="kind must be one of"):
        tst.cell_params("transformer")


@given(tst.upstream_grads((3, 2)))
def test_upstream_grads_are_distinct_and_away_from_zero(v):
    assert len(np.unique(v)) == v.size
    assert np.all(np.abs(v) >= 0.1) and np.all(np.abs(v) <= 1)


@given(tst.tensors(requires_grad=st.booleans()), tst.tensors(tst.shapes(min_dims=2)))
def test_tensors_are_float64_tensors(t, u):
    assert isinstance(t, ts.Tensor) and t.dtype == np.float64
    assert u.requires_grad and u.ndim >= 2


@given(tst.rngs())
def test_rngs_are_seeded_and_say_so(rng):
    seed = rng.seed
    assert repr(rng) == f"np.random.default_rng({seed})"
    assert rng.random() == np.random.default_rng(seed).random()


def test_positives_and_reals_stay_in_bounds():
    with pytest.raises(ValueError, match="lo must be > 0"):
        tst.positives(lo=0.0)

    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(tst.reals(-1.0, 2.0), tst.positives(0.5, 1.0))
    def check(x, p):
        assert -1 <= x <= 2 and 0.5 <= p <= 1

    check()


# --------------------------------------------------------------------------- profiles


@pytest.fixture
def restore_profile():
    name = os.environ.get(ENV_VAR) or "ci"
    yield
    settings.load_profile(name)


def test_profiles_are_registered(restore_profile):
    load_profile("ci")
    for name in PROFILES:
        assert settings.get_profile(name).deadline is None
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.print_blob and 25 <= ci.max_examples <= 40
    assert settings.get_profile("dev").max_examples == 20
    assert settings.get_profile("thorough").max_examples == 1000


def test_profile_comes_from_the_environment(monkeypatch, restore_profile):
    monkeypatch.setenv(ENV_VAR, "dev")
    assert load_profile() == "dev"
    assert settings().max_examples == 20
    monkeypatch.delenv(ENV_VAR)
    assert load_profile() == "ci"
    with pytest.raises(ValueError, match="no Hypothesis profile named 'fast'"):
        load_profile("fast")


def test_gradcheck_works_without_hypothesis():
    # A blocked import stands in for an environment where hypothesis is not installed.
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import numpy as np, tinygrad_seq as ts, tinygrad_seq.testing as tt\n"
        "x = ts.tensor(np.array([0.5, -1.0]), requires_grad=True)\n"
        "assert tt.gradcheck(lambda a: a.tanh(), [x])\n"
        "try:\n"
        "    tt.strategies\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "needs hypothesis" in result.stdout


def test_strategies_reachable_as_an_attribute():
    import tinygrad_seq.testing

    assert tinygrad_seq.testing.strategies is tst
