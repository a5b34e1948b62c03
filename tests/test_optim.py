"""Optimizers: each update rule against a hand-written numpy version of PyTorch's formula,
the training-loop contract (zero_grad, skipped parameters, dtypes, untouched gradients),
state dicts, hyperparameter validation, and (optionally) torch.optim itself."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import optim
from tinygrad_seq.functional import mse_loss
from tinygrad_seq.nn import Linear, Parameter
from tinygrad_seq.testing import strategies as tst

# --------------------------------------------------------------------------- references
# PyTorch's update rules written out plainly (torch/optim/{sgd,adam,adagrad}.py, single-tensor
# path), one function per optimizer, independent of the library's code.


def sgd_reference(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    theta, buf = theta.copy(), None
    for g in grads:
        d = g + weight_decay * theta
        if momentum != 0:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        theta = theta - lr * d
    return theta


def adam_reference(
    theta,
    grads,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled_weight_decay=False,
):
    theta = theta.copy()
    m, v, v_max = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if decoupled_weight_decay:
            theta, d = theta * (1 - lr * weight_decay), g
        else:
            d = g + weight_decay * theta
        m = betas[0] * m + (1 - betas[0]) * d
        v = betas[1] * v + (1 - betas[1]) * d * d
        v_max = np.maximum(v_max, v)
        m_hat_scale = lr / (1 - betas[0] ** t)
        denom = np.sqrt(v_max if amsgrad else v) / np.sqrt(1 - betas[1] ** t) + eps
        theta = theta - m_hat_scale * (m / denom)
    return theta


def rmsprop_reference(
    theta, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
):
    theta = theta.copy()
    v, mean, b = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for g in grads:
        d = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * d * d
        mean = alpha * mean + (1 - alpha) * d
        denom = np.sqrt(v - mean * mean if centered else v) + eps
        if momentum > 0:
            b = momentum * b + d / denom
            theta = theta - lr * b
        else:
            theta = theta - lr * d / denom
    return theta


def adagrad_reference(
    theta, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    theta = theta.copy()
    s = np.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        d = g + weight_decay * theta
        s = s + d * d
        theta = theta - lr / (1 + (t - 1) * lr_decay) * (d / (np.sqrt(s) + eps))
    return theta


def run(cls, kwargs, theta, grads):
    """Our optimizer over the given gradient sequence, on one float64 parameter."""
    p = Parameter(theta.copy())
    opt = cls([p], **kwargs)
    for g in grads:
        p.grad = ts.tensor(g)
        opt.step()
    return p.data


@st.composite
def problems(draw):
    """A start θ and 1–4 steps of gradients, float64, of one random shape."""
    shape = draw(tst.shapes(max_dims=2))
    theta = draw(tst.arrays(shape))
    steps = draw(st.integers(1, 4))
    grads = [draw(tst.arrays(shape)) for _ in range(steps)]
    return theta, grads


def unit(lo=0.0, hi=1.0):
    return st.floats(lo, hi, allow_nan=False)


@st.composite
def sgd_options(draw):
    momentum = draw(st.sampled_from([0.0, 0.5]) | unit(0.0, 0.99))
    dampening = draw(st.sampled_from([0.0]) | unit())
    nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
    return {
        "lr": draw(unit()),
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": draw(st.sampled_from([0.0]) | unit(0.0, 0.1)),
        "nesterov": nesterov,
    }


@st.composite
def adam_options(draw):
    return {
        "lr": draw(unit()),
        "betas": (draw(unit(0.0, 0.99)), draw(unit(0.0, 0.9999))),
        "eps": draw(unit(1e-10, 1e-3)),
        "weight_decay": draw(st.sampled_from([0.0]) | unit(0.0, 0.1)),
        "amsgrad": draw(st.booleans()),
    }


@st.composite
def rmsprop_options(draw):
    centered = draw(st.booleans())
    # Centered, the variance v − ḡ² cancels ever more as α → 0 (at step 1 it is α·(1 − α)·g²),
    # so two correct roundings of it drift apart; α ≥ 0.5 keeps the comparison at 1e-12.
    return {
        "lr": draw(unit()),
        "alpha": draw(unit(0.5 if centered else 0.0, 0.999)),
        "eps": draw(unit(1e-8, 1e-3)),
        "weight_decay": draw(st.sampled_from([0.0]) | unit(0.0, 0.1)),
        "momentum": draw(st.sampled_from([0.0]) | unit(0.0, 0.99)),
        "centered": centered,
    }


@st.composite
def adagrad_options(draw):
    return {
        "lr": draw(unit()),
        "lr_decay": draw(st.sampled_from([0.0]) | unit(0.0, 0.5)),
        "weight_decay": draw(st.sampled_from([0.0]) | unit(0.0, 0.1)),
        "initial_accumulator_value": draw(st.sampled_from([0.0]) | unit()),
        "eps": draw(unit(1e-10, 1e-3)),
    }


@given(problems(), sgd_options())
def test_sgd_matches_pytorch_formula(problem, options):
    theta, grads = problem
    expected = sgd_reference(theta, grads, **options)
    np.testing.assert_allclose(
        run(optim.SGD, options, theta, grads), expected, rtol=1e-12, atol=1e-12
    )


@given(problems(), adam_options())
def test_adam_matches_pytorch_formula(problem, options):
    theta, grads = problem
    expected = adam_reference(theta, grads, **options)
    np.testing.assert_allclose(
        run(optim.Adam, options, theta, grads), expected, rtol=1e-12, atol=1e-12
    )


@given(problems(), adam_options())
def test_adamw_matches_pytorch_formula(problem, options):
    theta, grads = problem
    expected = adam_reference(theta, grads, **options, decoupled_weight_decay=True)
    np.testing.assert_allclose(
        run(optim.AdamW, options, theta, grads), expected, rtol=1e-12, atol=1e-12
    )


@given(problems(), rmsprop_options())
def test_rmsprop_matches_pytorch_formula(problem, options):
    theta, grads = problem
    expected = rmsprop_reference(theta, grads, **options)
    np.testing.assert_allclose(
        run(optim.RMSprop, options, theta, grads), expected, rtol=1e-12, atol=1e-12
    )


def test_adam_and_adamw_differ_only_in_where_the_decay_goes():
    # With λ = 0 the two are one rule; with λ > 0 AdamW shrinks θ before the step.
    theta, grads = np.array([2.0, -1.0]), [np.array([0.5, 0.25])] * 3
    assert run(optim.AdamW, {"weight_decay": 0.0}, theta, grads).tolist() == (
        run(optim.Adam, {}, theta, grads).tolist()
    )
    decayed = run(optim.AdamW, {"lr": 0.1, "weight_decay": 0.5}, theta, grads[:1])
    np.testing.assert_allclose(decayed, theta * (1 - 0.1 * 0.5) - 0.1 * np.sign(grads[0]))


def test_amsgrad_divides_by_the_largest_second_moment_so_far():
    # A large gradient then small ones: plain Adam's v shrinks and its steps grow back;
    # AMSGrad keeps v̂ at its maximum, so its later steps stay smaller.
    grads = [np.array([10.0])] + [np.array([0.1])] * 20
    plain = run(optim.Adam, {"lr": 0.1}, np.zeros(1), grads)
    ams = run(optim.Adam, {"lr": 0.1, "amsgrad": True}, np.zeros(1), grads)
    assert 0 > ams[0] > plain[0]


@given(problems(), adagrad_options())
def test_adagrad_matches_pytorch_formula(problem, options):
    theta, grads = problem
    expected = adagrad_reference(theta, grads, **options)
    np.testing.assert_allclose(
        run(optim.Adagrad, options, theta, grads), expected, rtol=1e-12, atol=1e-12
    )


def test_sgd_momentum_first_step_is_the_gradient_then_accumulates():
    # b_1 = g_1 exactly (not (1 − τ)·g_1), the detail PyTorch's SGD is known for.
    p = Parameter(np.zeros(1, dtype=np.float64))
    opt = optim.SGD([p], lr=1.0, momentum=0.5, dampening=0.5)
    p.grad = ts.tensor(np.array([2.0]))
    opt.step()
    assert p.data.tolist() == [-2.0]
    opt.step()  # b_2 = 0.5·2 + 0.5·2 = 2
    assert p.data.tolist() == [-4.0]


# --------------------------------------------------------------------------- training contract

OPTIMIZERS = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
    (optim.Adam, {"lr": 0.05, "weight_decay": 0.01}),
    (optim.Adagrad, {"lr": 0.3, "lr_decay": 0.01, "weight_decay": 0.01}),
    (optim.AdamW, {"lr": 0.05, "weight_decay": 0.01, "amsgrad": True}),
    (optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
]
IDS = ["SGD", "Adam", "Adagrad", "AdamW", "RMSprop"]


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_tiny_linear_regression_converges(cls, kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3
    model = Linear(3, 1, dtype=np.float64, rng=rng)
    opt = cls(model.parameters(), **{**kwargs, "weight_decay": 0.0})
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = mse_loss(model(ts.tensor(x)), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 1e-4 < first, (first, loss.item())
    np.testing.assert_allclose(model.weight.data, [[1.5, -2.0, 0.5]], atol=1e-2)


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_step_updates_in_place_and_never_writes_to_the_gradient(cls, kwargs):
    p = Parameter(np.ones((2, 3)))
    array = p.data
    opt = cls([p], **kwargs)
    for _ in range(2):
        grad = np.arange(6.0).reshape(2, 3)
        grad.flags.writeable = False  # any in-place write to it raises
        p.grad = ts.from_numpy(grad)
        opt.step()
        np.testing.assert_array_equal(grad, np.arange(6.0).reshape(2, 3))
    assert p.data is array
    assert not np.array_equal(array, np.ones((2, 3)))


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_parameters_without_grad_are_skipped(cls, kwargs):
    a, b = Parameter(np.ones(3)), Parameter(np.ones(3))
    opt = cls([a, b], **kwargs)
    a.grad = ts.tensor(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(3))
    assert not np.array_equal(a.data, np.ones(3))
    assert b not in opt.state and 1 not in opt.state_dict()["state"]


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_dtype_of_parameters_and_state_is_kept(cls, kwargs):
    p = Parameter(np.ones(4, dtype=np.float32))
    opt = cls([p], **kwargs)
    for _ in range(2):
        p.grad = ts.tensor(np.full(4, 0.5, dtype=np.float64))
        opt.step()
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray))


def test_state_follows_a_parameter_converted_to_float64():
    model = Linear(2, 1)
    opt = optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = ts.tensor(np.ones(p.shape, dtype=np.float32))
    opt.step()
    model.double()
    for p in model.parameters():
        p.grad = ts.tensor(np.ones(p.shape))
    opt.step()
    assert {v.dtype for s in opt.state.values() for v in s.values() if hasattr(v, "dtype")} == {
        np.dtype(np.float64)
    }


def test_zero_grad_sets_none_or_new_zeros():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = ts.tensor(np.ones(3))
    opt.zero_grad()
    assert p.grad is None
    old = np.ones(3)
    p.grad = ts.from_numpy(old)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, np.zeros(3))
    np.testing.assert_array_equal(old, np.ones(3))  # the old array was not zeroed in place


def test_step_returns_the_closure_loss_computed_with_grad():
    p = Parameter(np.array([3.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with ts.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    assert p.data.tolist() == [3.0 - 0.25 * 6.0]


def test_param_groups_have_their_own_options():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.5)
    assert opt.param_groups[1]["momentum"] == 0.5
    a.grad, b.grad = ts.tensor(np.ones(1)), ts.tensor(np.ones(1))
    opt.step()
    assert (a.data.tolist(), b.data.tolist()) == ([-0.1], [-1.0])
    assert opt.state_dict()["param_groups"][1]["params"] == [1]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: optim.SGD([p], lr=-0.1), ValueError, "invalid lr -0.1"),
        (lambda p: optim.SGD([p], lr=float("nan")), ValueError, "invalid lr nan"),
        (lambda p: optim.SGD([p], lr=0.1, momentum=-1), ValueError, "invalid momentum -1"),
        (lambda p: optim.SGD([p], lr=0.1, weight_decay=-1), ValueError, "weight_decay -1"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=True), ValueError, "momentum=0.0"),
        (
            lambda p: optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            "dampening=0.1",
        ),
        (lambda p: optim.SGD([p], lr="fast"), ValueError, "lr must be a number"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.999)), ValueError, r"betas\[0\] 1.0"),
        (lambda p: optim.Adam([p], betas=(0.9, -0.1)), ValueError, r"betas\[1\] -0.1"),
        (lambda p: optim.Adam([p], betas=(0.9,)), ValueError, "pair"),
        (lambda p: optim.Adam([p], eps=-1e-8), ValueError, "invalid eps"),
        (lambda p: optim.Adagrad([p], lr_decay=-1), ValueError, "invalid lr_decay -1"),
        (lambda p: optim.AdamW([p], betas=(0.9, 1.5)), ValueError, r"AdamW: invalid betas\[1\]"),
        (lambda p: optim.AdamW([p], weight_decay=-0.1), ValueError, "invalid weight_decay"),
        (lambda p: optim.RMSprop([p], alpha=-0.5), ValueError, "RMSprop: invalid alpha -0.5"),
        (lambda p: optim.RMSprop([p], momentum=-1), ValueError, "invalid momentum -1"),
        (lambda p: optim.RMSprop([p], eps=float("nan")), ValueError, "invalid eps nan"),
        (lambda p: optim.Adagrad([p], initial_accumulator_value=-1), ValueError, "initial_acc"),
        (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: optim.SGD(p, lr=0.1), TypeError, "iterable of Parameters"),
        (lambda p: optim.SGD({p}, lr=0.1), TypeError, "got a set"),
        (lambda p: optim.SGD([p, p], lr=0.1), ValueError, "appears twice"),
        (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1), ValueError, "twice"),
        (lambda p: optim.SGD([{"params": [p], "learning_rate": 1}], lr=0.1), TypeError, "unknown"),
        (lambda p: optim.SGD([p * 2], lr=0.1), ValueError, "not a leaf"),
        (lambda p: optim.SGD([np.ones(2)], lr=0.1), TypeError, "not a Parameter"),
    ],
)
def test_invalid_arguments_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(Parameter(np.ones(2)))


def test_gradient_of_the_wrong_shape_is_an_error():
    p = Parameter(np.ones(3))
    opt = optim.Adam([p])
    p.grad = ts.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"shape \(3,\) has a gradient of shape \(4,\)"):
        opt.step()


# --------------------------------------------------------------------------- state dicts


def trained(cls, kwargs, seed=0, steps=3):
    """Two parameters and an optimizer after ``steps`` steps of seeded gradients."""
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal((2, 3))), Parameter(rng.standard_normal(3))]
    opt = cls(params, **kwargs)
    feed(params, opt, rng, steps)
    return params, opt


def feed(params, opt, rng, steps):
    for _ in range(steps):
        for p in params:
            p.grad = ts.tensor(rng.standard_normal(p.shape))
        opt.step()


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_state_dict_round_trip_continues_bit_identically(cls, kwargs, tmp_path):
    params, opt = trained(cls, kwargs)
    ts.save({"params": [p.data for p in params], "optim": opt.state_dict()}, tmp_path / "c.npz")
    checkpoint = ts.load(tmp_path / "c.npz")

    fresh = [Parameter(array) for array in checkpoint["params"]]
    resumed = cls(fresh, lr=123.0)  # hyperparameters come back from the state dict too
    resumed.load_state_dict(checkpoint["optim"])
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]

    feed(params, opt, np.random.default_rng(1), 3)
    feed(fresh, resumed, np.random.default_rng(1), 3)
    for original, copy in zip(params, fresh, strict=True):
        np.testing.assert_array_equal(copy.data, original.data)
        assert copy.data.tobytes() == original.data.tobytes()


def test_state_dict_layout_and_snapshot():
    params, opt = trained(optim.Adam, {"lr": 0.1})
    state = opt.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert sorted(state["state"]) == [0, 1]
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["state"][0]["step"] == 3
    assert state["param_groups"] == [
        {
            "lr": 0.1,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "weight_decay": 0.0,
            "amsgrad": False,
            "decoupled_weight_decay": False,
            "params": [0, 1],
        }
    ]
    before = state["state"][0]["exp_avg"].copy()
    feed(params, opt, np.random.default_rng(5), 1)
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], before)  # a copy, not a view


def _mismatches():
    def wrong_groups(sd):
        sd["param_groups"].append(dict(sd["param_groups"][0]))

    def wrong_size(sd):
        sd["param_groups"][0]["params"] = [0]

    def wrong_shape(sd):
        sd["state"][1]["exp_avg"] = np.zeros(4)

    def missing_key(sd):
        del sd["state"][0]["exp_avg_sq"]

    def unknown_param(sd):
        sd["state"][7] = sd["state"][0]

    def bad_option(sd):
        sd["param_groups"][0]["betas"] = (2.0, 0.5)

    def extra_option(sd):
        sd["param_groups"][0]["momentum"] = 0.9

    def bad_step(sd):
        sd["state"][0]["step"] = -1

    return [
        (wrong_groups, "2 parameter group"),
        (wrong_size, "group 0 has 1 parameter"),
        (wrong_shape, r"'exp_avg' has shape \(4,\), the parameter has shape \(3,\)"),
        (missing_key, r"expected keys \['exp_avg', 'exp_avg_sq', 'step'\]"),
        (unknown_param, "parameter 7, which no group lists"),
        (bad_option, r"betas\[0\] 2.0"),
        (extra_option, r"unexpected option\(s\) \['momentum'\]"),
        (bad_step, "'step' must be ≥ 0"),
    ]


@pytest.mark.parametrize(("damage", "match"), _mismatches())
def test_load_state_dict_mismatch_names_it_and_changes_nothing(damage, match):
    params, opt = trained(optim.Adam, {"lr": 0.1})
    sd = opt.state_dict()
    damage(sd)
    _, other = trained(optim.Adam, {"lr": 0.5}, seed=9)
    other_params = other.param_groups[0]["params"]
    before = other.state_dict()
    with pytest.raises(ValueError, match=match):
        other.load_state_dict(sd)
    after = other.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for index in before["state"]:
        for key, value in before["state"][index].items():
            np.testing.assert_array_equal(after["state"][index][key], value)
    assert other.param_groups[0]["params"] == other_params


def test_load_state_dict_refuses_a_non_state_dict():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"keys \['weight'\]"):
        opt.load_state_dict({"weight": np.ones(1)})


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    params, opt = trained(optim.SGD, {"lr": 0.1, "momentum": 0.9})
    p32 = [Parameter(p.data.astype(np.float32)) for p in params]
    opt32 = optim.SGD(p32, lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[p32[0]]["momentum_buffer"].dtype == np.float32


# --------------------------------------------------------------------------- PyTorch itself

TORCH_CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {}),
    ("Adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "betas": (0.0, 0.0)}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.05, "alpha": 0.9, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "eps": 1e-6}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.5, "momentum": 0.5, "centered": True}),
    ("Adagrad", {}),
    (
        "Adagrad",
        {"lr": 0.2, "lr_decay": 0.1, "weight_decay": 0.05, "initial_accumulator_value": 0.3},
    ),
]


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CONFIGS)
def test_matches_torch_optim(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ours = [Parameter(s.copy()) for s in starts]
    theirs = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    opt = getattr(optim, name)(ours, **kwargs)
    torch_opt = getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(6):
        for p, q in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = ts.tensor(g), torch.tensor(g)
        opt.step()
        torch_opt.step()
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-12)
    # The same state entries: none for plain SGD, momentum_buffer, or step and moments.
    layout = {k: sorted(v) for k, v in opt.state_dict()["state"].items()}
    assert layout == {k: sorted(v) for k, v in torch_opt.state_dict()["state"].items()}


# --------------------------------------------------------------------------- PyTorch state dicts


class FakeTorchTensor:
    """What the loaders may use of a torch tensor: detach().cpu().numpy(), nothing else."""

    def __init__(self, array):
        self._array = np.asarray(array)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self._array


def torch_layout_adam_state(params, opt):
    """Our Adam state dict rewritten as torch.optim.Adam lays it out: tensors (a float32
    0-d step), and the options that only choose PyTorch's implementation."""
    state = opt.state_dict()
    for entry in state["state"].values():
        for key, value in entry.items():
            entry[key] = FakeTorchTensor(np.float32(value) if key == "step" else value)
    torch_only = {"maximize": False, "foreach": None, "capturable": False}
    state["param_groups"] = [
        {**g, **torch_only, "differentiable": False, "fused": None, "initial_lr": 0.1}
        for g in state["param_groups"]
    ]
    return state


def test_loads_a_pytorch_layout_state_dict_without_importing_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` would now fail
    params, opt = trained(optim.Adam, {"lr": 0.1, "amsgrad": True})
    state = torch_layout_adam_state(params, opt)
    fresh = [Parameter(p.data.copy()) for p in params]
    resumed = optim.Adam(fresh, lr=5.0, amsgrad=True)
    resumed.load_state_dict(state)
    group = resumed.param_groups[0]
    assert (group["lr"], group["initial_lr"], "foreach" in group) == (0.1, 0.1, False)
    assert resumed.state[fresh[0]]["step"] == 3 and type(resumed.state[fresh[0]]["step"]) is int
    feed(params, opt, np.random.default_rng(4), 2)
    feed(fresh, resumed, np.random.default_rng(4), 2)
    for original, copy in zip(params, fresh, strict=True):
        np.testing.assert_array_equal(copy.data, original.data)


def test_pytorch_maximize_is_refused_not_ignored():
    params, opt = trained(optim.Adam, {"lr": 0.1})
    state = torch_layout_adam_state(params, opt)
    state["param_groups"][0]["maximize"] = True
    other = optim.Adam([Parameter(p.data.copy()) for p in params])
    with pytest.raises(
        ValueError, match=r"maximize=True \(PyTorch's gradient ascent\) is not supported"
    ):
        other.load_state_dict(state)
    assert other.state == {} and other.param_groups[0]["lr"] == 1e-3


def test_state_keys_follow_the_options_being_loaded():
    # An amsgrad state dict has max_exp_avg_sq; loading it with amsgrad switched off is a
    # mismatch, named, and nothing changes.
    params, opt = trained(optim.Adam, {"lr": 0.1, "amsgrad": True})
    state = opt.state_dict()
    state["param_groups"][0]["amsgrad"] = False
    other = optim.Adam([Parameter(p.data.copy()) for p in params], amsgrad=True)
    with pytest.raises(ValueError, match=r"expected keys \['exp_avg', 'exp_avg_sq', 'step'\]"):
        other.load_state_dict(state)
    assert other.param_groups[0]["amsgrad"] is True


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CONFIGS)
def test_loads_a_torch_optimizers_state_dict_and_continues_identically(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    theirs = [torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((3, 4), (4,))]
    torch_opt = getattr(torch.optim, name)(theirs, **kwargs)
    torch.optim.lr_scheduler.ExponentialLR(torch_opt, gamma=0.9)  # adds 'initial_lr'

    def torch_steps(n, seed):
        grads = np.random.default_rng(seed)
        for _ in range(n):
            for q in theirs:
                q.grad = torch.tensor(grads.standard_normal(tuple(q.shape)))
            torch_opt.step()

    torch_steps(3, 0)
    ours = [Parameter(q.detach().numpy().copy()) for q in theirs]
    opt = getattr(optim, name)(ours, lr=123.0)
    opt.load_state_dict(torch_opt.state_dict())
    torch_steps(3, 1)
    feed(ours, opt, np.random.default_rng(1), 3)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_default_options_are_pytorchs(name):
    torch = pytest.importorskip("torch")
    ours = getattr(optim, name)([Parameter(np.ones(1))]).defaults
    theirs = getattr(torch.optim, name)([torch.ones(1, requires_grad=True)]).defaults
    implementation = {"foreach", "fused", "capturable", "differentiable", "maximize"}
    assert ours == {k: v for k, v in theirs.items() if k not in implementation}


def test_sgd_learning_rate_defaults_to_pytorchs():
    p = Parameter(np.ones(1))
    p.grad = ts.tensor(np.ones(1))
    optim.SGD([p]).step()
    assert p.data.tolist() == [1 - 1e-3]


def test_a_state_dict_from_before_amsgrad_and_decoupled_decay_loads():
    # Saved by an earlier Adam (or PyTorch before 2.6): the newer options are absent and
    # load as the behaviour those versions had, as PyTorch's own loader does.
    params, opt = trained(optim.Adam, {"lr": 0.1})
    state = opt.state_dict()
    for group in state["param_groups"]:
        del group["amsgrad"], group["decoupled_weight_decay"]
    resumed = optim.Adam([Parameter(p.data.copy()) for p in params], amsgrad=True)
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["amsgrad"] is False
    assert resumed.param_groups[0]["decoupled_weight_decay"] is False
    adamw = optim.AdamW([Parameter(p.data.copy()) for p in params])
    adamw.load_state_dict(state)
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True  # AdamW stays AdamW
