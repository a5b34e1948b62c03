"""The Cell protocol without ceremony: any state structure, any kind of cell, clear errors.

Five user cells, each written the way a student would, go through every piece of machinery
that drives cells — ``Recurrent`` (with lengths and reversed), a pattern, truncated BPTT,
``viz.gradient_flow`` and ``viz.draw_cell_step``:

- ``PlainPair``: a plain ``nn.Module`` with ``initial_state(batch_size)`` (no dtype keyword,
  so float32 zeros), ``forward`` and an ``output`` that picks the *second* element;
- ``PairCell``, ``TripleCell``, ``DictCell``: ``nn.Cell`` subclasses with only ``forward``;
  the first step gets ``state=None``; the states are a pair (h, C), a triple and a dict;
- ``PlainElman``: a plain Module with only ``forward``, whose state is one Tensor.

Every expected value comes from another path: the cell called by hand in a Python loop, the
library's ``LSTMCell`` with the same weights, or float64 central differences.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn, viz
from tinygrad_seq.testing import gradcheck

D, H = 2, 3
F64 = np.float64


def state_tensors(state):
    """The Tensors of a state in order (written here, not taken from the library)."""
    if isinstance(state, ts.Tensor):
        return [state]
    parts = state.values() if isinstance(state, dict) else state
    return [t for part in parts for t in state_tensors(part)]


def row_of(state, b):
    """Example ``b`` of every Tensor of a state, keeping the structure."""
    if isinstance(state, ts.Tensor):
        return state[b : b + 1]
    if isinstance(state, dict):
        return {key: row_of(value, b) for key, value in state.items()}
    return type(state)(row_of(part, b) for part in state)


def _weights(rng, *shapes):
    return [nn.Parameter(rng.uniform(-0.7, 0.7, shape)) for shape in shapes]


class PlainPair(nn.Module):
    """(a) A plain Module: state (m, h) with h second; initial_state takes no dtype."""

    def __init__(self, rng):
        super().__init__()
        self.input_size, self.hidden_size = D, H
        self.w_x, self.w_h = _weights(rng, (2 * H, D), (2 * H, H))

    def initial_state(self, batch_size):
        return ts.zeros(batch_size, H), ts.zeros(batch_size, H)  # float32: the driver casts

    def forward(self, x, state):
        m, h = state
        a, b = (x @ self.w_x.T + h @ self.w_h.T).chunk(2, axis=1)
        m = 0.5 * m + a.tanh()
        return m, b.sigmoid() * m.tanh()

    def output(self, state):
        return state[1]


def _lstm_step(cell, x, h, c):
    i, f, g, o = (x @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias).chunk(4, axis=1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


class PairCell(nn.Cell):
    """(b) Only forward; the state is (h, C): the LSTM's equations written out."""

    def __init__(self, rng):
        super().__init__(D, H)
        self.weight_ih, self.weight_hh, self.bias = _weights(rng, (4 * H, D), (4 * H, H), (4 * H,))

    def forward(self, x, state=None):
        h, c = state if state is not None else (self.check_state(x, None),) * 2
        return _lstm_step(self, x, h, c)


class DictCell(PairCell):
    """(b) Only forward; the state is a dict whose *second* key is h."""

    def forward(self, x, state=None):
        h, c = (state["h"], state["c"]) if state is not None else (self.check_state(x, None),) * 2
        h, c = _lstm_step(self, x, h, c)
        return {"c": c, "h": h}


class TripleCell(nn.Cell):
    """(b) Only forward; the state is (h, C, m), m a slow average of C read by h."""

    def __init__(self, rng):
        super().__init__(D, H)
        self.w_x, self.w_h, self.w_m = _weights(rng, (3 * H, D), (3 * H, H), (3 * H, H))

    def forward(self, x, state=None):
        if state is None:
            state = (self.check_state(x, None),) * 3
        h, c, m = state
        f, g, o = (x @ self.w_x.T + h @ self.w_h.T + m @ self.w_m.T).chunk(3, axis=1)
        c = f.sigmoid() * c + g.tanh()
        m = 0.5 * m + 0.5 * c.tanh()
        return o.sigmoid() * m.tanh(), c, m


class PlainElman(nn.Module):
    """(c) A plain Module with only forward; the state is one Tensor."""

    def __init__(self, rng):
        super().__init__()
        self.input_size, self.hidden_size = D, H
        self.U, self.W = _weights(rng, (H, D), (H, H))

    def forward(self, x, h=None):
        a = x @ self.U.T
        return (a if h is None else a + h @ self.W.T).tanh()


CASES = {
    "plain_pair": (PlainPair, lambda s: s[1]),
    "pair": (PairCell, lambda s: s[0]),
    "dict": (DictCell, lambda s: s["h"]),
    "triple": (TripleCell, lambda s: s[0]),
    "plain_tensor": (PlainElman, lambda s: s),
}


def make(case, seed=0):
    cls, h_of = CASES[case]
    return cls(np.random.default_rng(seed)), h_of


def sequence(T=4, B=3, seed=1):
    return ts.tensor(np.random.default_rng(seed).uniform(-1, 1, (T, B, D)))


def first_state(cell, batch):
    """The state before step 1, as the protocol defines it, written out for these cells."""
    if isinstance(cell, PlainPair):
        return tuple(ts.zeros(batch, H, dtype=F64) for _ in range(2))
    return None


def by_hand(cell, x, h_of, state=None):
    """Call the cell step by step: the h_t of every step and the final state."""
    state = first_state(cell, x.shape[1]) if state is None else state
    hs = []
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        hs.append(h_of(state))
    return hs, state


def assert_states_equal(actual, expected):
    assert type(actual) is type(expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
    pairs = zip(state_tensors(actual), state_tensors(expected), strict=True)
    for a, e in pairs:
        assert a.dtype == F64
        np.testing.assert_allclose(a.data, e.data, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- Recurrent


@pytest.mark.parametrize("case", CASES)
def test_recurrent_runs_each_cell_as_the_hand_written_loop(case):
    cell, h_of = make(case)
    x = sequence()
    outputs, final = nn.Recurrent(cell)(x)
    hs, expected = by_hand(cell, x, h_of)
    np.testing.assert_allclose(outputs.data, np.stack([h.data for h in hs]), atol=1e-14)
    assert_states_equal(final, expected)
    batch_first, _ = nn.Recurrent(cell, batch_first=True)(x.transpose(0, 1))
    np.testing.assert_allclose(batch_first.data, outputs.data.swapaxes(0, 1), atol=1e-14)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_lengths_give_each_sequence_its_own_run(case, reverse):
    """With lengths (reversed too, where padding is read first) each sequence ends as if alone."""
    cell, h_of = make(case)
    x, lengths = sequence(T=5, B=3), np.array([5, 2, 3])
    outputs, final = nn.Recurrent(cell, reverse=reverse)(x, lengths=lengths)
    for b, length in enumerate(lengths):
        alone = x[:length, b : b + 1]
        if reverse:
            alone = ts.tensor(alone.data[::-1].copy())
        hs, expected = by_hand(cell, alone, h_of)
        row = row_of(final, b)
        assert_states_equal(row, expected)
        steps = np.stack([h.data for h in (hs[::-1] if reverse else hs)])
        np.testing.assert_allclose(outputs.data[:length, b : b + 1], steps, atol=1e-14)
        assert not outputs.data[length:, b].any()


@pytest.mark.parametrize("case", CASES)
def test_gradients_of_the_unrolled_cell_match_finite_differences(case):
    cell, h_of = make(case, seed=2)
    driver = nn.Recurrent(cell)
    names = [name for name, _ in cell.named_parameters()]
    weights = [ts.tensor(p.data, requires_grad=True) for p in cell.parameters()]

    def unrolled(x, *ws):
        originals = [getattr(cell, name) for name in names]
        for name, w in zip(names, ws, strict=True):
            object.__setattr__(cell, name, w)  # compute with gradcheck's own copies
        try:
            outputs, final = driver(x)
        finally:
            for name, original in zip(names, originals, strict=True):
                object.__setattr__(cell, name, original)
        return (outputs, *state_tensors(final))

    x = ts.tensor(sequence(T=3, B=2, seed=3).data, requires_grad=True)
    assert gradcheck(unrolled, [x, *weights], atol=1e-7, rtol=1e-5)


# --------------------------------------------------------------------------- patterns


@pytest.mark.parametrize("case", CASES)
def test_many_to_one_answers_from_the_cells_own_h(case):
    cell, h_of = make(case)
    model = nn.ManyToOne(cell, 2)
    x = sequence()
    hs, _ = by_hand(cell, x, h_of)
    expected = hs[-1].data @ model.head.weight.data.T + model.head.bias.data
    np.testing.assert_allclose(model(x).data, expected, atol=1e-12)
    _, final = by_hand(cell, x[:2, 1:2], h_of)
    lengths = np.array([4, 2, 4])
    row = model(x, lengths=lengths).data[1]
    np.testing.assert_allclose(row, model.head(h_of(final)).data[0], atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_one_to_many_generates_what_teacher_forcing_scores(case):
    cell, _ = make(case)
    model = nn.OneToMany(cell, feature_size=4, vocab_size=5, rng=np.random.default_rng(4))
    features = ts.tensor(np.random.default_rng(5).uniform(-1, 1, (3, 4)))
    tokens = model.generate(features, max_length=4)
    logits = model(features, tokens)
    np.testing.assert_array_equal(logits.data.argmax(axis=-1), tokens)


def test_truncated_bptt_carries_and_cuts_pair_and_dict_states():
    for case in ("pair", "dict", "plain_pair"):
        cell, h_of = make(case)
        driver, x = nn.Recurrent(cell), sequence(T=6)
        result = nn.truncated_bptt(driver, x, 4, lambda out, steps: out.sum())
        _, expected = by_hand(cell, x, h_of)
        assert_states_equal(result.state, expected)
        assert all(t.grad_fn is None for t in state_tensors(result.state))


# --------------------------------------------------------------------------- gradient flow


def last_step_loss(outputs, final):
    return (outputs[-1] ** 2).sum()


@pytest.mark.parametrize("case", CASES)
def test_gradient_flow_measures_the_total_derivative_at_every_state(case):
    cell, h_of = make(case)
    x = sequence()
    flow = viz.gradient_flow(nn.Recurrent(cell), x, last_step_loss)
    # The same derivatives from the hand loop: ∂L/∂(each tensor of each state).
    state, states = first_state(cell, x.shape[1]), []
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        states.append(state)
    loss = (h_of(states[-1]) ** 2).sum()
    hs = [h_of(s) for s in states]
    rest = [[t for t in state_tensors(s) if t is not h_of(s)] for s in states]
    grads = ts.grad(loss, hs + [t for r in rest for t in r], allow_unused=True)
    as_array = [np.zeros((3, H)) if g is None else g.data for g in grads]
    np.testing.assert_allclose(flow.hidden_grads, np.stack(as_array[:4]), atol=1e-14)
    if not rest[0]:
        assert flow.cell_grads is None
        return
    width = len(rest[0])
    cell_part = [
        np.concatenate(as_array[4 + t * width : 4 + (t + 1) * width], axis=1) for t in range(4)
    ]
    np.testing.assert_allclose(flow.cell_grads, np.stack(cell_part), atol=1e-14)
    assert flow.cell_norms.shape == (4,) and np.all(flow.cell_norms > 0)


def test_a_pair_cell_with_only_forward_is_measured_as_the_libraries_lstm():
    pair, _ = make("pair", seed=6)
    lstm = nn.LSTMCell(D, H, dtype=F64)
    lstm.load_state_dict(
        {
            "weight_ih": pair.weight_ih.data,
            "weight_hh": pair.weight_hh.data,
            "bias_ih": pair.bias.data,
            "bias_hh": np.zeros(4 * H),
        }
    )
    x = sequence(T=6)
    ours = viz.gradient_flow(nn.Recurrent(pair), x, last_step_loss)
    library = viz.gradient_flow(nn.Recurrent(lstm), x, last_step_loss)
    np.testing.assert_allclose(ours.hidden_grads, library.hidden_grads, atol=1e-14)
    np.testing.assert_allclose(ours.cell_grads, library.cell_grads, atol=1e-14)
    jacobians = viz.flow.step_jacobians(nn.Recurrent(pair), x)
    reference = viz.flow.step_jacobians(nn.Recurrent(lstm), x)
    np.testing.assert_allclose(jacobians, reference, atol=1e-14)


# --------------------------------------------------------------------------- drawing a step


def _graph_ends(source):
    """(leaf labels, root labels) of a DOT graph: nodes without inputs, without consumers."""
    labels = dict(re.findall(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"', source, re.MULTILINE))
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", source, re.MULTILINE)
    heads, tails = {h for _, h in edges}, {t for t, _ in edges}
    return [labels[n] for n in labels if n not in heads], [
        labels[n] for n in labels if n not in tails
    ]


@pytest.mark.parametrize("case", CASES)
def test_draw_cell_step_draws_every_tensor_of_the_state(case):
    cell, _ = make(case)
    before = {name: p.data.copy() for name, p in cell.named_parameters()}
    leaves, roots = _graph_ends(viz.draw_cell_step(cell, batch=2).source)
    width = len(state_tensors(nn.Recurrent(cell)(sequence(T=1, B=2))[1]))
    state_shape = f"(2, {H}) float64"
    assert len(roots) == width and all(state_shape in label for label in roots)
    assert sum(state_shape in label for label in leaves) == width  # the previous state
    assert sum(f"(2, {D}) float64" in label for label in leaves) == 1  # x_t
    for name in before:
        assert any(name in label for label in leaves), name
    assert all(np.array_equal(p.data, before[n]) for n, p in cell.named_parameters())


# --------------------------------------------------------------------------- broken cells


class NoForward(nn.Cell):
    def __init__(self):
        super().__init__(D, H)


class PlainNoForward(nn.Module):
    hidden_size, input_size = H, D


class OneArgument(PlainElman):
    def forward(self, x):
        return (x @ self.U.T).tanh()


class ReturnsArray(PlainElman):
    def forward(self, x, h=None):
        return super().forward(x, h).data


class ReturnsNothing(PairCell):
    def forward(self, x, state=None):
        super().forward(x, state)


class NoBatchSize(PlainPair):
    def initial_state(self):
        return ts.zeros(1, H)


class UnnamedDict(PairCell):
    def forward(self, x, state=None):
        h, c = super().forward(x, None if state is None else (state["a"], state["b"]))
        return {"a": h, "b": c}


class OutputOfNumbers(PairCell):
    def output(self, state):
        return state[0].data


FORWARD = re.escape("`def forward(self, x_t, state=None) -> state`")
CONSTRUCTION_ERRORS = [
    (NoForward, rf"NoForward does not follow the Cell protocol.*no forward; add {FORWARD}"),
    (PlainNoForward, rf"PlainNoForward .*no forward; add {FORWARD}"),
    (OneArgument, rf"forward\(x\) cannot be called as forward\(x_t, state\); write {FORWARD}"),
    (
        NoBatchSize,
        r"initial_state\(\) cannot be called as initial_state\(batch_size\); write "
        + re.escape("`def initial_state(self, batch_size) -> state`"),
    ),
]


@pytest.mark.parametrize("cls, message", CONSTRUCTION_ERRORS)
def test_a_cell_missing_a_method_is_refused_by_every_driver(cls, message):
    cell = cls(np.random.default_rng(0)) if "rng" in cls.__init__.__code__.co_varnames else cls()
    for where, drive in [
        ("Recurrent", lambda: nn.Recurrent(cell)),
        ("ManyToOne", lambda: nn.ManyToOne(cell, 2)),
        ("OneToMany", lambda: nn.OneToMany(cell, 4, 5)),
        ("Seq2Seq", lambda: nn.Seq2Seq(cell, cell, 5, 5)),
        ("draw_cell_step", lambda: viz.draw_cell_step(cell)),
    ]:
        with pytest.raises(TypeError, match=f"^{where}: .*{message}"):
            drive()


OUTPUT = re.escape("`def output(self, state) -> Tensor`")
STEP_ERRORS = [
    (ReturnsArray, r"ReturnsArray.forward\(x_t, state\) returned a ndarray, which is not a state"),
    (ReturnsNothing, r"ReturnsNothing.forward\(x_t, state\) returned None, which is not a state"),
    (
        UnnamedDict,
        r"UnnamedDict: cannot tell h_t in a state that is a dict with keys \['a', 'b'\]; "
        rf"add {OUTPUT}",
    ),
    (
        OutputOfNumbers,
        rf"OutputOfNumbers.output\(state\) returned a ndarray, not a Tensor: {OUTPUT}",
    ),
]


@pytest.mark.parametrize("cls, message", STEP_ERRORS)
def test_a_step_that_breaks_the_protocol_names_the_method_to_fix(cls, message):
    cell = cls(np.random.default_rng(0))
    x = sequence()
    for drive in [
        lambda: nn.Recurrent(cell)(x),
        lambda: nn.ManyToOne(cell, 2)(x),
        lambda: viz.gradient_flow(nn.Recurrent(cell), x, last_step_loss),
        lambda: nn.OneToMany(cell, 4, 5).generate(ts.randn(3, 4, dtype=F64), 2),
    ]:
        with pytest.raises(TypeError, match=message):
            drive()
    if cls in (ReturnsArray, ReturnsNothing):
        with pytest.raises(TypeError, match=message):
            viz.draw_cell_step(cell)


def test_a_cell_without_sizes_is_told_which_attribute_to_set():
    class Unsized(nn.Module):
        def forward(self, x, h=None):
            return x.tanh()

    outputs, _ = nn.Recurrent(Unsized())(sequence())  # driving needs no sizes
    np.testing.assert_allclose(outputs.data, np.tanh(sequence().data))
    with pytest.raises(
        TypeError, match=r"ManyToOne: Unsized has no hidden_size .*self.hidden_size = "
    ):
        nn.ManyToOne(Unsized(), 2)
    with pytest.raises(TypeError, match=r"draw_cell_step: Unsized has no input_size"):
        viz.draw_cell_step(Unsized())


# --------------------------------------------------------------------------- truncated BPTT


@pytest.mark.parametrize(
    "model, flag",
    [
        (nn.Recurrent(nn.RNNCell(D, H, dtype=F64), reverse=True), "reverse"),
        (nn.GRU(D, H, bidirectional=True, dtype=F64), "bidirectional"),
        (nn.LSTM(D, H, bidirectional=True, batch_first=True, dtype=F64), "bidirectional"),
    ],
)
def test_truncated_bptt_refuses_a_model_that_reads_backwards(model, flag):
    x = sequence(T=6)
    if getattr(model, "batch_first", False):
        x = x.transpose(0, 1)
    loss = lambda out, steps: out.sum()  # noqa: E731
    with pytest.raises(
        ValueError,
        match=rf"truncated_bptt: .* has {flag}=True, so it reads the sequence backwards"
        ".*chunk_size >= 6",
    ):
        nn.truncated_bptt(model, x, 4, loss)
    assert all(p.grad is None for p in model.parameters())
    # One chunk carries no state: that is full BPTT, and allowed.
    result = nn.truncated_bptt(model, x, 6, loss)
    model.zero_grad()
    full = model(x)[0].sum()
    full.backward()
    assert result.losses == pytest.approx([full.item()], rel=1e-12)


# --------------------------------------------------------------------------- initial states


class LearnedStart(PlainElman):
    """A plain Module whose initial state is a float32 parameter it learns."""

    def __init__(self, rng):
        super().__init__(rng)
        self.h0 = nn.Parameter(np.full((1, H), 0.5, dtype=np.float32))
        self.asked = []

    def initial_state(self, batch_size, dtype=None):
        self.asked.append(dtype)
        return self.h0.expand(batch_size, H)


def test_the_driver_asks_for_the_dtype_when_it_can_and_casts_when_it_cannot():
    x = sequence(T=2, B=2)
    cell = LearnedStart(np.random.default_rng(0))
    outputs, _ = nn.Recurrent(cell)(x)
    assert cell.asked == [np.float64]  # passed on, and ignored by this cell: cast instead
    h1 = np.tanh(x.data[0] @ cell.U.data.T + 0.5 * np.ones((2, H)) @ cell.W.data.T)
    np.testing.assert_allclose(outputs.data[0], h1, atol=1e-7)
    assert outputs.dtype == F64
    outputs.sum().backward()  # the cast is differentiable: the learned start learns
    assert cell.h0.grad.dtype == np.float32

    def loss_of(h0):  # the same two steps in numpy, for central differences
        h, total = np.broadcast_to(h0, (2, H)), 0.0
        for x_t in x.data:
            h = np.tanh(x_t @ cell.U.data.T + h @ cell.W.data.T)
            total += h.sum()
        return total

    eye, eps = np.eye(H)[:, None, :], 1e-6
    numeric = [(loss_of(0.5 + eps * e) - loss_of(0.5 - eps * e)) / (2 * eps) for e in eye]
    np.testing.assert_allclose(cell.h0.grad.data[0], numeric, rtol=1e-5)
    pair = PlainPair(np.random.default_rng(0))  # initial_state(batch_size): float32 zeros
    _, final = nn.Recurrent(pair)(x)
    assert all(t.dtype == F64 for t in final)
