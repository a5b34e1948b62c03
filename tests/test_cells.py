"""The recurrent cells, proven three ways (anchors-testing §2.4).

- ``gradcheck`` (float64 central differences) with respect to everything a cell uses: the
  input, the state (h, and c for the LSTM) and every weight and bias; the LSTM once with a
  loss on h only, on c only and on both (a backward that drops the gradient arriving at c
  passes the first and fails the second).
- An independent formulation: the same equations written in plain numpy, gate by gate with
  per-gate weight blocks, for the forward pass (1e-12) and, by central differences of that
  numpy function, for the gradients.
- The gate order, checked by its effect: saturating one gate's bias must do what that gate
  does (a forget gate held open keeps C, an update gate held open keeps h).

Plus a user-written cell that plugs into ``Recurrent`` unchanged, and the shape errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.testing import assert_grads_close, gradcheck
from tinygrad_seq.testing import strategies as tst

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
KINDS = {"rnn_tanh": "rnn", "rnn_relu": "rnn", "lstm": "lstm", "gru": "gru"}


def make_cell(kind: str, params: dict[str, np.ndarray]) -> nn.Cell:
    """A float64 cell of ``kind`` holding ``params`` (sizes read from their shapes)."""
    hidden, features = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    if kind.startswith("rnn"):
        cell = nn.RNNCell(features, hidden, nonlinearity=kind[4:], dtype=np.float64)
    else:
        cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](features, hidden, dtype=np.float64)
    cell.load_state_dict(params)
    return cell


@contextlib.contextmanager
def parameters_replaced(module: nn.Module, tensors: dict[str, ts.Tensor]) -> Iterator[None]:
    """Run with ``module``'s parameters ``name`` replaced by ``tensors[name]``.

    ``gradcheck`` differentiates its own float64 copies of the inputs, so a weight can only be
    checked if the module computes with that very tensor. Every object holding the parameter
    (the module, and for a layer the private cell that shares it) sees the replacement; the
    registries are bypassed so nothing is re-ordered, and everything is restored afterwards.
    """
    own = dict(module.named_parameters())
    holders = [m for m in module.modules()]
    holders += [cell for m in module.modules() for cell in getattr(m, "_cells", [])]
    swaps = [
        (holder, attr, tensors[name], own[name])
        for name in tensors
        for holder in holders
        for attr, value in list(vars(holder).items())
        if value is own[name]
    ]
    assert {id(s[3]) for s in swaps} == {id(own[name]) for name in tensors}
    for holder, attr, new, _ in swaps:
        object.__setattr__(holder, attr, new)
    try:
        yield
    finally:
        for holder, attr, _, old in swaps:
            object.__setattr__(holder, attr, old)


def leaf(array: np.ndarray) -> ts.Tensor:
    return ts.tensor(array, dtype=np.float64, requires_grad=True)


# --------------------------------------------------------------------------- numpy reference


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def numpy_step(kind: str, p: dict[str, np.ndarray], x: np.ndarray, state):
    """One step in plain numpy, gate by gate, from the course's equations (column vectors
    written as rows: U·x is ``x @ U.T``)."""
    H = p["weight_hh"].shape[1]

    def block(k: int, x_part: np.ndarray, h_part: np.ndarray) -> np.ndarray:
        rows = slice(k * H, (k + 1) * H)
        return (
            x_part @ p["weight_ih"][rows].T
            + p["bias_ih"][rows]
            + h_part @ p["weight_hh"][rows].T
            + p["bias_hh"][rows]
        )

    if kind == "rnn_tanh":
        return np.tanh(block(0, x, state))
    if kind == "rnn_relu":
        return np.maximum(block(0, x, state), 0)
    if kind == "lstm":
        h, c = state
        i, f = sigmoid(block(0, x, h)), sigmoid(block(1, x, h))
        c_tilde, o = np.tanh(block(2, x, h)), sigmoid(block(3, x, h))
        c_new = f * c + i * c_tilde
        return o * np.tanh(c_new), c_new
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("rzn")}
    r, z = sigmoid(block(0, x, state)), sigmoid(block(1, x, state))
    hidden_n = state @ p["weight_hh"][rows["n"]].T + p["bias_hh"][rows["n"]]
    n = np.tanh(x @ p["weight_ih"][rows["n"]].T + p["bias_ih"][rows["n"]] + r * hidden_n)
    return (1 - z) * n + z * state


def numpy_central_differences(f: Callable[[], float], array: np.ndarray, eps=1e-6) -> np.ndarray:
    """∂f/∂array by central differences, perturbing ``array`` in place (then restoring it)."""
    grad = np.zeros_like(array)
    for j in np.ndindex(array.shape):
        keep = array[j]
        array[j] = keep + eps
        up = f()
        array[j] = keep - eps
        down = f()
        array[j] = keep
        grad[j] = (up - down) / (2 * eps)
    return grad


@st.composite
def cell_case(draw: st.DrawFn, kind: str):
    """Parameters, an input (B, D) and a state for a cell of ``kind``, kept off relu's kink."""
    params = draw(tst.cell_params(KINDS[kind]), label="params")
    H, D = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    B = draw(st.integers(1, 3), label="batch")
    x = draw(tst.arrays((B, D), elements=tst.reals(-1, 1)), label="x")
    h = draw(tst.arrays((B, H), elements=tst.reals(-1, 1)), label="h")
    state = (h, draw(tst.arrays((B, H), elements=tst.reals(-1, 1)), label="c"))
    if kind != "lstm":
        state = h
    if kind == "rnn_relu":
        pre = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T
        pre += params["bias_hh"]
        # Central differences across relu's kink measure nothing; move the bias instead of
        # rejecting the example (a constructive fix, §2.1.4).
        params["bias_hh"] += np.where(np.abs(pre) < 0.05, 0.1, 0.0).max(axis=0)
        pre = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T
        pre += params["bias_hh"]
        if (np.abs(pre) < 0.01).any():
            params["bias_hh"] += 1.0  # every unit active: relu is the identity there
    return params, x, state


# --------------------------------------------------------------------------- gradcheck


def check_cell_gradients(kind, params, x, state, pick=lambda out: out):
    """gradcheck of ``pick(cell(x, state))`` w.r.t. x, the state and every parameter."""
    cell = make_cell(kind, params)
    states = list(state) if kind == "lstm" else [state]
    inputs = [leaf(x), *[leaf(s) for s in states], *[leaf(params[n]) for n in PARAMS]]

    def fn(x, *rest):
        given_state = (rest[0], rest[1]) if kind == "lstm" else rest[0]
        weights = dict(zip(PARAMS, rest[len(states) :], strict=True))
        with parameters_replaced(cell, weights):
            return pick(cell(x, given_state))

    assert gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "gru"])
@settings(max_examples=15)
@given(data=st.data())
def test_cell_gradcheck_wrt_input_state_and_every_parameter(kind, data):
    params, x, state = data.draw(cell_case(kind))
    check_cell_gradients(kind, params, x, state)


@pytest.mark.parametrize(
    "loss_on",
    [
        pytest.param(lambda out: out[0], id="h-only"),
        pytest.param(lambda out: out[1], id="c-only"),
        pytest.param(lambda out: out, id="h-and-c"),
    ],
)
@settings(max_examples=10)
@given(data=st.data())
def test_lstm_cell_gradcheck_with_loss_on_h_c_and_both(loss_on, data):
    params, x, state = data.draw(cell_case("lstm"))
    check_cell_gradients("lstm", params, x, state, pick=loss_on)


# --------------------------------------------------------------------------- numpy oracle


def as_arrays(out) -> list[np.ndarray]:
    """A cell's result (a Tensor, an ndarray, or a tuple of them) as a list of ndarrays."""
    parts = out if isinstance(out, tuple) else (out,)
    return [p.data if isinstance(p, ts.Tensor) else p for p in parts]


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=10)
@given(data=st.data())
def test_cell_equals_numpy_equations_forward_and_gradients(kind, data):
    params, x, state = data.draw(cell_case(kind))
    cell = make_cell(kind, params)
    states = [state] if kind != "lstm" else list(state)
    outs = as_arrays(numpy_step(kind, params, x, state if kind != "lstm" else tuple(states)))
    upstream = [np.linspace(-1.5, 1.3, o.size).reshape(o.shape) for o in outs]

    x_t, state_t = leaf(x), [leaf(s) for s in states]
    result = cell(x_t, tuple(state_t) if kind == "lstm" else state_t[0])
    for ours, theirs in zip(as_arrays(result), outs, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)

    results = result if isinstance(result, tuple) else (result,)
    loss = sum((r * ts.tensor(v)).sum() for r, v in zip(results, upstream, strict=True))
    loss.backward()
    ours = [x_t.grad.data, *[s.grad.data for s in state_t]]
    ours += [getattr(cell, n).grad.data for n in PARAMS]

    def numpy_loss() -> float:
        given_state = tuple(states) if kind == "lstm" else states[0]
        out = as_arrays(numpy_step(kind, params, x, given_state))
        return float(sum((o * v).sum() for o, v in zip(out, upstream, strict=True)))

    expected = [numpy_central_differences(numpy_loss, a) for a in [x, *states]]
    expected += [numpy_central_differences(numpy_loss, params[n]) for n in PARAMS]
    names = ["x", *[f"state[{k}]" for k in range(len(states))], *PARAMS]
    assert_grads_close(ours, expected, rtol=1e-6, atol=1e-8, names=names)


# --------------------------------------------------------------------------- gate order


def constant_cell(kind: str, D: int = 2, H: int = 3) -> nn.Cell:
    """A cell with small random weights and zero biases, ready to have one gate saturated."""
    cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](
        D, H, dtype=np.float64, rng=np.random.default_rng(7)
    )
    cell.bias_ih.data[:] = 0
    cell.bias_hh.data[:] = 0
    return cell


def test_lstm_gate_order_is_i_f_g_o():
    x = ts.tensor(np.random.default_rng(1).uniform(-1, 1, (2, 2)))
    h = ts.tensor(np.full((2, 3), 0.5))
    c = ts.tensor(np.array([[0.3, -0.7, 0.9], [0.1, 0.2, -0.4]]))
    H = 3

    # Block 1 (f) open and block 0 (i) shut: the cell state passes through unchanged.
    cell = constant_cell("lstm")
    cell.bias_ih.data[H : 2 * H] = 50
    cell.bias_ih.data[0:H] = -50
    _, c_new = cell(x, (h, c))
    np.testing.assert_allclose(c_new.data, c.data, atol=1e-12)

    # Block 0 (i) open, block 1 (f) shut: C_t is the candidate tanh(block 2) alone.
    cell = constant_cell("lstm")
    cell.bias_ih.data[0:H] = 50
    cell.bias_ih.data[H : 2 * H] = -50
    _, c_new = cell(x, (h, c))
    g = np.tanh(
        x.data @ cell.weight_ih.data[2 * H : 3 * H].T
        + h.data @ cell.weight_hh.data[2 * H : 3 * H].T
    )
    np.testing.assert_allclose(c_new.data, g, atol=1e-12)

    # Block 3 (o) shut: h_t = 0 whatever the cell state.
    cell = constant_cell("lstm")
    cell.bias_ih.data[3 * H :] = -50
    h_new, c_new = cell(x, (h, c))
    np.testing.assert_allclose(h_new.data, 0, atol=1e-12)
    assert np.abs(c_new.data).min() > 1e-3


def test_gru_gate_order_is_r_z_n():
    x = ts.tensor(np.random.default_rng(2).uniform(-1, 1, (2, 2)))
    h = ts.tensor(np.array([[0.3, -0.7, 0.9], [0.1, 0.2, -0.4]]))
    H = 3

    # Block 1 (z) open: h_t = h_{t−1}.
    cell = constant_cell("gru")
    cell.bias_ih.data[H : 2 * H] = 50
    np.testing.assert_allclose(cell(x, h).data, h.data, atol=1e-12)

    # Block 1 (z) shut and block 0 (r) shut: h_t = n_t = tanh(W_in·x + b_in), h is ignored
    # inside n — including b_hn, which the reset gate multiplies.
    cell = constant_cell("gru")
    cell.bias_ih.data[0 : 2 * H] = -50
    cell.bias_hh.data[2 * H :] = 5.0
    n = np.tanh(x.data @ cell.weight_ih.data[2 * H :].T)
    np.testing.assert_allclose(cell(x, h).data, n, atol=1e-12)

    # The same with r open: b_hn now counts.
    cell.bias_ih.data[0:H] = 50
    hn = h.data @ cell.weight_hh.data[2 * H :].T + 5.0
    n = np.tanh(x.data @ cell.weight_ih.data[2 * H :].T + hn)
    np.testing.assert_allclose(cell(x, h).data, n, atol=1e-12)


# --------------------------------------------------------------------------- a user's cell


class MinimalGatedUnit(nn.Cell):
    """A user-style cell (Zhou et al.'s minimal gated unit), written against the protocol."""

    def __init__(self, input_size: int, hidden_size: int, rng=None) -> None:
        super().__init__(input_size, hidden_size)
        self.gate = nn.Linear(input_size + hidden_size, hidden_size, dtype=np.float64, rng=rng)
        self.candidate = nn.Linear(input_size + hidden_size, hidden_size, dtype=np.float64, rng=rng)

    def forward(self, x, h=None):
        x, h = self.check_input(x), self.check_state(x, h)
        f = self.gate(ts.cat([x, h], axis=1)).sigmoid()  # forget gate f_t
        h_tilde = self.candidate(ts.cat([x, f * h], axis=1)).tanh()  # candidate h̃_t
        return (1 - f) * h + f * h_tilde  # h_t


@settings(max_examples=8)
@given(x=tst.sequences(max_T=4, max_batch=2, max_features=3), H=st.integers(1, 3))
def test_user_cell_plugs_into_recurrent_and_passes_gradcheck(x, H):
    cell = MinimalGatedUnit(x.shape[2], H, rng=np.random.default_rng(0))
    driver = nn.Recurrent(cell)
    names = [name for name, _ in driver.named_parameters()]
    assert names == [
        "cell.gate.weight",
        "cell.gate.bias",
        "cell.candidate.weight",
        "cell.candidate.bias",
    ]
    weights = [leaf(p.data) for p in driver.parameters()]
    h0 = leaf(np.full((x.shape[1], H), 0.25))

    def fn(x, h0, *ws):
        with parameters_replaced(driver, dict(zip(names, ws, strict=True))):
            outputs, final = driver(x, h0)
        return outputs, final

    assert gradcheck(fn, [leaf(x), h0, *weights], atol=1e-7, rtol=1e-5)


def test_user_cell_trains_with_recurrent():
    """Learn to output the running mean of the input: the loss must fall a lot."""
    rng = np.random.default_rng(3)
    cell = MinimalGatedUnit(1, 4, rng=rng)
    driver, readout = nn.Recurrent(cell), nn.Linear(4, 1, dtype=np.float64, rng=rng)
    params = [*driver.parameters(), *readout.parameters()]
    x = rng.uniform(-1, 1, (6, 8, 1))
    target = ts.tensor(np.cumsum(x, axis=0) / np.arange(1, 7)[:, None, None])
    losses = []
    for _ in range(60):
        outputs, _ = driver(ts.tensor(x))
        loss = ((readout(outputs) - target) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("cls, gates", [(nn.RNNCell, 1), (nn.LSTMCell, 4), (nn.GRUCell, 3)])
def test_parameters_have_pytorch_names_shapes_init_and_dtype(cls, gates):
    cell = cls(3, 5, rng=np.random.default_rng(0))
    shapes = {name: p.shape for name, p in cell.named_parameters()}
    assert shapes == {
        "weight_ih": (gates * 5, 3),
        "weight_hh": (gates * 5, 5),
        "bias_ih": (gates * 5,),
        "bias_hh": (gates * 5,),
    }
    for p in cell.parameters():
        assert p.dtype == np.float32 and p.requires_grad
    values = np.concatenate([p.data.ravel() for p in cell.parameters()])
    bound = 1 / np.sqrt(5)
    assert np.abs(values).max() <= bound
    assert values.max() > 0.8 * bound and values.min() < -0.8 * bound  # U(−1/√H, 1/√H)
    again = cls(3, 5, rng=np.random.default_rng(0))
    for a, b in zip(cell.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    ts.manual_seed(4)
    first = cls(3, 5).state_dict()
    ts.manual_seed(4)
    assert all(np.array_equal(first[k], v) for k, v in cls(3, 5).state_dict().items())
    assert cls(3, 5, dtype=np.float64).weight_ih.dtype == np.float64

    bare = cls(3, 5, bias=False)
    assert [name for name, _ in bare.named_parameters()] == ["weight_ih", "weight_hh"]
    assert bare.bias_ih is None and "bias=False" in repr(bare)
    x = ts.randn(2, 3)
    state = bare(x)
    assert bare.output(state).shape == (2, 5)


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_initial_state_is_zeros_and_none_means_it(cls):
    cell = cls(3, 4, dtype=np.float64)
    zero = cell.initial_state(2)
    parts = zero if isinstance(zero, tuple) else (zero,)
    assert len(parts) == (2 if cls is nn.LSTMCell else 1)
    for part in parts:
        assert part.shape == (2, 4) and part.dtype == np.float64 and not part.data.any()
    assert cell.initial_state(2, dtype=np.float32).__class__ is zero.__class__
    x = ts.randn(2, 3, dtype=np.float64)
    for a, b in zip(as_arrays(cell(x)), as_arrays(cell(x, zero)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert cell.hidden_size == 4
    assert cell.output(cell(x)).shape == (2, 4)


def test_reprs_follow_pytorch():
    assert repr(nn.RNNCell(3, 4)) == "RNNCell(3, 4)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"
    assert repr(nn.GRUCell(3, 4)) == "GRUCell(3, 4)"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_bad_shapes_are_errors_naming_the_cell_and_shapes(cls):
    cell = cls(3, 4)
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: input has shape \(2, 5\).*input_size is 3"):
        cell(ts.randn(2, 5))
    with pytest.raises(ValueError, match=rf"{name}: input must have 2 dimensions.*\(3,\)"):
        cell(ts.randn(3))
    with pytest.raises(ValueError, match=rf"{name}: input must have 2 dimensions.*\(1, 2, 3\)"):
        cell(ts.randn(1, 2, 3))
    bad = ts.randn(2, 5)
    state = (bad, ts.randn(2, 4)) if cls is nn.LSTMCell else bad
    with pytest.raises(ValueError, match=rf"{name}: h has shape \(2, 5\).*\(2, 4\)"):
        cell(ts.randn(2, 3), state)


def test_lstm_state_must_be_a_pair_with_c_checked_too():
    cell = nn.LSTMCell(3, 4)
    with pytest.raises(TypeError, match="LSTMCell: state must be a pair"):
        cell(ts.randn(2, 3), ts.randn(2, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: c has shape \(3, 4\).*\(2, 4\)"):
        cell(ts.randn(2, 3), (ts.randn(2, 4), ts.randn(3, 4)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="LSTMCell: hidden_size must be a positive int"):
        nn.LSTMCell(3, 0)
