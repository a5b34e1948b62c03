"""Fused kernels: the same numbers as the composed cells, gradients proven, clear limits.

Every comparison builds ONE layer and runs it twice, ``fused=True`` then ``fused=False``,
so the weights are the very same objects.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import kernels, nn
from tinygrad_seq.kernels.sequence import DoubleBackwardError
from tinygrad_seq.nn.recurrent import _step_masks
from tinygrad_seq.testing import gradcheck

KINDS = {
    "RNN-tanh": lambda D, H, **o: nn.RNN(D, H, **o),
    "RNN-relu": lambda D, H, **o: nn.RNN(D, H, nonlinearity="relu", **o),
    "LSTM": lambda D, H, **o: nn.LSTM(D, H, **o),
    "GRU": lambda D, H, **o: nn.GRU(D, H, **o),
}

CONFIGS = [
    pytest.param({}, False, None, id="1-layer"),
    pytest.param({}, True, [4, 2, 1], id="1-layer-hx-lengths"),
    pytest.param({"num_layers": 2}, True, None, id="2-layers-hx"),
    pytest.param({"bidirectional": True}, False, [3, 4, 0], id="bidirectional-lengths"),
    pytest.param(
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
        True,
        [2, 4, 3],
        id="2-layers-bidirectional-batch-first-hx-lengths",
    ),
    pytest.param({"bias": False, "bidirectional": True}, True, None, id="no-bias-bidirectional"),
]

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def parts(state):
    return list(state) if isinstance(state, tuple) else [state]


def run_both(kind, options, with_hx, lengths, dtype, T=4, B=3, D=2, H=3, seed=0, prepare=None):
    """Outputs and gradients (x, hx, every parameter) with fused=True and fused=False.

    ``prepare(layer)``, if given, changes the layer's weights before both runs.
    """
    rng = np.random.default_rng(seed)
    layer = KINDS[kind](D, H, dtype=dtype, rng=rng, **options)
    if prepare is not None:
        prepare(layer)
    shape = (B, T, D) if options.get("batch_first") else (T, B, D)
    x = ts.tensor(rng.uniform(-1, 1, shape).astype(dtype), requires_grad=True)
    hx = None
    if with_hx:
        n = layer.num_layers * layer.num_directions
        make = lambda: ts.tensor(rng.uniform(-1, 1, (n, B, H)).astype(dtype), requires_grad=True)  # noqa: E731
        hx = (make(), make()) if kind == "LSTM" else make()
    inputs = [x, *([] if hx is None else parts(hx)), *layer.parameters()]
    results = {}
    upstream = None
    for fused in (True, False):
        layer.fused = fused
        output, h_n = layer(x, hx, lengths=lengths)
        outs = [output, *parts(h_n)]
        if upstream is None:
            upstream = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
        # (With every sequence empty, the composed cells never run: their outputs may not
        # depend on x or the weights at all; those gradients are zeros, as the kernels give.)
        used = [k for k, o in enumerate(outs) if o.requires_grad]
        grads = [None] * len(inputs)
        if used:
            picked = [outs[k] for k in used], [upstream[k] for k in used]
            grads = ts.grad(picked[0], inputs, picked[1], allow_unused=True)
        pairs = zip(inputs, grads, strict=True)
        grads = [np.zeros_like(i.data) if g is None else g.data for i, g in pairs]
        results[fused] = [o.data for o in outs], grads
    return results


def assert_close(actual, expected, rtol):
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a.shape == e.shape and a.dtype == e.dtype, k
        scale = max(np.max(np.abs(e), initial=0.0), 1e-30)
        error = np.max(np.abs(a - e), initial=0.0) / scale
        assert error <= rtol, f"array {k}: relative error {error:.2e} > {rtol:.0e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options, with_hx, lengths", CONFIGS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_fused_equals_composed(kind, options, with_hx, lengths, dtype):
    """Forward and every gradient (input, initial states, all weights) agree."""
    results = run_both(kind, options, with_hx, lengths, dtype)
    (out_f, grad_f), (out_c, grad_c) = results[True], results[False]
    assert_close(out_f, out_c, TOLERANCE[dtype])
    assert_close(grad_f, grad_c, TOLERANCE[dtype])


@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(list(KINDS)),
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    bidirectional=st.booleans(),
    with_hx=st.booleans(),
    data=st.data(),
)
def test_fused_equals_composed_on_drawn_sizes(kind, sizes, bidirectional, with_hx, data):
    T, B, D, H = sizes
    lengths = data.draw(st.none() | st.lists(st.integers(0, T), min_size=B, max_size=B))
    options = {"bidirectional": bidirectional}
    results = run_both(kind, options, with_hx, lengths, np.float64, T, B, D, H)
    assert_close(results[True][0], results[False][0], 1e-10)
    assert_close(results[True][1], results[False][1], 1e-10)


@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_batch_where_every_sequence_is_empty_agrees_fused_and_composed(kind, with_hx):
    # No step runs: zeros out, the initial state through, and the same gradients.
    results = run_both(kind, {"bidirectional": True}, with_hx, [0, 0], np.float64, T=2, B=2)
    assert_close(results[True][0], results[False][0], 1e-12)
    assert_close(results[True][1], results[False][1], 1e-12)
    assert not np.any(results[False][0][0])  # the output: zeros


# --------------------------------------------------------------------------- saturated gates

# PyTorch's gate rows that go through σ: i, f (and not g), o for the LSTM; r, z for the GRU.
SIGMOID_ROWS = {"LSTM": lambda H: np.r_[0 : 2 * H, 3 * H : 4 * H], "GRU": lambda H: np.r_[: 2 * H]}


def saturate(kind, bias, weight_scale):
    """A ``prepare`` for run_both: σ-gate rows of ``bias_ih`` set to ``bias``, weights scaled."""

    def prepare(layer):
        rows = SIGMOID_ROWS[kind](layer.hidden_size)
        for name, p in layer.named_parameters():
            if name.startswith("weight"):
                p.data[...] *= weight_scale
            elif name.startswith("bias_ih"):
                p.data[rows] = bias

    return prepare


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "bias, weight_scale",
    [
        pytest.param(-20.0, 1.0, id="gates-shut-by-bias"),
        pytest.param(-30.0, 5.0, id="gates-shut-by-large-weights-and-bias"),
        pytest.param(0.0, 40.0, id="large-weights"),
    ],
)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_fused_equals_composed_on_saturated_gates(kind, bias, weight_scale, dtype):
    """σ keeps full relative precision near 0 in both paths: a shut gate is e^a, not 0.

    (Gates held OPEN by a large bias are left out: σ′ = σ(1 − σ) is computed from the stored
    σ ≈ 1 in both paths, as in PyTorch, so 1 − σ keeps only ~eps / e^−a of its digits.)
    """
    prepare = saturate(kind, bias, weight_scale)
    results = run_both(kind, {"bidirectional": True}, True, [4, 2, 3], dtype, prepare=prepare)
    (out_f, grad_f), (out_c, grad_c) = results[True], results[False]
    assert_close(out_f, out_c, TOLERANCE[dtype])
    assert_close(grad_f, grad_c, TOLERANCE[dtype])


def shut_forget_gate(T, H, dtype, **options):
    """An LSTM whose only nonzero parameter is a forget bias of −20, its input x = 0, C_0 = 1."""
    layer = nn.LSTM(1, H, dtype=dtype, **options)
    for p in layer.parameters():
        p.data[...] = 0
    layer.bias_ih_l0.data[H : 2 * H] = -20
    c0 = ts.ones(1, 1, H, dtype=dtype, requires_grad=True)
    _, (_, c_n) = layer(ts.zeros(T, 1, 1, dtype=dtype), (ts.zeros(1, 1, H, dtype=dtype), c0))
    return c_n, c0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fused", [True, False])
def test_shut_forget_gate_keeps_the_memory_gradient(fused, dtype):
    """With f = σ(−20) = 2.06e-9 at every step, ∂C_T/∂C_0 = f^T (8.8e-27 for T = 3), not 0."""
    T, H = 3, 2
    c_n, c0 = shut_forget_gate(T, H, dtype, fused=fused)
    (grad,) = ts.grad(c_n.sum(), [c0])
    exact = (1 / (1 + np.exp(20.0))) ** T
    np.testing.assert_allclose(grad.data, np.full((1, 1, H), exact), rtol=TOLERANCE[dtype])


def test_shut_forget_gate_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    T, H = 3, 2
    c_n, c0 = shut_forget_gate(T, H, np.float32)
    (ours,) = ts.grad(c_n.sum(), [c0])
    theirs_layer = torch.nn.LSTM(1, H)
    with torch.no_grad():
        for p in theirs_layer.parameters():
            p.zero_()
        theirs_layer.bias_ih_l0[H : 2 * H] = -20
    theirs_c0 = torch.ones(1, 1, H, requires_grad=True)
    _, (_, theirs_c_n) = theirs_layer(torch.zeros(T, 1, 1), (torch.zeros(1, 1, H), theirs_c0))
    (theirs,) = torch.autograd.grad(theirs_c_n.sum(), [theirs_c0])
    assert theirs.numpy().min() > 0  # PyTorch keeps the tiny gradient too
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- the kernels alone


def kernel_case(kind, reverse, padded, bias=True):
    """A kernel call on tiny float64 inputs: (fn, inputs) for gradcheck."""
    rng = np.random.default_rng(3)
    T, B, D, H = 3, 2, 2, 2
    gates = {"lstm": 4, "gru": 3}.get(kind, 1)

    def leaf(*shape):
        return ts.tensor(rng.uniform(-1, 1, shape), requires_grad=True)

    weights = [leaf(gates * H, D), leaf(gates * H, H)]
    if bias:
        weights += [leaf(gates * H), leaf(gates * H)]
    states = [leaf(B, H), leaf(B, H)] if kind == "lstm" else [leaf(B, H)]
    valid = _step_masks([3, 1], T, B) if padded else None
    x = leaf(T, B, D)

    def fn(x, *rest):
        state = tuple(rest[:2]) if kind == "lstm" else rest[0]
        ws = list(rest[len(states) :]) + [None, None] * (not bias)
        if kind.startswith("rnn"):
            out, final = kernels.rnn(
                x, state, *ws, nonlinearity=kind[4:], reverse=reverse, valid=valid
            )
        else:
            out, final = getattr(kernels, kind)(x, state, *ws, reverse=reverse, valid=valid)
        return (out, *parts(final))

    return fn, [x, *states, *weights]


@pytest.mark.parametrize("reverse, padded", [(False, False), (True, True)])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_kernel_gradcheck(kind, reverse, padded):
    """Central differences, linearity, no mutation of inputs, no aliasing — every input."""
    fn, inputs = kernel_case(kind, reverse, padded)
    assert gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_kernel_gradcheck_without_bias(kind):
    fn, inputs = kernel_case(kind, False, True, bias=False)
    assert gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


# --------------------------------------------------------------------------- limits and graph


@pytest.mark.parametrize("kind", list(KINDS))
def test_double_backward_raises_a_clear_error(kind):
    layer = KINDS[kind](2, 3, dtype=np.float64)
    x = ts.randn(4, 2, 2, dtype=np.float64, requires_grad=True)
    (g,) = ts.grad(layer(x)[0].sum(), [x], create_graph=False)
    assert g.shape == x.shape
    with pytest.raises(DoubleBackwardError, match="fused=False"):
        ts.grad(layer(x)[0].sum(), [x], create_graph=True)
    layer.fused = False  # the composed cells differentiate twice
    (g,) = ts.grad((layer(x)[0] ** 2).sum(), [x], create_graph=True)
    (gg,) = ts.grad(g.sum(), [x])
    assert gg.shape == x.shape


def test_retain_graph_backpropagates_twice_and_release_is_reported():
    layer = nn.LSTM(2, 3, dtype=np.float64)
    x = ts.randn(4, 2, 2, dtype=np.float64, requires_grad=True)
    loss = layer(x)[0].sum()
    loss.backward(retain_graph=True)
    first = x.grad.data.copy()
    x.grad = None
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, first)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_lengths_mean_each_sequence_alone():
    """A padded batch gives, per sequence, the outputs and final state of that sequence run
    alone; padded outputs are zero and the padding gets no gradient."""
    rng = np.random.default_rng(5)
    layer = nn.LSTM(2, 3, bidirectional=True, dtype=np.float64, rng=rng)
    lengths = [4, 1, 3]
    x = ts.tensor(rng.uniform(-1, 1, (4, 3, 2)), requires_grad=True)
    output, (h_n, c_n) = layer(x, lengths=lengths)
    output.sum().backward()
    for b, L in enumerate(lengths):
        alone_out, (alone_h, alone_c) = layer(x.data[:L, b : b + 1])
        np.testing.assert_allclose(output.data[:L, b], alone_out.data[:, 0], rtol=1e-12)
        np.testing.assert_array_equal(output.data[L:, b], 0)
        np.testing.assert_allclose(h_n.data[:, b], alone_h.data[:, 0], rtol=1e-12)
        np.testing.assert_allclose(c_n.data[:, b], alone_c.data[:, 0], rtol=1e-12)
        np.testing.assert_array_equal(x.grad.data[L:, b], 0)


def test_keep_states_runs_the_cells():
    layer = nn.GRU(2, 3, num_layers=2, dtype=np.float64)
    x = ts.randn(5, 2, 2, dtype=np.float64)
    fused_out, _ = layer(x)
    out, h_n = layer(x, keep_states=True)
    assert len(layer.states) == 2 and len(layer.states[-1]) == 5
    np.testing.assert_array_equal(layer.states[-1][-1].data, h_n.data[-1])
    np.testing.assert_allclose(out.data, fused_out.data, rtol=1e-12)
    layer(x)
    assert layer.states is None


def test_fused_layer_records_one_node_per_layer_and_direction():
    layer = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    output, _ = layer(ts.randn(6, 2, 2))
    names, stack, seen = [], [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name)
        stack.extend(p for p in node.parents if isinstance(p, ts.Function))
    assert names.count("lstm_sequence") == 4
    assert len(names) < 20


def test_kernel_errors_name_the_shapes():
    x = ts.randn(4, 2, 3)
    with pytest.raises(ValueError, match=r"lstm: input \(4, 2, 3\)"):
        kernels.lstm(x, None, ts.randn(8, 5), ts.randn(8, 2))
    with pytest.raises(ValueError, match="initial state"):
        kernels.gru(x, ts.randn(3, 2), ts.randn(6, 3), ts.randn(6, 2))
    with pytest.raises(ValueError, match="no time steps"):
        kernels.rnn(ts.randn(0, 2, 3), None, ts.randn(2, 3), ts.randn(2, 2))


@pytest.mark.parametrize("kind", list(KINDS))
def test_fused_equals_composed_when_only_the_last_step_has_a_gradient(kind):
    # The usual training case (a head on the last output): the kernels skip the steps whose
    # output gradient is all zero; the gradients must not change.
    rng = np.random.default_rng(3)
    layer = KINDS[kind](2, 3, dtype=np.float64, rng=rng)
    x = ts.tensor(rng.uniform(-1, 1, (5, 2, 2)), requires_grad=True)
    head = ts.tensor(rng.standard_normal(3), requires_grad=False)
    found = {}
    for fused in (True, False):
        layer.fused = fused
        output, h_n = layer(x)
        loss = (output[-1] * head).sum() + sum(p.sum() * 0.5 for p in parts(h_n)[1:])
        found[fused] = [g.data for g in ts.grad(loss, [x, *layer.parameters()])]
    assert_close(found[True], found[False], TOLERANCE[np.float64])
