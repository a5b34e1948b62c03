"""Sequences: ``Recurrent`` and the RNN / LSTM / GRU layers (anchors-testing §2.4).

The exact oracles come first (float64, 1e-10, no finite-difference noise): backpropagation
through ``Recurrent`` equals a hand-written Python loop of cell calls; T = 1 equals one call;
per-step weight copies' gradients sum to the tied gradient; a batch's gradient is the sum of
its examples'; a padded batch equals each sequence run alone. Then structural properties
(causality, exact zeros at padding) and ``gradcheck`` of every layer configuration.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cells import KINDS, PARAMS, leaf, make_cell, parameters_replaced

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.testing import assert_grads_close, gradcheck
from tinygrad_seq.testing import strategies as tst

EXACT = {"rtol": 1e-10, "atol": 1e-12}
CELL_KINDS = ["rnn_tanh", "lstm", "gru"]


def parts(state) -> list[ts.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def weighted_sum(tensors, seed: int = 0) -> ts.Tensor:
    """Σ ⟨v_k, tensor_k⟩ with fixed non-uniform v_k: every element gets its own weight."""
    rng = np.random.default_rng(seed)
    return sum(
        (t * ts.tensor(rng.uniform(0.5, 1.5, t.shape) * rng.choice([-1, 1], t.shape))).sum()
        for t in tensors
    )


def random_state(kind: str, B: int, H: int, rng: np.random.Generator):
    if kind == "lstm":
        return leaf(rng.uniform(-1, 1, (B, H))), leaf(rng.uniform(-1, 1, (B, H)))
    return leaf(rng.uniform(-1, 1, (B, H)))


@st.composite
def sequence_case(draw: st.DrawFn, kind: str):
    """A cell of ``kind`` (float64, stable weights), a sequence (T, B, D) and an initial state."""
    x = draw(tst.sequences(max_T=5, max_batch=3, max_features=3), label="x")
    params = draw(tst.cell_params(KINDS[kind], input_size=x.shape[2]), label="params")
    seed = draw(st.integers(0, 2**16), label="seed")
    H = params["weight_hh"].shape[1]
    return (
        make_cell(kind, params),
        x,
        random_state(kind, x.shape[1], H, np.random.default_rng(seed)),
    )


def gradients(loss: ts.Tensor, tensors) -> list[np.ndarray]:
    return [g.data for g in ts.grad(loss, list(tensors), allow_unused=True)]


# --------------------------------------------------------------------------- exact oracles


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kind", CELL_KINDS)
@settings(max_examples=12)
@given(data=st.data())
def test_bptt_through_recurrent_equals_a_python_loop_of_cell_calls(kind, reverse, data):
    cell, x, h0 = data.draw(sequence_case(kind))
    x = leaf(x)
    outputs, final = nn.Recurrent(cell, reverse=reverse)(x, h0)

    state, loop_outputs = h0, [None] * x.shape[0]
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in order:
        state = cell(x[t], state)
        loop_outputs[t] = cell.output(state)
    expected = ts.stack(loop_outputs)

    np.testing.assert_array_equal(outputs.data, expected.data)
    for ours, theirs in zip(parts(final), parts(state), strict=True):
        np.testing.assert_array_equal(ours.data, theirs.data)
    wrt = [x, *parts(h0), *cell.parameters()]
    ours = gradients(weighted_sum([outputs, *parts(final)]), wrt)
    theirs = gradients(weighted_sum([expected, *parts(state)]), wrt)
    assert_grads_close(ours, theirs, **EXACT)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_one_step_equals_one_cell_call(kind):
    rng = np.random.default_rng(5)
    cell = make_cell(kind, {n: p.data for n, p in make_cell_like(kind).named_parameters()})
    x, h0 = leaf(rng.uniform(-1, 1, (1, 2, 3))), random_state(kind, 2, 4, rng)
    outputs, final = nn.Recurrent(cell)(x, h0)
    single = cell(x[0], h0)
    np.testing.assert_array_equal(outputs.data[0], cell.output(single).data)
    wrt = [x, *parts(h0), *cell.parameters()]
    assert_grads_close(
        gradients(weighted_sum(parts(final)), wrt), gradients(weighted_sum(parts(single)), wrt)
    )


def make_cell_like(kind: str) -> nn.Cell:
    rng = np.random.default_rng(11)
    if kind == "rnn_tanh":
        return nn.RNNCell(3, 4, dtype=np.float64, rng=rng)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](3, 4, dtype=np.float64, rng=rng)


@pytest.mark.parametrize("kind", CELL_KINDS)
@settings(max_examples=8)
@given(data=st.data())
def test_tied_gradient_is_the_sum_of_per_step_copies(kind, data):
    """Untie the weights: step t gets its own copy. The tied gradient must be their sum."""
    cell, x, h0 = data.draw(sequence_case(kind))
    outputs, final = nn.Recurrent(cell)(ts.tensor(x), h0)
    tied = gradients(weighted_sum([outputs, *parts(final)]), cell.parameters())

    copies = [make_cell(kind, cell.state_dict()) for _ in range(x.shape[0])]
    state, step_outputs = h0, []
    for t, copy in enumerate(copies):
        state = copy(ts.tensor(x[t]), state)
        step_outputs.append(copy.output(state))
    loss = weighted_sum([ts.stack(step_outputs), *parts(state)])
    per_copy = gradients(loss, [p for copy in copies for p in copy.parameters()])
    n = len(PARAMS)
    summed = [sum(per_copy[k::n]) for k in range(n)]
    assert_grads_close(tied, summed, **EXACT, names=list(PARAMS))


@pytest.mark.parametrize("kind", CELL_KINDS)
@settings(max_examples=8)
@given(data=st.data())
def test_batch_gradient_is_the_sum_of_single_sequence_gradients(kind, data):
    cell, x, h0 = data.draw(sequence_case(kind))
    B, H = x.shape[1], cell.hidden_size
    rng = np.random.default_rng(1)
    weights = [rng.uniform(-1.5, 1.5, (x.shape[0], B, H)) for _ in range(1 + len(parts(h0)))]

    def loss(outputs, final, rows):
        """Σ ⟨w, ·⟩ over the outputs and the final state, with the weights of batch ``rows``."""
        tensors = [outputs, *[p.unsqueeze(0) for p in parts(final)]]
        return sum(
            (t * ts.tensor(w[: t.shape[0], rows])).sum()
            for t, w in zip(tensors, weights, strict=True)
        )

    x_t = leaf(x)
    batch = gradients(loss(*nn.Recurrent(cell)(x_t, h0), slice(None)), [x_t, *cell.parameters()])
    summed = [np.zeros_like(g) for g in batch[1:]]
    for b in range(B):
        xb = leaf(x[:, b : b + 1])
        hb = tuple(s[b : b + 1] for s in parts(h0))
        result = nn.Recurrent(cell)(xb, hb if len(hb) > 1 else hb[0])
        grads = gradients(loss(*result, slice(b, b + 1)), [xb, *cell.parameters()])
        np.testing.assert_allclose(grads[0], batch[0][:, b : b + 1], **EXACT)
        summed = [s + g for s, g in zip(summed, grads[1:], strict=True)]
    assert_grads_close(batch[1:], summed, **EXACT, names=list(PARAMS))


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_causality_later_inputs_get_exactly_zero_gradient(kind, reverse):
    rng = np.random.default_rng(6)
    cell = make_cell_like(kind)
    x = leaf(rng.uniform(-1, 1, (5, 2, 3)))
    outputs, _ = nn.Recurrent(cell, reverse=reverse)(x)
    for t in range(5):
        seen = outputs[: t + 1] if not reverse else outputs[t:]
        (g,) = ts.grad(weighted_sum([seen]), [x], retain_graph=True)
        unseen = g.data[t + 1 :] if not reverse else g.data[:t]
        assert (unseen == 0).all(), f"step {t}: gradient reached inputs the loss never saw"
        seen_grad = g.data[: t + 1] if not reverse else g.data[t:]
        assert (np.abs(seen_grad).sum(axis=(1, 2)) > 0).all()


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_kept_states_are_the_graphs_tensors(kind):
    rng = np.random.default_rng(8)
    cell = make_cell_like(kind)
    driver = nn.Recurrent(cell)
    x = leaf(rng.uniform(-1, 1, (4, 2, 3)))
    outputs, final = driver(x, keep_states=True)
    states = driver.states
    assert len(states) == 4 and all(s is not None for s in states)
    assert all(a is b for a, b in zip(parts(states[-1]), parts(final), strict=True))
    for t in range(4):
        assert cell.output(states[t]) is not None
        np.testing.assert_array_equal(cell.output(states[t]).data, outputs.data[t])

    # ∂L/∂h_t through every later step: retain_grad agrees with ts.grad, and at the last
    # step it is just the loss's direct weight.
    h = [cell.output(s) for s in states]
    loss = weighted_sum([outputs])
    by_grad = [g.data for g in ts.grad(loss, h, retain_graph=True)]
    for t in range(4):
        h[t].retain_grad()
    loss.backward()
    for t in range(4):
        np.testing.assert_array_equal(h[t].grad.data, by_grad[t])
    rng = np.random.default_rng(0)  # weighted_sum's weights: h_T only reaches its own term
    weight = rng.uniform(0.5, 1.5, outputs.shape) * rng.choice([-1, 1], outputs.shape)
    np.testing.assert_array_equal(by_grad[-1], weight[-1])
    assert np.abs(by_grad[0]).sum() > 0

    driver(x)
    assert driver.states is None


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kind", CELL_KINDS)
@settings(max_examples=8)
@given(data=st.data())
def test_padded_batch_equals_each_sequence_alone(kind, reverse, data):
    cell, x, h0 = data.draw(sequence_case(kind))
    T, B = x.shape[:2]
    lengths = np.array(data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B)))
    x_t = leaf(x)
    outputs, final = nn.Recurrent(cell, reverse=reverse)(x_t, h0, lengths=lengths)
    loss = weighted_sum([outputs, *parts(final)], seed=2)
    grads = gradients(loss, [x_t, *cell.parameters()])

    rng = np.random.default_rng(2)
    out_w = rng.uniform(0.5, 1.5, outputs.shape) * rng.choice([-1, 1], outputs.shape)
    final_w = [rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1, 1], p.shape) for p in parts(final)]
    summed = [np.zeros_like(g) for g in grads[1:]]
    for b, L in enumerate(lengths):
        xb = leaf(x[:L, b : b + 1])
        hb = tuple(s[b : b + 1] for s in parts(h0))
        out_b, final_b = nn.Recurrent(cell, reverse=reverse)(xb, hb if len(hb) > 1 else hb[0])
        np.testing.assert_allclose(outputs.data[:L, b : b + 1], out_b.data, **EXACT)
        assert (outputs.data[L:, b] == 0).all(), "outputs at padded steps must be zero"
        for ours, alone in zip(parts(final), parts(final_b), strict=True):
            np.testing.assert_allclose(ours.data[b : b + 1], alone.data, **EXACT)
        loss_b = (out_b * ts.tensor(out_w[:L, b : b + 1])).sum() + sum(
            (p * ts.tensor(w[b : b + 1])).sum()
            for p, w in zip(parts(final_b), final_w, strict=True)
        )
        grads_b = gradients(loss_b, [xb, *cell.parameters()])
        np.testing.assert_allclose(grads[0][:L, b : b + 1], grads_b[0], **EXACT)
        assert (grads[0][L:, b] == 0).all(), "padded inputs must get exactly zero gradient"
        summed = [s + g for s, g in zip(summed, grads_b[1:], strict=True)]
    assert_grads_close(grads[1:], summed, **EXACT, names=list(PARAMS))


def test_padding_values_never_matter():
    """Whatever sits in the padding, outputs, final state and gradients are the same."""
    rng = np.random.default_rng(9)
    cell = make_cell_like("lstm")
    x = rng.uniform(-1, 1, (5, 3, 3))
    lengths = np.array([5, 2, 0])
    results = []
    for fill in (0.0, 1e3):
        padded = x.copy()
        for b, L in enumerate(lengths):
            padded[L:, b] = fill
        x_t = leaf(padded)
        outputs, (h, c) = nn.Recurrent(cell, reverse=True)(x_t, lengths=lengths)
        results.append(
            [
                outputs.data,
                h.data,
                c.data,
                *gradients(weighted_sum([outputs, h, c]), [x_t, *cell.parameters()]),
            ]
        )
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    # A zero-length sequence keeps its initial state.
    assert (results[0][1][2] == 0).all() and (results[0][2][2] == 0).all()


def test_lengths_errors():
    driver = nn.Recurrent(nn.RNNCell(3, 4))
    x = ts.randn(5, 2, 3)
    with pytest.raises(ValueError, match=r"Recurrent: lengths must be 2 integers.*shape \(3,\)"):
        driver(x, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"Recurrent: lengths must lie in \[0, 5\].*\[6, 1\]"):
        driver(x, lengths=[6, 1])
    with pytest.raises(ValueError, match="Recurrent: lengths must be 2 integers.*float"):
        driver(x, lengths=[1.0, 2.0])


def test_recurrent_errors():
    with pytest.raises(TypeError, match="Recurrent: Linear does not follow the Cell protocol"):
        nn.Recurrent(nn.Linear(3, 4))
    driver = nn.Recurrent(nn.RNNCell(3, 4))
    with pytest.raises(
        ValueError, match=r"Recurrent: input must be \(time, batch, features\).*\(2, 3\)"
    ):
        driver(ts.randn(2, 3))
    with pytest.raises(ValueError, match=r"RNNCell: input has shape \(2, 5\)"):
        driver(ts.randn(4, 2, 5))
    with pytest.raises(ValueError, match=r"RNNCell: h has shape \(3, 4\).*\(2, 4\)"):
        driver(ts.randn(4, 2, 3), ts.randn(3, 4))


# --------------------------------------------------------------------------- layers


LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def make_layer(kind: str, D: int, H: int, seed: int = 0, **options) -> nn.Module:
    return LAYERS[kind](D, H, dtype=np.float64, rng=np.random.default_rng(seed), **options)


def layer_hx(kind: str, layer: nn.Module, B: int, rng: np.random.Generator):
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    if kind == "LSTM":
        return leaf(rng.uniform(-1, 1, shape)), leaf(rng.uniform(-1, 1, shape))
    return leaf(rng.uniform(-1, 1, shape))


CONFIGS = [
    pytest.param({}, False, None, id="1-layer"),
    pytest.param({"num_layers": 2}, True, None, id="2-layers-hx"),
    pytest.param({"bidirectional": True}, True, None, id="bidirectional-hx"),
    pytest.param(
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
        False,
        None,
        id="2-layers-bidirectional-batch-first",
    ),
    pytest.param(
        {"num_layers": 2, "bidirectional": True}, True, [3, 1], id="2-layers-bidirectional-lengths"
    ),
    pytest.param({"bias": False}, False, [2, 3], id="no-bias-lengths"),
]


@pytest.mark.parametrize("options, with_hx, lengths", CONFIGS)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_gradcheck(kind, options, with_hx, lengths):
    """gradcheck w.r.t. the input, the initial state and every parameter of the layer."""
    rng = np.random.default_rng(4)
    layer = make_layer(kind, 2, 2, **options)
    T, B = 3, 2
    x = leaf(rng.uniform(-1, 1, (B, T, 2) if options.get("batch_first") else (T, B, 2)))
    hx = layer_hx(kind, layer, B, rng) if with_hx else None
    names = [name for name, _ in layer.named_parameters()]
    weights = [leaf(p.data) for p in layer.parameters()]
    n_state = 0 if hx is None else len(parts(hx))

    def fn(x, *rest):
        state = tuple(rest[:n_state]) if n_state == 2 else (rest[0] if n_state else None)
        with parameters_replaced(layer, dict(zip(names, rest[n_state:], strict=True))):
            output, h_n = layer(x, state, lengths=lengths)
        return (output, *parts(h_n))

    assert gradcheck(
        fn, [x, *(parts(hx) if hx is not None else []), *weights], atol=1e-7, rtol=1e-5
    )


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_is_the_cells_driven_by_recurrent(kind):
    """A 2-layer bidirectional layer equals the composition written out by hand.

    Exactly with fused=False; the fused kernels agree to rounding (tests/test_kernels.py).
    """
    rng = np.random.default_rng(12)
    layer = make_layer(kind, 3, 2, num_layers=2, bidirectional=True, fused=False)
    x = ts.tensor(rng.uniform(-1, 1, (4, 2, 3)))
    output, h_n = layer(x)
    layer_input, finals = x, []
    for k in range(2):
        outs = []
        for d in range(2):
            out, final = nn.Recurrent(layer.cell(k, d), reverse=d == 1)(layer_input)
            outs.append(out)
            finals.append(final)
        layer_input = ts.cat(outs, axis=2)
    np.testing.assert_array_equal(output.data, layer_input.data)
    hs = [f[0] if kind == "LSTM" else f for f in finals]
    np.testing.assert_array_equal(parts(h_n)[0].data, ts.stack(hs).data)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_batch_first_equals_time_first_transposed(kind):
    rng = np.random.default_rng(13)
    x = rng.uniform(-1, 1, (4, 3, 2))
    time_first = make_layer(kind, 2, 3, num_layers=2, bidirectional=True)
    batch_first = make_layer(kind, 2, 3, num_layers=2, bidirectional=True, batch_first=True)
    x_tf, x_bf = leaf(x), leaf(x.transpose(1, 0, 2))
    out_tf, h_tf = time_first(x_tf, lengths=[4, 2, 3])
    out_bf, h_bf = batch_first(x_bf, lengths=[4, 2, 3])
    np.testing.assert_array_equal(out_bf.data, out_tf.data.transpose(1, 0, 2))
    for a, b in zip(parts(h_tf), parts(h_bf), strict=True):
        np.testing.assert_array_equal(a.data, b.data)  # h_n is never batch-first
    g_tf = gradients(weighted_sum([out_tf]), [x_tf])[0]
    out_w = weighted_sum([out_bf.transpose(0, 1)])
    np.testing.assert_allclose(gradients(out_w, [x_bf])[0], g_tf.transpose(1, 0, 2), **EXACT)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_between_layers_only_in_training_and_seeded(kind):
    rng = np.random.default_rng(14)
    x = ts.tensor(rng.uniform(-1, 1, (5, 2, 3)))
    plain = make_layer(kind, 3, 4, num_layers=2)
    dropped = make_layer(kind, 3, 4, num_layers=2, dropout=0.5)
    reference = plain(x)[0].data

    dropped.eval()
    np.testing.assert_array_equal(dropped(x)[0].data, reference)
    dropped.train()
    dropped.rng = np.random.default_rng(99)
    first = dropped(x)[0].data
    dropped.rng = np.random.default_rng(99)
    np.testing.assert_array_equal(dropped(x)[0].data, first)
    assert not np.allclose(first, reference), "dropout in training must change the output"

    ts.manual_seed(5)
    dropped.rng = None
    by_default_generator = dropped(x)[0].data
    ts.manual_seed(5)
    np.testing.assert_array_equal(dropped(x)[0].data, by_default_generator)

    # Dropout sits between layers: a one-layer network has nothing to drop.
    single = make_layer(kind, 3, 4, dropout=0.5)
    np.testing.assert_array_equal(single(x)[0].data, make_layer(kind, 3, 4)(x)[0].data)


TORCH_LSTM_NAMES = [
    "weight_ih_l0",
    "weight_hh_l0",
    "bias_ih_l0",
    "bias_hh_l0",
    "weight_ih_l0_reverse",
    "weight_hh_l0_reverse",
    "bias_ih_l0_reverse",
    "bias_hh_l0_reverse",
    "weight_ih_l1",
    "weight_hh_l1",
    "bias_ih_l1",
    "bias_hh_l1",
    "weight_ih_l1_reverse",
    "weight_hh_l1_reverse",
    "bias_ih_l1_reverse",
    "bias_hh_l1_reverse",
]


@pytest.mark.parametrize("kind, gates", [("RNN", 1), ("LSTM", 4), ("GRU", 3)])
def test_parameter_names_and_shapes_are_pytorchs(kind, gates):
    layer = LAYERS[kind](3, 5, num_layers=2, bidirectional=True)
    shapes = dict((name, p.shape) for name, p in layer.named_parameters())
    assert list(shapes) == TORCH_LSTM_NAMES
    G = gates * 5
    for direction in ("", "_reverse"):
        assert shapes[f"weight_ih_l0{direction}"] == (G, 3)
        assert shapes[f"weight_ih_l1{direction}"] == (G, 10)  # both directions of layer 0
        for k in (0, 1):
            assert shapes[f"weight_hh_l{k}{direction}"] == (G, 5)
            assert shapes[f"bias_ih_l{k}{direction}"] == (G,)
    assert list(layer.state_dict()) == TORCH_LSTM_NAMES
    assert list(layer.children()) == []  # as in PyTorch: the cells are not sub-modules
    unidirectional = LAYERS[kind](3, 5, num_layers=2, bias=False)
    assert [n for n, _ in unidirectional.named_parameters()] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "weight_ih_l1",
        "weight_hh_l1",
    ]
    for p in layer.parameters():
        assert p.dtype == np.float32 and np.abs(p.data).max() <= 1 / np.sqrt(5)


def test_layer_output_and_state_shapes():
    x = ts.randn(4, 3, 2)
    out, h_n = nn.GRU(2, 5, num_layers=3, bidirectional=True)(x)
    assert out.shape == (4, 3, 10) and h_n.shape == (6, 3, 5)
    out, (h_n, c_n) = nn.LSTM(2, 5, batch_first=True)(ts.randn(3, 4, 2))
    assert out.shape == (3, 4, 5) and h_n.shape == c_n.shape == (1, 3, 5)
    layer = nn.RNN(2, 5, num_layers=2)
    _, h_n = layer(x, keep_states=True)
    assert len(layer.states) == 2 and len(layer.states[-1]) == 4
    np.testing.assert_array_equal(layer.states[-1][-1].data, h_n.data[-1])


def test_loaded_or_assigned_weights_reach_the_cells():
    layer = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    state = {
        name: np.full(p.shape, 0.1 * k) for k, (name, p) in enumerate(layer.named_parameters())
    }
    layer.load_state_dict(state)
    loaded = layer.cell(1, 1).weight_hh.data
    np.testing.assert_array_equal(loaded, state["weight_hh_l1_reverse"].astype(np.float32))
    replacement = nn.Parameter(np.zeros((12, 3)))
    layer.weight_hh_l0 = replacement
    assert layer.cell(0, 0).weight_hh is replacement
    layer.double()
    assert layer.cell(0, 1).weight_ih.dtype == np.float64


def test_reprs_follow_pytorch():
    assert repr(nn.LSTM(3, 4)) == "LSTM(3, 4)"
    assert (
        repr(nn.RNN(3, 4, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True))
        == "RNN(3, 4, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)"
    )
    assert repr(nn.GRU(3, 4, bias=False)) == "GRU(3, 4, bias=False)"
    assert repr(nn.RNN(3, 4, 1, "relu")) == "RNN(3, 4, nonlinearity=relu)"
    assert repr(nn.Recurrent(nn.GRUCell(3, 4), reverse=True)) == (
        "Recurrent(reverse=True\n  (cell): GRUCell(3, 4)\n)"
    )


def test_layer_errors():
    layer = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: input has shape \(5, 2, 4\), so 4 features.*3"):
        layer(ts.randn(5, 2, 4))
    with pytest.raises(
        ValueError, match=r"LSTM: input must be \(time, batch, input_size\).*\(5, 3\)"
    ):
        layer(ts.randn(5, 3))
    with pytest.raises(TypeError, match="LSTM: hx must be a pair"):
        layer(ts.randn(5, 2, 3), ts.randn(2, 2, 4))
    with pytest.raises(ValueError, match=r"LSTM: c_0 must have shape \(2, 2, 4\).*\(1, 2, 4\)"):
        layer(ts.randn(5, 2, 3), (ts.randn(2, 2, 4), ts.randn(1, 2, 4)))
    with pytest.raises(ValueError, match=r"GRU: hx must have shape \(2, 3, 4\)"):
        nn.GRU(3, 4, bidirectional=True)(ts.randn(5, 3, 3), ts.randn(1, 3, 4))
    with pytest.raises(ValueError, match="RNN: num_layers must be a positive int"):
        nn.RNN(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="GRU: dropout must be between 0 and 1"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(IndexError, match="LSTM: no cell for layer 2"):
        layer.cell(2)


@st.composite
def layer_case(draw: st.DrawFn):
    kind = draw(st.sampled_from(list(LAYERS)), label="kind")
    options = {
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
        "batch_first": draw(st.booleans(), label="batch_first"),
        "bias": draw(st.booleans(), label="bias"),
    }
    T, B = draw(st.integers(1, 3), label="T"), draw(st.integers(1, 2), label="B")
    D, H = draw(st.integers(1, 2), label="D"), draw(st.integers(1, 2), label="H")
    with_hx = draw(st.booleans(), label="with_hx")
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=B, max_size=B), label="lengths")
    return kind, options, (T, B, D, H), with_hx, lengths


@settings(max_examples=12)
@given(case=layer_case(), seed=st.integers(0, 2**16))
def test_layer_gradcheck_on_drawn_configurations(case, seed):
    kind, options, (T, B, D, H), with_hx, lengths = case
    rng = np.random.default_rng(seed)
    layer = make_layer(kind, D, H, seed=seed, **options)
    x = leaf(rng.uniform(-1, 1, (B, T, D) if options["batch_first"] else (T, B, D)))
    hx = layer_hx(kind, layer, B, rng) if with_hx else None
    states = parts(hx) if hx is not None else []
    names = [name for name, _ in layer.named_parameters()]

    def fn(x, *rest):
        state = None if not states else (tuple(rest[:2]) if kind == "LSTM" else rest[0])
        weights = dict(zip(names, rest[len(states) :], strict=True))
        with parameters_replaced(layer, weights):
            output, h_n = layer(x, state, lengths=lengths)
        return (output, *parts(h_n))

    inputs = [x, *states, *[leaf(p.data) for p in layer.parameters()]]
    assert gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)
