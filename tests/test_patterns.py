"""The four patterns, truncated BPTT, a user's own cell, and a character model that learns."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import functional as F
from tinygrad_seq import nn, optim
from tinygrad_seq.data import CharVocab, tiny_text
from tinygrad_seq.testing import gradcheck

F64 = np.float64


class PeepholeLSTM(nn.Cell):
    """A user's cell: an LSTM whose gates also look at the cell state (Gers & Schmidhuber)."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size, dtype=F64)
        self.peep = nn.Parameter(np.full((3, hidden_size), 0.1))

    def initial_state(self, batch_size, dtype=None):
        zeros = ts.zeros(batch_size, self.hidden_size, dtype=dtype or F64)
        return zeros, zeros

    def output(self, state):
        return state[0]

    def forward(self, x, state=None):
        h, c = state if state is not None else self.initial_state(x.shape[0])
        i, f, g, o = self.gates(ts.cat([x, h], axis=1)).chunk(4, axis=1)
        i, f = (i + self.peep[0] * c).sigmoid(), (f + self.peep[1] * c).sigmoid()
        c = f * c + i * g.tanh()
        return (o + self.peep[2] * c).sigmoid() * c.tanh(), c


def cells(kind, input_size, hidden_size, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "peephole":
        return PeepholeLSTM(input_size, hidden_size)
    cell_type = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    return cell_type(input_size, hidden_size, dtype=F64, rng=rng)


KINDS = ["rnn", "lstm", "gru", "peephole"]


# --------------------------------------------------------------------------- sample


def test_sample_is_greedy_at_temperature_zero():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    np.testing.assert_array_equal(nn.sample(logits, 0.0), [1, 0])


def test_sample_follows_the_softmax_of_scaled_logits():
    logits = np.log(np.array([[0.2, 0.5, 0.3]]))
    draws = np.concatenate([nn.sample(logits, 1.0, np.random.default_rng(k)) for k in range(4000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 4000, [0.2, 0.5, 0.3], atol=0.03)
    hot = np.concatenate([nn.sample(logits, 50.0, np.random.default_rng(k)) for k in range(3000)])
    np.testing.assert_allclose(np.bincount(hot, minlength=3) / 3000, 1 / 3, atol=0.04)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        nn.sample(logits, -1.0)


# --------------------------------------------------------------------------- patterns


@pytest.mark.parametrize("kind", KINDS)
def test_many_to_one_answers_from_each_sequences_own_last_step(kind):
    model = nn.ManyToOne(cells(kind, 3, 4), 2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, 3))
    lengths = np.array([5, 2, 4])
    together = model(ts.tensor(x), lengths=lengths)
    assert together.shape == (3, 2)
    for b, length in enumerate(lengths):
        alone = model(ts.tensor(x[:length, b : b + 1]))
        np.testing.assert_allclose(together.data[b], alone.data[0], rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_many_to_many_applies_the_head_at_every_step(kind):
    model = nn.ManyToMany(cells(kind, 3, 4), 5)
    x = ts.tensor(np.random.default_rng(2).standard_normal((6, 2, 3)))
    logits = model(x)
    assert logits.shape == (6, 2, 5)
    outputs, _ = model.encoder(x)
    np.testing.assert_allclose(logits.data, model.head(outputs).data, rtol=1e-12)


@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 100), steps=st.integers(1, 4))
def test_pattern_gradients_match_central_differences(kind, seed, steps):
    rng = np.random.default_rng(seed)
    x = ts.tensor(rng.uniform(-1, 1, (steps, 2, 3)), requires_grad=True)
    many_to_one = nn.ManyToOne(cells(kind, 3, 3, seed), 2)
    gradcheck(lambda x, w: many_to_one(x), [x, many_to_one.head.weight])
    many_to_many = nn.ManyToMany(cells(kind, 3, 3, seed), 2)
    weights = list(many_to_many.encoder.cell.parameters())
    gradcheck(lambda x, *w: many_to_many(x), [x, *weights])


@pytest.mark.parametrize("kind", KINDS)
def test_one_to_many_free_running_agrees_with_teacher_forcing(kind):
    model = nn.OneToMany(cells(kind, 4, 5), feature_size=3, vocab_size=6)
    features = ts.tensor(np.random.default_rng(3).standard_normal((2, 3)))
    tokens = model.generate(features, max_length=5)
    assert tokens.shape == (5, 2) and tokens.dtype.kind == "i"
    # Feeding the generated tokens back as teacher-forcing targets reproduces each choice.
    logits = model(features, tokens)
    assert logits.shape == (5, 2, 6)
    np.testing.assert_array_equal(logits.data.argmax(axis=-1), tokens)


def test_one_to_many_sampling_is_reproducible_and_temperature_matters():
    model = nn.OneToMany(cells("lstm", 4, 5), feature_size=3, vocab_size=6)
    features = ts.tensor(np.ones((8, 3)))
    a = model.generate(features, 6, temperature=1.0, rng=np.random.default_rng(0))
    b = model.generate(features, 6, temperature=1.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    greedy = model.generate(features, 6)
    assert (greedy == greedy[:, :1]).all()  # identical inputs, identical greedy captions
    assert not (a == a[:, :1]).all()  # sampling varies across the batch


@pytest.mark.parametrize("kind", KINDS)
def test_seq2seq_free_running_agrees_with_teacher_forcing(kind):
    model = nn.Seq2Seq(cells(kind, 4, 5, 1), cells(kind, 4, 5, 2), 7, 6, start_token=0)
    source = np.random.default_rng(4).integers(0, 7, (4, 3))
    decoded = model.decode(source, max_length=5)
    assert decoded.shape == (5, 3)
    logits = model(source, model.shift_right(decoded))
    np.testing.assert_array_equal(logits.data.argmax(axis=-1), decoded)


def test_seq2seq_checks_its_cells_and_tokens():
    with pytest.raises(ValueError, match=r"encoder's hidden_size \(4\) must equal .*\(5\)"):
        nn.Seq2Seq(cells("gru", 3, 4), cells("gru", 3, 5), 5, 5)
    model = nn.Seq2Seq(cells("gru", 3, 4), cells("gru", 3, 4), 5, 5)
    with pytest.raises(ValueError, match=r"token ids must be an integer array of shape \(T, B\)"):
        model.encode(np.zeros((3, 2, 1)))


def test_seq2seq_learns_to_reverse_short_sequences():
    rng = np.random.default_rng(5)
    model = nn.Seq2Seq(cells("gru", 8, 16, 1), cells("gru", 8, 16, 2), 5, 5, start_token=0)
    opt = optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(60):
        source = rng.integers(1, 5, (3, 16))
        target = source[::-1]
        logits = model(source, model.shift_right(target))
        loss = F.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


# --------------------------------------------------------------------------- truncated BPTT


def _driver_and_data(kind, seed=0, length=7):
    rng = np.random.default_rng(seed)
    driver = nn.Recurrent(cells(kind, 3, 4, seed))
    x = ts.tensor(rng.standard_normal((length, 2, 3)), requires_grad=True)
    targets = rng.standard_normal((length, 2, 4))
    return driver, x, targets


def _mse(targets):
    return lambda outputs, steps: F.mse_loss(outputs, targets[steps], reduction="sum")


@pytest.mark.parametrize("kind", KINDS)
def test_one_chunk_of_the_whole_length_is_exactly_full_bptt(kind):
    driver, x, targets = _driver_and_data(kind)
    outputs, _ = driver(x)
    F.mse_loss(outputs, targets, reduction="sum").backward()
    full = [x.grad.data.copy()] + [p.grad.data.copy() for p in driver.parameters()]
    x.grad = None
    driver.zero_grad()
    nn.truncated_bptt(driver, x, chunk_size=7, loss_fn=_mse(targets))
    truncated = [x.grad.data] + [p.grad.data for p in driver.parameters()]
    for a, b in zip(full, truncated, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_no_gradient_crosses_a_chunk_boundary(kind, chunk):
    driver, x, targets = _driver_and_data(kind)
    last = slice(6, 7)

    def loss_on_the_last_step_only(outputs, steps):
        if steps.stop < 7:
            return (outputs * 0.0).sum()
        return F.mse_loss(outputs[-1:], targets[last], reduction="sum")

    nn.truncated_bptt(driver, x, chunk_size=chunk, loss_fn=loss_on_the_last_step_only)
    first_of_last_chunk = 7 - (7 - 1) % chunk - 1
    assert np.all(x.grad.data[:first_of_last_chunk] == 0)
    assert np.any(x.grad.data[6] != 0)


def test_truncated_bptt_with_an_optimizer_updates_once_per_chunk_and_detaches():
    driver, x, targets = _driver_and_data("lstm")
    opt = optim.SGD(driver.parameters(), lr=0.01)
    before = [p.data.copy() for p in driver.parameters()]
    result = nn.truncated_bptt(driver, x, 3, _mse(targets), optimizer=opt)
    assert len(result.losses) == 3
    h, c = result.state
    assert h.grad_fn is None and c.grad_fn is None and h.shape == (2, 4)
    assert any(np.any(p.data != b) for p, b in zip(driver.parameters(), before, strict=True))


def test_truncated_bptt_drives_layers_batch_first():
    layer = nn.GRU(3, 4, num_layers=2, batch_first=True, dtype=F64)
    x = ts.tensor(np.random.default_rng(6).standard_normal((2, 5, 3)))
    seen = []
    result = nn.truncated_bptt(
        layer, x, 2, lambda out, steps: seen.append((out.shape, steps)) or out.sum()
    )
    assert [shape for shape, _ in seen] == [(2, 2, 4), (2, 2, 4), (2, 1, 4)]
    assert result.state.shape == (2, 2, 4)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        nn.truncated_bptt(layer, x, 0, lambda out, steps: out.sum())


def test_detach_state_keeps_structure():
    h = ts.tensor([1.0], requires_grad=True) * 2
    state = nn.detach_state((h, [h]))
    assert isinstance(state, tuple) and isinstance(state[1], list)
    assert state[0].grad_fn is None and state[1][0].grad_fn is None
    with pytest.raises(TypeError, match="detach_state"):
        nn.detach_state("h")


# --------------------------------------------------------------------------- learning


def test_a_users_cell_trains_with_every_piece_of_the_machinery():
    rng = np.random.default_rng(7)
    model = nn.ManyToOne(PeepholeLSTM(2, 8), 1)
    opt = optim.Adam(model.parameters(), lr=0.05)
    x = rng.uniform(-1, 1, (6, 32, 2))
    y = ts.tensor(x[..., 0].sum(axis=0, keepdims=True).T)
    losses = []
    for _ in range(40):
        loss = F.mse_loss(model(ts.tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


@given(seed=st.integers(0, 3))
def test_a_character_model_on_the_built_in_text_learns(seed):
    text = tiny_text()
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    rng = np.random.default_rng(seed)
    embed = nn.Embedding(len(vocab), 16, rng=rng)
    lstm = nn.LSTM(16, 32, rng=rng)
    head = nn.Linear(32, len(vocab), rng=rng)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = optim.Adam(params, lr=0.02)
    losses = []
    for _ in range(25):
        starts = rng.integers(0, len(ids) - 21, 16)
        window = np.stack([ids[s : s + 21] for s in starts], axis=1)  # (21, B)
        out, _ = lstm(embed(window[:-1]))
        loss = F.cross_entropy(head(out), window[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    uniform = np.log(len(vocab))
    assert abs(losses[0] - uniform) < 0.3
    assert np.mean(losses[-5:]) < 0.8 * uniform


def test_patterns_accept_float32_cells():
    model = nn.ManyToOne(nn.LSTMCell(3, 4), 2)
    out = model(ts.randn(5, 2, 3))
    assert out.dtype == np.float32
