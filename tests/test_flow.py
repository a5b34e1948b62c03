"""viz.flow: gradient flow through time, checked against BPTT and Jacobians built by hand."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.viz.flow import (
    FlowRecorder,
    GradientFlow,
    gradient_flow,
    jacobian_norms,
    jacobian_product_spectrum,
    step_jacobians,
)

T, B, D, H = 7, 3, 2, 4


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def rnn_model(seed=0, scale=1.0, H=H, dtype=np.float64):
    cell = nn.RNNCell(D, H, dtype=dtype, rng=np.random.default_rng(seed))
    cell.weight_hh.data *= scale
    return nn.Recurrent(cell)


def lstm_model(seed=0, dtype=np.float64):
    return nn.Recurrent(nn.LSTMCell(D, H, dtype=dtype, rng=np.random.default_rng(seed)))


def inputs(seed=1, T=T, B=B):
    return np.random.default_rng(seed).standard_normal((T, B, D))


def numpy_rnn(cell, x):
    """s_t = tanh(U·x_t + W·s_{t−1} + β) for every t, rows are examples: (T, B, H)."""
    U, W = cell.weight_ih.data, cell.weight_hh.data
    beta = cell.bias_ih.data + cell.bias_hh.data
    s, states = np.zeros((x.shape[1], W.shape[0])), []
    for x_t in x:
        s = np.tanh(x_t @ U.T + s @ W.T + beta)
        states.append(s)
    return np.stack(states)


def numpy_lstm_step(cell, x_t, h, c, c_bump=0.0):
    """One LSTM step; ``c_bump`` is added to C_t before h_t = o_t ⊙ tanh(C_t) reads it."""
    Hs = h.shape[1]
    a = x_t @ cell.weight_ih.data.T + h @ cell.weight_hh.data.T
    a = a + cell.bias_ih.data + cell.bias_hh.data
    i, f = sigmoid(a[:, :Hs]), sigmoid(a[:, Hs : 2 * Hs])
    g, o = np.tanh(a[:, 2 * Hs : 3 * Hs]), sigmoid(a[:, 3 * Hs :])
    c_new = f * c + i * g + c_bump
    return o * np.tanh(c_new), c_new, (i, f, g, o)


# --------------------------------------------------------------------------- ∂L/∂h_t


def test_rnn_hidden_norms_equal_hand_derived_bptt():
    """L = Σ_t ⟨C_t, s_t⟩ + ½ Σ_b (v·s_T)²: a loss at every step and one at the end."""
    model, x = rnn_model(), inputs()
    rng = np.random.default_rng(2)
    C, v = rng.standard_normal((T, B, H)), rng.standard_normal(H)

    def loss_fn(outputs, final):
        return (outputs * C).sum() + 0.5 * ((final @ ts.tensor(v)) ** 2).sum()

    flow = gradient_flow(model, x, loss_fn)

    s, W = numpy_rnn(model.cell, x), model.cell.weight_hh.data
    delta = C[-1] + (s[-1] @ v)[:, None] * v  # ∂L/∂s_T
    expected = [delta]
    for t in range(T - 2, -1, -1):
        # ∂L/∂s_t = C_t + Wᵀ((1 − s_{t+1}²) ⊙ ∂L/∂s_{t+1}), in rows: (δ ⊙ (1 − s²)) W
        delta = C[t] + (delta * (1 - s[t + 1] ** 2)) @ W
        expected.append(delta)
    expected = np.stack(expected[::-1])

    np.testing.assert_allclose(flow.hidden_grads, expected, rtol=0, atol=1e-12)
    per_example = np.linalg.norm(expected, axis=2)
    np.testing.assert_allclose(flow.per_example_hidden, per_example, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(flow.hidden_norms, per_example.mean(axis=1), rtol=1e-10)
    assert flow.cell_norms is None and flow.per_example_cell is None
    assert flow.hidden_norms.shape == (T,) and flow.per_example_hidden.shape == (T, B)


def test_lstm_norms_equal_finite_differences_of_a_hand_unrolled_loop():
    """Perturb h_t (or C_t) inside a numpy LSTM loop; central differences, step 1e-6.

    The loss is quadratic-ish and smooth, so the truncation error is ~ε²·|L'''| ≈ 1e-12 and
    the rounding error ~1e-16·|L|/ε ≈ 1e-10: the 1e-8 tolerance holds with margin.
    """
    Tl = 4
    model, x = lstm_model(seed=3), inputs(seed=4, T=Tl, B=2)
    cell = model.cell
    v = np.random.default_rng(5).standard_normal(H)

    def loss_of(h_T):  # per example, summed: L = Σ_b tanh(v·h_T)
        return np.tanh(h_T @ v).sum()

    eps = 1e-6
    numeric = {"h": np.zeros((Tl, 2, H)), "c": np.zeros((Tl, 2, H))}
    for which in ("h", "c"):
        for t in range(Tl):
            for b in range(2):
                for j in range(H):
                    bump = np.zeros(H)
                    bump[j] = eps
                    plus = _run_one(cell, x, t, which, b, bump, loss_of)
                    minus = _run_one(cell, x, t, which, b, -bump, loss_of)
                    numeric[which][t, b, j] = (plus - minus) / (2 * eps)

    flow = gradient_flow(model, x, lambda out, state: (state[0] @ ts.tensor(v)).tanh().sum())
    np.testing.assert_allclose(flow.hidden_grads, numeric["h"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(flow.cell_grads, numeric["c"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        flow.per_example_cell, np.linalg.norm(numeric["c"], axis=2), rtol=0, atol=1e-8
    )
    assert flow.loss == pytest.approx(_run_one(cell, x, -1, "h", 0, 0.0, loss_of), rel=1e-12)


def _run_one(cell, x, step, which, example, delta, loss_of):
    """L after a numpy LSTM loop with ``delta`` added to example's h_t or C_t at ``step``.

    C_t is bumped where it is made, before h_t reads it: ∂L/∂C_t is the total derivative,
    through h_t = o_t ⊙ tanh(C_t) and through C_{t+1} (BPTT's δC_t).
    """
    h = c = np.zeros((x.shape[1], H))
    for t in range(x.shape[0]):
        bump = np.zeros_like(h)
        if t == step:
            bump[example] = delta
        h, c, _ = numpy_lstm_step(cell, x[t], h, c, bump if which == "c" else 0.0)
        if which == "h":
            h = h + bump
    return loss_of(h)


@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.2, 4.0),
    hidden=st.integers(1, 6),
    steps=st.integers(2, 12),
)
def test_rnn_backward_step_respects_the_pascanu_bound(seed, scale, hidden, steps):
    """‖∂L/∂h_{t−1}‖ ≤ ‖W‖₂ · max|1 − h_t²| · ‖∂L/∂h_t‖, per example, loss at the end only."""
    model = rnn_model(seed=seed, scale=scale, H=hidden)
    x = np.random.default_rng(seed + 1).standard_normal((steps, 2, D)) * 2
    v = np.random.default_rng(seed + 2).standard_normal(hidden)
    flow = gradient_flow(model, x, lambda out, h: (h @ ts.tensor(v)).sum())
    s = numpy_rnn(model.cell, x)
    W_norm = np.linalg.norm(model.cell.weight_hh.data, 2)
    bound = W_norm * np.max(np.abs(1 - s**2), axis=2) * flow.per_example_hidden  # (T, B)
    assert np.all(flow.per_example_hidden[:-1] <= bound[1:] * (1 + 1e-12) + 1e-300)


# --------------------------------------------------------------------------- Jacobians


def numpy_lstm_jacobian(cell, x_t, h, c):
    """∂(h_t, C_t)/∂(h_{t−1}, C_{t−1}) per example from the note's §1.4 formulas."""
    Hs = h.shape[1]
    h_new, c_new, (i, f, g, o) = numpy_lstm_step(cell, x_t, h, c)
    W = cell.weight_hh.data
    Wi, Wf, Wg, Wo = W[:Hs], W[Hs : 2 * Hs], W[2 * Hs : 3 * Hs], W[3 * Hs :]
    out = []
    for b in range(h.shape[0]):
        tc = np.tanh(c_new[b])
        dc_dh = (
            np.diag(c[b] * f[b] * (1 - f[b])) @ Wf
            + np.diag(g[b] * i[b] * (1 - i[b])) @ Wi
            + np.diag(i[b] * (1 - g[b] ** 2)) @ Wg
        )
        dh_dh = np.diag(tc * o[b] * (1 - o[b])) @ Wo + np.diag(o[b] * (1 - tc**2)) @ dc_dh
        dh_dc = np.diag(o[b] * (1 - tc**2) * f[b])
        out.append(np.block([[dh_dh, dh_dc], [dc_dh, np.diag(f[b])]]))
    return np.stack(out), h_new, c_new


def test_rnn_step_jacobians_are_diag_one_minus_h_squared_times_w():
    model, x = rnn_model(seed=6), inputs(seed=7)
    s, W = numpy_rnn(model.cell, x), model.cell.weight_hh.data
    expected = (1 - s**2)[..., :, None] * W  # J_t[b] = diag(1 − s_t[b]²) W
    jacobians = step_jacobians(model, x)
    np.testing.assert_allclose(jacobians, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        jacobian_norms(model, x), np.linalg.norm(expected, 2, axis=(-2, -1)), rtol=1e-12
    )
    np.testing.assert_array_equal(jacobians, step_jacobians(model, x, part="h"))


def test_lstm_step_jacobians_match_the_formulas_for_the_full_state():
    model, x = lstm_model(seed=8), inputs(seed=9)
    h = c = np.zeros((B, H))
    expected = []
    for x_t in x:
        jac, h, c = numpy_lstm_jacobian(model.cell, x_t, h, c)
        expected.append(jac)
    expected = np.stack(expected)
    jacobians = step_jacobians(model, x)
    assert jacobians.shape == (T, B, 2 * H, 2 * H)
    np.testing.assert_allclose(jacobians, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        jacobian_norms(model, x), np.linalg.norm(expected, 2, axis=(-2, -1)), rtol=1e-12
    )
    # part="h": the top-left block, ∂h_t/∂h_{t−1} at constant C_{t−1}
    np.testing.assert_allclose(
        step_jacobians(model, x, part="h"), expected[:, :, :H, :H], rtol=0, atol=1e-13
    )


@pytest.mark.parametrize("make", [rnn_model, lstm_model])
def test_product_spectrum_equals_svd_of_the_numpy_product(make):
    model, x = make(seed=10), inputs(seed=11)
    jacobians = step_jacobians(model, x)
    product = np.broadcast_to(np.eye(jacobians.shape[-1]), jacobians.shape[1:])
    expected = []
    for k in range(1, T + 1):
        product = product @ jacobians[T - k]  # ∂z_T/∂z_{T−k} = J_T ⋯ J_{T−k+1}
        expected.append(np.linalg.svd(product, compute_uv=False))
    expected = np.stack(expected)
    per_example = jacobian_product_spectrum(model, x, per_example=True)
    np.testing.assert_allclose(per_example, expected, rtol=1e-10, atol=1e-300)
    mean = jacobian_product_spectrum(model, x)
    np.testing.assert_allclose(mean, np.exp(np.log(expected).mean(axis=1)), rtol=1e-10)
    assert np.all(np.diff(mean, axis=1) <= 0)  # σ₁ ≥ σ₂ ≥ …
    assert jacobian_product_spectrum(model, x, max_lag=3).shape == (3, mean.shape[1])
    with pytest.raises(ValueError, match=r"max_lag must be an int in \[1, 7\]"):
        jacobian_product_spectrum(model, x, max_lag=0)


def test_rnn_flow_is_the_jacobians_transposed_applied_step_by_step():
    """With the loss at T only, ∂L/∂h_{t−1} = J_tᵀ ∂L/∂h_t: flow and Jacobians agree exactly."""
    model, x = rnn_model(seed=12), inputs(seed=13)
    flow = gradient_flow(model, x, lambda out, h: (h**2).sum())
    jacobians = step_jacobians(model, x)
    for t in range(1, T):
        back = np.einsum("bij,bi->bj", jacobians[t], flow.hidden_grads[t])
        np.testing.assert_allclose(flow.hidden_grads[t - 1], back, rtol=0, atol=1e-13)


# --------------------------------------------------------------------------- any cell


class MinimalGatedUnit(nn.Cell):
    """Zhou et al.'s minimal gated unit: one gate f_t, h_t = (1 − f_t)⊙h_{t−1} + f_t⊙h̃_t."""

    def __init__(self, input_size, hidden_size, rng):
        super().__init__(input_size, hidden_size)
        self.gate = nn.Linear(input_size + hidden_size, hidden_size, dtype=np.float64)
        self.candidate = nn.Linear(input_size + hidden_size, hidden_size, dtype=np.float64)
        for p in self.parameters():
            p.data[...] = rng.uniform(-0.8, 0.8, p.shape)

    def forward(self, x, h=None):
        x, h = self.check_input(x), self.check_state(x, h)
        f = self.gate(ts.cat([x, h], axis=1)).sigmoid()
        h_tilde = self.candidate(ts.cat([x, f * h], axis=1)).tanh()
        return (1 - f) * h + f * h_tilde


class PairCell(nn.Cell):
    """A user cell whose state is (c, h) — h second — to test how h is found."""

    def __init__(self, rng):
        super().__init__(D, H)
        self.inner = nn.LSTMCell(D, H, dtype=np.float64, rng=rng)

    def initial_state(self, batch_size, dtype=None):
        h, c = self.inner.initial_state(batch_size, dtype)
        return c, h

    def output(self, state):
        return state[1]

    def forward(self, x, state=None):
        h, c = self.inner(x, None if state is None else (state[1], state[0]))
        return c, h


def finite_difference_flow(cell, x, loss_of_h, element, eps=1e-6):
    """∂L/∂(state element) per step by central differences, running the cell itself."""
    steps, batch = x.shape[:2]
    with ts.no_grad():
        probe = cell(ts.tensor(x[0]), None)
    width = (probe if isinstance(probe, ts.Tensor) else probe[element]).shape[1]
    result = np.zeros((steps, batch, width))
    for t in range(steps):
        for b in range(batch):
            for j in range(width):
                values = []
                for sign in (1, -1):
                    state = None
                    with ts.no_grad():
                        for k in range(steps):
                            state = cell(ts.tensor(x[k]), state)
                            if k == t:
                                parts = [state] if isinstance(state, ts.Tensor) else list(state)
                                bumped = parts[element].data.copy()
                                bumped[b, j] += sign * eps
                                parts[element] = ts.tensor(bumped)
                                state = parts[0] if isinstance(state, ts.Tensor) else tuple(parts)
                        values.append(loss_of_h(cell.output(state).data))
                result[t, b, j] = (values[0] - values[1]) / (2 * eps)
    return result


def test_a_user_defined_cell_is_measured():
    cell = MinimalGatedUnit(D, 3, np.random.default_rng(14))
    x = inputs(seed=15, T=4, B=2)
    flow = gradient_flow(nn.Recurrent(cell), x, lambda out, h: (h**2).sum())
    numeric = finite_difference_flow(cell, x, lambda h: np.sum(h**2), element=0)
    np.testing.assert_allclose(flow.hidden_grads, numeric, rtol=0, atol=1e-8)
    assert flow.cell_norms is None
    jacobians = step_jacobians(nn.Recurrent(cell), x)
    assert jacobians.shape == (4, 2, 3, 3)


def test_h_is_the_state_element_that_output_returns():
    cell = PairCell(np.random.default_rng(16))
    x = inputs(seed=17, T=3, B=2)
    flow = gradient_flow(nn.Recurrent(cell), x, lambda out, state: (state[1] ** 2).sum())
    loss_of_h = lambda h: np.sum(h**2)  # noqa: E731
    np.testing.assert_allclose(
        flow.hidden_grads, finite_difference_flow(cell, x, loss_of_h, 1), atol=1e-8
    )
    # C_t feeds h_t inside the step, so a bump after the step misses a path: compare the
    # cell part with the LSTM it wraps instead (same weights, state (h, C)).
    lstm = gradient_flow(nn.Recurrent(cell.inner), x, lambda out, state: (state[0] ** 2).sum())
    np.testing.assert_array_equal(flow.cell_grads, lstm.cell_grads)
    np.testing.assert_array_equal(flow.hidden_grads, lstm.hidden_grads)


def test_an_output_that_is_not_a_state_element_is_a_clear_error():
    class ReadOut(PairCell):
        def output(self, state):
            return state[1] * 1.0

    model = nn.Recurrent(ReadOut(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="output\\(state\\) returned a tensor that is not one"):
        gradient_flow(model, inputs(T=2), lambda out, state: out.sum())


def test_gru_flow_matches_finite_differences():
    cell = nn.GRUCell(D, 3, dtype=np.float64, rng=np.random.default_rng(18))
    x = inputs(seed=19, T=4, B=2)
    flow = gradient_flow(nn.GRU(D, 3, dtype=np.float64), x, lambda out, h: out.sum())
    assert flow.hidden_norms.shape == (4,)
    flow = gradient_flow(nn.Recurrent(cell), x, lambda out, h: (h**3).sum())
    numeric = finite_difference_flow(cell, x, lambda h: np.sum(h**3), element=0)
    np.testing.assert_allclose(flow.hidden_grads, numeric, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- the layers


def test_lstm_layer_measures_the_same_as_its_cell_in_a_recurrent():
    layer = nn.LSTM(D, H, dtype=np.float64, rng=np.random.default_rng(20))
    x = inputs(seed=21)
    loss = lambda out, state: (out[-1] ** 2).sum()  # noqa: E731
    from_layer = gradient_flow(layer, x, loss)
    from_cell = gradient_flow(nn.Recurrent(layer.cell(0)), x, loss)
    np.testing.assert_array_equal(from_layer.hidden_grads, from_cell.hidden_grads)
    np.testing.assert_array_equal(from_layer.cell_grads, from_cell.cell_grads)
    np.testing.assert_array_equal(
        step_jacobians(layer, x), step_jacobians(nn.Recurrent(layer.cell(0)), x)
    )


def test_stacked_bidirectional_layer_measures_the_top_reverse_direction():
    layer = nn.RNN(D, H, num_layers=2, bidirectional=True, dtype=np.float64)
    x = inputs(seed=22)
    loss = lambda out, h_n: (out**2).sum() + h_n.sum()  # noqa: E731
    flow = gradient_flow(layer, x, loss)
    # The same derivative read another way: retain_grad on a copy's kept states, backward.
    twin = nn.RNN(D, H, num_layers=2, bidirectional=True, dtype=np.float64)
    twin.load_state_dict(layer.state_dict())
    out, h_n = twin(ts.tensor(x), keep_states=True)
    for state in twin.states[-1]:
        state.retain_grad()
    loss(out, h_n).backward()
    expected = np.stack([state.grad.data for state in twin.states[-1]])
    np.testing.assert_allclose(flow.hidden_grads, expected, rtol=0, atol=1e-13)
    # Jacobians of the reverse direction: J_t = ∂h_t/∂h_{t+1} = diag(1 − h_t²) W
    W = layer.cell(1, 1).weight_hh.data
    s = np.stack([state.data for state in twin.states[-1]])
    np.testing.assert_allclose(
        step_jacobians(layer, x), (1 - s**2)[..., :, None] * W, rtol=0, atol=1e-13
    )
    # the spectrum runs from the last step read, position 0, towards position T−1
    spectrum = jacobian_product_spectrum(layer, x, per_example=True, max_lag=1)
    np.testing.assert_allclose(
        spectrum[0], np.linalg.svd((1 - s[0] ** 2)[:, :, None] * W, compute_uv=False)
    )


def test_the_users_model_is_untouched():
    layer = nn.LSTM(D, H, num_layers=2, dropout=0.5, rng=np.random.default_rng(23))
    layer.weight_hh_l0.grad = ts.tensor(np.ones((4 * H, H), dtype=np.float32))
    layer.weight_hh_l1.requires_grad_(False)
    before = {name: value.copy() for name, value in layer.state_dict().items()}
    rng_state = layer.rng.bit_generator.state if layer.rng is not None else None
    x = inputs(seed=24).astype(np.float32)
    flow = gradient_flow(layer, x, lambda out, state: out.sum(), dtype=np.float64)
    jacobian_product_spectrum(layer, x)
    assert flow.hidden_grads.dtype == np.float64
    after = layer.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(p.dtype == np.float32 for p in layer.parameters())
    assert layer.training and "states" not in vars(layer)
    assert not layer.weight_hh_l1.requires_grad
    np.testing.assert_array_equal(layer.weight_hh_l0.grad.data, 1.0)
    assert all(p.grad is None for n, p in layer.named_parameters() if n != "weight_hh_l0")
    if rng_state is not None:
        assert layer.rng.bit_generator.state == rng_state


def test_float64_option_agrees_with_float32_and_computes_in_float64():
    model32 = rnn_model(seed=25, dtype=np.float32)
    x = inputs(seed=26).astype(np.float32)
    loss = lambda out, h: (h**2).sum()  # noqa: E731
    in32, in64 = gradient_flow(model32, x, loss), gradient_flow(model32, x, loss, np.float64)
    np.testing.assert_allclose(in32.hidden_norms, in64.hidden_norms, rtol=1e-4)
    assert not np.array_equal(in32.hidden_grads, in64.hidden_grads)
    model64 = nn.Recurrent(model32.cell).double()
    np.testing.assert_array_equal(gradient_flow(model64, x, loss).hidden_grads, in64.hidden_grads)


def test_bad_models_and_losses_are_clear_errors():
    with pytest.raises(TypeError, match="must be a Recurrent or an RNN/LSTM/GRU layer"):
        gradient_flow(nn.RNNCell(D, H), inputs(), lambda out, h: out.sum())
    model = rnn_model()
    with pytest.raises(ValueError, match=r"scalar Tensor, got shape \(3, 4\)"):
        gradient_flow(model, inputs(), lambda out, h: h)
    with pytest.raises(TypeError, match="scalar Tensor, got float"):
        gradient_flow(model, inputs(), lambda out, h: 1.0)
    with pytest.raises(ValueError, match="part must be 'state' or 'h'"):
        step_jacobians(model, inputs(), part="c")


def test_log_ratio_is_the_mean_log_of_norms_relative_to_the_last_step():
    flow = gradient_flow(lstm_model(), inputs(), lambda out, s: (s[0] ** 2).sum())
    expected = np.mean(np.log10(flow.per_example_cell / flow.per_example_cell[-1]), axis=1)
    np.testing.assert_allclose(flow.log_ratio("cell"), expected)
    assert flow.log_ratio()[-1] == 0.0
    with pytest.raises(ValueError, match="part must be 'hidden' or 'cell'"):
        flow.log_ratio("c")


# --------------------------------------------------------------------------- recording


def test_recorder_records_every_n_steps_on_the_probe_batch():
    model, x = lstm_model(seed=27), inputs(seed=28)
    loss = lambda out, s: (s[0] ** 2).sum()  # noqa: E731
    recorder = FlowRecorder(model, x, loss, every=3)
    optimizer = ts.optim.SGD(model.parameters(), lr=0.5)
    recorded = []
    for step in range(8):
        flow = recorder.step(step)
        if flow is not None:
            recorded.append(step)
            np.testing.assert_array_equal(
                flow.hidden_norms, gradient_flow(model, x, loss, np.float64).hidden_norms
            )
        optimizer.zero_grad()
        _, state = model(ts.tensor(x))
        loss(None, state).backward()
        optimizer.step()
    assert recorded == [0, 3, 6] and recorder.steps.tolist() == [0, 3, 6] and len(recorder) == 3
    assert recorder.hidden.shape == recorder.cell.shape == (3, T)
    assert not np.array_equal(recorder.hidden[0], recorder.hidden[2])  # training changed it
    recorder.step(7, force=True)
    data = json.loads(json.dumps(recorder.to_dict()))
    assert data["steps"] == [0, 3, 6, 7] and len(data["hidden"]) == len(data["cell"]) == 4
    assert data["every"] == 3 and len(data["loss"]) == 4


def test_recorder_without_cell_state_and_bad_every():
    recorder = FlowRecorder(rnn_model(), inputs(), lambda out, h: h.sum(), every=2)
    recorder.step(0)
    assert recorder.cell is None and recorder.to_dict()["cell"] is None
    assert isinstance(recorder.flows[0], GradientFlow)
    with pytest.raises(ValueError, match="every must be a positive int, got 0"):
        FlowRecorder(rnn_model(), inputs(), lambda out, h: h.sum(), every=0)
