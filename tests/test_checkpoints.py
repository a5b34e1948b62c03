"""Model and optimizer checkpoints round-trip exactly; damage is refused and changes nothing.

Also: the gradient-flow tools on the shortest sequences (one step) and the clear error for
an empty one.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import functional as F
from tinygrad_seq import nn, optim, viz


def trained(kind, hidden, layers, optimizer, seed):
    rng = np.random.default_rng(seed)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](
        2, hidden, num_layers=layers, rng=rng
    )
    opt = {"sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9), "adam": optim.Adam}[optimizer](
        list(layer.parameters())
    )
    for _ in range(2):
        out, _ = layer(ts.tensor(rng.standard_normal((3, 2, 2)).astype(np.float32)))
        opt.zero_grad()
        out.sum().backward()
        opt.step()
    return layer, opt


CONFIGS = dict(
    kind=st.sampled_from(["rnn", "lstm", "gru"]),
    hidden=st.integers(1, 4),
    layers=st.integers(1, 2),
    optimizer=st.sampled_from(["sgd", "adam"]),
    seed=st.integers(0, 1000),
)


@settings(max_examples=15)
@given(**CONFIGS)
def test_model_and_optimizer_state_round_trip_bit_identically(
    tmp_path_factory, kind, hidden, layers, optimizer, seed
):
    layer, opt = trained(kind, hidden, layers, optimizer, seed)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    ts.save({"model": layer.state_dict(), "optim": opt.state_dict()}, path)
    fresh, fresh_opt = trained(kind, hidden, layers, optimizer, seed + 1)
    loaded = ts.load(path)
    fresh.load_state_dict(loaded["model"])
    fresh_opt.load_state_dict(loaded["optim"])
    for name, value in layer.state_dict().items():
        assert np.array_equal(fresh.state_dict()[name], value)
        assert fresh.state_dict()[name].dtype == value.dtype
    # The next step is the same too: the optimizer state came back exactly.
    x = ts.tensor(np.random.default_rng(seed).standard_normal((3, 2, 2)).astype(np.float32))
    for model, optimizer_ in ((layer, opt), (fresh, fresh_opt)):
        out, _ = model(x)
        optimizer_.zero_grad()
        out.sum().backward()
        optimizer_.step()
    for name, value in layer.state_dict().items():
        assert np.array_equal(fresh.state_dict()[name], value)


@settings(max_examples=20)
@given(position=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_a_damaged_checkpoint_is_refused_and_the_model_keeps_its_weights(
    tmp_path_factory, position, flip
):
    layer, opt = trained("lstm", 3, 1, "adam", 0)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    ts.save({"model": layer.state_dict(), "optim": opt.state_dict()}, path)
    data = bytearray(path.read_bytes())
    data[int(position * len(data))] ^= flip
    path.write_bytes(bytes(data))
    target, _ = trained("lstm", 3, 1, "adam", 1)
    before = target.state_dict()

    def restore():
        loaded = ts.load(path)
        target.load_state_dict(loaded["model"])

    with pytest.raises(ValueError, match=str(path.name)):
        restore()
    for name, value in target.state_dict().items():
        assert np.array_equal(value, before[name])


# --------------------------------------------------------------------------- short sequences


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradient_flow_and_its_pictures_work_for_a_single_step(kind):
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](2, 3, dtype=np.float64)
    x = ts.tensor(np.ones((1, 2, 2)))
    flow = viz.gradient_flow(layer, x, lambda out, state: F.mse_loss(out[-1], np.zeros((2, 3))))
    assert flow.hidden_norms.shape == (1,)
    assert np.isfinite(flow.hidden_norms).all()
    graph = viz.draw_flow_chain({kind: flow})
    assert "digraph" in graph.source


def test_an_empty_sequence_is_a_clear_error():
    with pytest.raises(ValueError, match="no time steps"):
        nn.LSTM(2, 3)(ts.zeros(0, 2, 2))


def test_keys_that_look_like_numbered_entries_round_trip(tmp_path):
    path = tmp_path / "checkpoint.npz"
    ts.save({"w": np.ones(2)}, path)
    state = {"__array_1__": np.array([1.0]), "my key": np.array([2.0]), "__array_2__": np.ones(1)}
    ts.save(state, path)
    loaded = ts.load(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)
