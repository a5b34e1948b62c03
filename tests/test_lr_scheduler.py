"""Learning-rate schedulers: 50 steps of each scheduler driving each optimizer, against the
schedules and update rules written out in numpy here (always) and against torch.optim (when
torch is installed); then the scheduler's own contract: get_last_lr, last_epoch, initial_lr,
state dicts, resuming, warnings and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import optim
from tinygrad_seq.nn import Parameter
from tinygrad_seq.optim import lr_scheduler

STEPS = 50

# --------------------------------------------------------------------------- references
# The update rules as PyTorch documents them (torch.optim's algorithm boxes), one step each,
# written independently of the library: ``state`` is a dict the rule keeps its buffers in.


def sgd_rule(theta, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    d = g + weight_decay * theta
    if momentum != 0:
        b = state["b"] = d if "b" not in state else momentum * state["b"] + (1 - dampening) * d
        d = d + momentum * b if nesterov else b
    return theta - lr * d


def adam_rule(
    theta,
    g,
    state,
    lr,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled=False,
):
    t = state["t"] = state.get("t", 0) + 1
    if decoupled:
        theta, d = theta * (1 - lr * weight_decay), g
    else:
        d = g + weight_decay * theta
    m = state["m"] = betas[0] * state.get("m", 0.0) + (1 - betas[0]) * d
    v = state["v"] = betas[1] * state.get("v", 0.0) + (1 - betas[1]) * d**2
    if amsgrad:
        v = state["v_max"] = np.maximum(state.get("v_max", 0.0), v)
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_rule(theta, g, state, lr, **options):
    return adam_rule(theta, g, state, lr, decoupled=True, **options)


def rmsprop_rule(
    theta, g, state, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
):
    d = g + weight_decay * theta
    v = state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * d**2
    if centered:
        mean = state["mean"] = alpha * state.get("mean", 0.0) + (1 - alpha) * d
        v = v - mean**2
    step = d / (np.sqrt(v) + eps)
    if momentum > 0:
        step = state["b"] = momentum * state.get("b", 0.0) + step
    return theta - lr * step


def adagrad_rule(
    theta, g, state, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    t = state["t"] = state.get("t", 0) + 1
    d = g + weight_decay * theta
    s = state["s"] = state.get("s", initial_accumulator_value) + d**2
    return theta - lr / (1 + (t - 1) * lr_decay) * d / (np.sqrt(s) + eps)


RULES = {
    "SGD": sgd_rule,
    "Adam": adam_rule,
    "AdamW": adamw_rule,
    "RMSprop": rmsprop_rule,
    "Adagrad": adagrad_rule,
}

OPTIMIZERS = {
    "SGD": ("SGD", {"lr": 0.1}),
    "SGD-momentum": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    "SGD-nesterov": ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    "Adam": ("Adam", {"lr": 0.05, "weight_decay": 0.01}),
    "Adam-amsgrad": ("Adam", {"lr": 0.05, "betas": (0.8, 0.9), "amsgrad": True}),
    "AdamW": ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
    "AdamW-amsgrad": ("AdamW", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    "RMSprop": ("RMSprop", {"lr": 0.01}),
    "RMSprop-centered": (
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "centered": True, "weight_decay": 0.01},
    ),
    "RMSprop-momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.9, "eps": 1e-6}),
    "Adagrad": (
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
    ),
}


def warmup_then_decay(epoch):
    """A LambdaLR factor: linear warm-up over 5 epochs, then 3% decay per epoch."""
    return min(1.0, (epoch + 1) / 5) * 0.97**epoch


# Each scheduler's options and its rate at epoch t in closed form, written here.
SCHEDULERS = {
    "StepLR": ({"step_size": 7, "gamma": 0.5}, lambda base, t: base * 0.5 ** (t // 7)),
    "ExponentialLR": ({"gamma": 0.93}, lambda base, t: base * 0.93**t),
    "CosineAnnealingLR": (
        {"T_max": 20, "eta_min": 1e-3},  # 50 steps pass the trough at 20 and rise again
        lambda base, t: 1e-3 + (base - 1e-3) * (1 + math.cos(math.pi * t / 20)) / 2,
    ),
    "LambdaLR": ({"lr_lambda": warmup_then_decay}, lambda base, t: base * warmup_then_decay(t)),
}

CASES = [(o, s) for o in OPTIMIZERS for s in SCHEDULERS]


def starts_and_noise(seed=0):
    rng = np.random.default_rng(seed)
    starts = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    noise = [[rng.standard_normal(s.shape) for s in starts] for _ in range(STEPS)]
    return starts, noise


def gradient(noise, theta):
    """The gradient fed at each step: noise plus a pull towards 0 (so it depends on θ)."""
    return noise + 0.5 * theta


def groups(params, lr):
    """Two parameter groups, the second at half the rate, so each group is scheduled apart."""
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": lr / 2}]


def run_ours(optimizer, scheduler):
    name, options = OPTIMIZERS[optimizer]
    sched_options, _ = SCHEDULERS[scheduler]
    starts, noise = starts_and_noise()
    params = [Parameter(s.copy()) for s in starts]
    opt = getattr(optim, name)(groups(params, options["lr"]), **options)
    sched = getattr(lr_scheduler, scheduler)(opt, **sched_options)
    rates = []
    for step_noise in noise:
        rates.append(sched.get_last_lr())
        for p, n in zip(params, step_noise, strict=True):
            p.grad = ts.tensor(gradient(n, p.data))
        opt.step()
        sched.step()
    return [p.data for p in params], rates, sched


def run_reference(optimizer, scheduler):
    name, options = OPTIMIZERS[optimizer]
    _, schedule = SCHEDULERS[scheduler]
    rule, rule_options = RULES[name], {k: v for k, v in options.items() if k != "lr"}
    starts, noise = starts_and_noise()
    thetas, states, bases = [s.copy() for s in starts], [{}, {}], [options["lr"], options["lr"] / 2]
    rates = []
    for t, step_noise in enumerate(noise):
        lrs = [schedule(base, t) for base in bases]
        rates.append(lrs)
        thetas = [
            rule(theta, gradient(n, theta), state, lr, **rule_options)
            for theta, n, state, lr in zip(thetas, step_noise, states, lrs, strict=True)
        ]
    return thetas, rates


@pytest.mark.parametrize(("optimizer", "scheduler"), CASES)
def test_scheduled_optimizer_matches_the_written_out_rules(optimizer, scheduler):
    params, rates, _ = run_ours(optimizer, scheduler)
    expected_params, expected_rates = run_reference(optimizer, scheduler)
    np.testing.assert_allclose(rates, expected_rates, rtol=1e-12, atol=0)
    for ours, expected in zip(params, expected_params, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    # The schedule really moved the rates (a scheduler that did nothing would fail above too).
    assert len({rate[0] for rate in rates}) > 5


@pytest.mark.parametrize(("optimizer", "scheduler"), CASES)
def test_scheduled_optimizer_matches_torch(optimizer, scheduler):
    torch = pytest.importorskip("torch")
    name, options = OPTIMIZERS[optimizer]
    sched_options, _ = SCHEDULERS[scheduler]
    starts, noise = starts_and_noise()
    params = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    opt = getattr(torch.optim, name)(groups(params, options["lr"]), **options)
    sched = getattr(torch.optim.lr_scheduler, scheduler)(opt, **sched_options)
    rates = []
    for step_noise in noise:
        rates.append(sched.get_last_lr())
        for p, n in zip(params, step_noise, strict=True):
            p.grad = torch.tensor(gradient(n, p.detach().numpy()))
        opt.step()
        sched.step()
    ours, our_rates, our_sched = run_ours(optimizer, scheduler)
    assert our_rates == rates  # the same float arithmetic: bit for bit
    assert our_sched.last_epoch == sched.last_epoch == STEPS
    for p, q in zip(ours, params, strict=True):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- contract


def make(lr=0.1, steps=0, scheduler="StepLR", **options):
    p = Parameter(np.ones(2))
    opt = optim.SGD([p], lr=lr)
    sched = getattr(lr_scheduler, scheduler)(opt, **(options or {"step_size": 2}))
    for _ in range(steps):
        p.grad = ts.tensor(np.ones(2))
        opt.step()
        sched.step()
    return opt, sched


def test_creation_records_initial_lr_and_starts_at_epoch_zero():
    opt, sched = make(lr=0.3, scheduler="ExponentialLR", gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.3
    assert sched.base_lrs == [0.3]
    assert sched.last_epoch == 0
    assert sched.get_last_lr() == [0.3]
    assert opt.state_dict()["param_groups"][0]["initial_lr"] == 0.3


def test_step_advances_last_epoch_and_sets_the_group_lr():
    opt, sched = make(lr=0.4, steps=3, scheduler="ExponentialLR", gamma=0.5)
    assert sched.last_epoch == 3
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0] == 0.4 * 0.5**3
    sched.get_last_lr().append(1.0)  # a copy: the scheduler is unchanged
    assert sched.get_last_lr() == [0.05]


def test_schedulers_chain_as_in_pytorch():
    # StepLR and ExponentialLR both multiply the current rate, so they compose.
    p = Parameter(np.ones(1))
    opt = optim.SGD([p], lr=1.0)
    scheds = [
        lr_scheduler.StepLR(opt, step_size=2, gamma=0.1),
        lr_scheduler.ExponentialLR(opt, 0.5),
    ]
    for _ in range(4):
        p.grad = ts.tensor(np.ones(1))
        opt.step()
        for sched in scheds:
            sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1**2 * 0.5**4, rel=1e-15)


@pytest.mark.parametrize(
    ("scheduler", "options"),
    [
        ("StepLR", {"step_size": 3, "gamma": 0.5}),
        ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ],
)
def test_state_dict_round_trip_resumes_the_schedule(scheduler, options, tmp_path):
    opt, sched = make(lr=0.5, steps=5, scheduler=scheduler, **options)
    ts.save({"optim": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "c.npz")
    checkpoint = ts.load(tmp_path / "c.npz")
    opt2, sched2 = make(lr=9.0, scheduler=scheduler, **options)
    opt2.load_state_dict(checkpoint["optim"])
    sched2.load_state_dict(checkpoint["sched"])
    assert sched2.last_epoch == 5
    for _ in range(6):
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_lambda_lr_state_dict_keeps_a_callable_objects_attributes():
    class Decay:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, epoch):
            return self.factor**epoch

    opt, sched = make(scheduler="LambdaLR", lr_lambda=Decay(0.5))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"factor": 0.5}]
    _, other = make(scheduler="LambdaLR", lr_lambda=Decay(0.9))
    other.load_state_dict(state)
    assert other.lr_lambdas[0].factor == 0.5
    _, plain = make(scheduler="LambdaLR", lr_lambda=warmup_then_decay)
    assert plain.state_dict()["lr_lambdas"] == [None]  # a function cannot be saved


def test_resuming_needs_initial_lr():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=4)


def test_resuming_with_last_epoch_continues_from_there():
    opt, sched = make(lr=1.0, steps=4, scheduler="CosineAnnealingLR", T_max=10)
    resumed_opt = optim.SGD([Parameter(np.ones(2))], lr=5.0)
    resumed_opt.load_state_dict(opt.state_dict())
    resumed = lr_scheduler.CosineAnnealingLR(resumed_opt, T_max=10, last_epoch=3)
    assert resumed.last_epoch == 4
    assert resumed.get_last_lr() == pytest.approx(sched.get_last_lr(), rel=1e-15)


def test_stepping_the_scheduler_before_the_optimizer_warns():
    _, sched = make()
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        sched.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(steps=3)  # the right order: no warning


def test_step_with_an_epoch_warns_and_uses_the_closed_form():
    opt, sched = make(lr=1.0, steps=1, scheduler="StepLR", step_size=2, gamma=0.1)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(5)
    assert sched.last_epoch == 5
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01, rel=1e-15)


def test_load_state_dict_refuses_an_unknown_key_and_changes_nothing():
    _, sched = make(steps=2)
    state = {**sched.state_dict(), "T_max": 3, "last_epoch": 99}
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['T_max'\]"):
        sched.load_state_dict(state)
    assert sched.last_epoch == 2


def test_loads_a_torch_schedulers_state_dict():
    torch = pytest.importorskip("torch")
    q = torch.zeros(2, requires_grad=True)
    torch_opt = torch.optim.SGD([q], lr=1.0)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=6, eta_min=0.1)
    for _ in range(4):
        torch_opt.step()
        torch_sched.step()
    opt, sched = make(lr=1.0, scheduler="CosineAnnealingLR", T_max=6, eta_min=0.1)
    opt.load_state_dict(torch_opt.state_dict())
    sched.load_state_dict(torch_sched.state_dict())
    for _ in range(5):
        for o, s in ((opt, sched), (torch_opt, torch_sched)):
            o.step()
            s.step()
        assert sched.get_last_lr() == torch_sched.get_last_lr()


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "step_size must be"),
        (lambda o: lr_scheduler.StepLR(o, step_size=2.5), ValueError, "whole number"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma="0.9"), ValueError, "gamma must be"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be"),
        (lambda o: lr_scheduler.LambdaLR(o, [abs, abs]), ValueError, "expected 1 lr_lambdas"),
        (lambda o: lr_scheduler.LambdaLR(o, 0.5), TypeError, "not a function of the epoch"),
        (lambda o: lr_scheduler.StepLR(o, 2, last_epoch=-2), ValueError, "last_epoch"),
        (lambda o: lr_scheduler.StepLR([o], step_size=2), TypeError, "list is not an Optimizer"),
    ],
)
def test_bad_arguments_are_clear_errors(build, error, match):
    with pytest.raises(error, match=match):
        build(optim.SGD([Parameter(np.ones(1))], lr=0.1))
