"""Optional: our cells and layers against ``torch.nn`` with copied state dicts.

Skipped when torch is not installed. In float64 everything must agree to 1e-10 (only the
order of summation differs): outputs, final states, and the gradients of the input, the
initial state and every parameter. One float32 round checks the tolerance the issue promises
(1e-5). Variable lengths are compared with PyTorch's packed sequences, which is what fixes
the meaning of ``lengths`` with ``reverse``: each sequence is read backwards within its own
length.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn

torch = pytest.importorskip("torch")

TOL64 = {"rtol": 1e-10, "atol": 1e-12}
TOL32 = {"rtol": 1e-5, "atol": 1e-5}


def copy_weights(ours: nn.Module, theirs) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def flat(state) -> list:
    return list(state) if isinstance(state, tuple | list) else [state]


def upstream(shapes, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.5, 1.5, shape) for shape in shapes]


def compare(ours_out, theirs_out, ours_wrt, theirs_wrt, names, tol) -> None:
    """Same values for the outputs, and the same gradients of Σ⟨v, outputs⟩ for ``wrt``."""
    vs = upstream([o.shape for o in ours_out], seed=len(ours_out))
    for k, (a, b) in enumerate(zip(ours_out, theirs_out, strict=True)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), **tol, err_msg=f"output {k}")
    ours_loss = sum(
        (o * ts.tensor(v.astype(o.dtype))).sum() for o, v in zip(ours_out, vs, strict=True)
    )
    theirs_loss = sum(
        (o * torch.tensor(v, dtype=o.dtype)).sum() for o, v in zip(theirs_out, vs, strict=True)
    )
    ours_grads = ts.grad(ours_loss, ours_wrt, allow_unused=True)
    theirs_grads = torch.autograd.grad(theirs_loss, theirs_wrt, allow_unused=True)
    for name, a, b in zip(names, ours_grads, theirs_grads, strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), **tol, err_msg=f"gradient of {name}")


# --------------------------------------------------------------------------- cells


CELLS = {
    "rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {}),
    "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (nn.GRUCell, torch.nn.GRUCell, {}),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(kind, bias, dtype):
    ours_cls, theirs_cls, options = CELLS[kind]
    torch.manual_seed(0)
    theirs = theirs_cls(3, 4, bias=bias, dtype=torch_dtype(dtype), **options)
    ours = ours_cls(3, 4, bias=bias, dtype=dtype, **options)
    copy_weights(ours, theirs)
    rng = np.random.default_rng(1)
    x, h = rng.uniform(-1, 1, (2, 3)).astype(dtype), rng.uniform(-1, 1, (2, 4)).astype(dtype)
    states = [h, rng.uniform(-1, 1, (2, 4)).astype(dtype)] if kind == "lstm" else [h]

    ours_in = [ts.tensor(a, requires_grad=True) for a in [x, *states]]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in [x, *states]]
    pack = tuple if kind == "lstm" else (lambda s: s[0])
    ours_out = flat(ours(ours_in[0], pack(ours_in[1:])))
    theirs_out = flat(theirs(theirs_in[0], pack(theirs_in[1:])))
    names = ["x", *[f"state{k}" for k in range(len(states))]]
    names += [n for n, _ in ours.named_parameters()]
    compare(
        ours_out,
        theirs_out,
        [*ours_in, *ours.parameters()],
        [*theirs_in, *theirs.parameters()],
        names,
        TOL64 if dtype == np.float64 else TOL32,
    )


# --------------------------------------------------------------------------- layers


LAYERS = {
    "RNN": (nn.RNN, torch.nn.RNN, {}),
    "RNN-relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "LSTM": (nn.LSTM, torch.nn.LSTM, {}),
    "GRU": (nn.GRU, torch.nn.GRU, {}),
}

CONFIGS = [
    pytest.param({"num_layers": 2}, True, id="2-layers-hx"),
    pytest.param({"num_layers": 2, "bidirectional": True}, True, id="2-layers-bidirectional-hx"),
    pytest.param({"bidirectional": True, "batch_first": True}, False, id="bidir-batch-first"),
    pytest.param(
        {"num_layers": 2, "bidirectional": True, "batch_first": True, "bias": False},
        True,
        id="2-layers-bidirectional-batch-first-no-bias-hx",
    ),
]


def make_pair(kind: str, options: dict, dtype, D: int = 3, H: int = 4):
    ours_cls, theirs_cls, extra = LAYERS[kind]
    torch.manual_seed(2)
    theirs = theirs_cls(D, H, dtype=torch_dtype(dtype), **extra, **options)
    ours = ours_cls(D, H, dtype=dtype, **extra, **options)
    copy_weights(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    return ours, theirs


def initial_states(kind: str, layer, B: int, dtype, rng) -> list[np.ndarray]:
    shape = (layer.num_layers * (2 if layer.bidirectional else 1), B, layer.hidden_size)
    return [rng.uniform(-1, 1, shape).astype(dtype) for _ in range(2 if kind == "LSTM" else 1)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("options, with_hx", CONFIGS)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_matches_torch(kind, options, with_hx, dtype):
    ours, theirs = make_pair(kind, options, dtype)
    rng = np.random.default_rng(3)
    T, B = 4, 3
    x = rng.uniform(-1, 1, (B, T, 3) if options.get("batch_first") else (T, B, 3)).astype(dtype)
    states = initial_states(kind, ours, B, dtype, rng) if with_hx else []

    ours_in = [ts.tensor(a, requires_grad=True) for a in [x, *states]]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in [x, *states]]

    def hx(inputs):
        if not states:
            return None
        return tuple(inputs[1:]) if kind == "LSTM" else inputs[1]

    ours_y, ours_h = ours(ours_in[0], hx(ours_in))
    theirs_y, theirs_h = theirs(theirs_in[0], hx(theirs_in))
    names = ["x", *[f"hx{k}" for k in range(len(states))], *[n for n, _ in ours.named_parameters()]]
    compare(
        [ours_y, *flat(ours_h)],
        [theirs_y, *flat(theirs_h)],
        [*ours_in, *ours.parameters()],
        [*theirs_in, *theirs.parameters()],
        names,
        TOL64 if dtype == np.float64 else TOL32,
    )


@pytest.mark.parametrize("batch_first", [False, True], ids=["time-first", "batch-first"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_lengths_match_torch_packed_sequences(kind, batch_first):
    """``lengths`` means what ``pack_padded_sequence`` means, in both directions."""
    options = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    ours, theirs = make_pair(kind, options, np.float64)
    rng = np.random.default_rng(4)
    T, B = 5, 4
    lengths = np.array([3, 5, 1, 4])
    x = rng.uniform(-1, 1, (B, T, 3) if batch_first else (T, B, 3))
    states = initial_states(kind, ours, B, np.float64, rng)
    ours_in = [ts.tensor(a, requires_grad=True) for a in [x, *states]]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in [x, *states]]
    pack = tuple if kind == "LSTM" else (lambda s: s[0])

    ours_y, ours_h = ours(ours_in[0], pack(ours_in[1:]), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        theirs_in[0], torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
    )
    theirs_packed, theirs_h = theirs(packed, pack(theirs_in[1:]))
    theirs_y, _ = torch.nn.utils.rnn.pad_packed_sequence(
        theirs_packed, batch_first=batch_first, total_length=T
    )
    names = ["x", *[f"hx{k}" for k in range(len(states))], *[n for n, _ in ours.named_parameters()]]
    compare(
        [ours_y, *flat(ours_h)],
        [theirs_y, *flat(theirs_h)],
        [*ours_in, *ours.parameters()],
        [*theirs_in, *theirs.parameters()],
        names,
        TOL64,
    )


def test_layer_default_initialisation_has_torchs_distribution():
    """Every parameter from U(−1/√H, 1/√H), as torch's: same bounds, both ends reached."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 16, num_layers=2)
    ours = nn.LSTM(3, 16, num_layers=2, rng=np.random.default_rng(0))
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert a.shape == tuple(b.shape) and a.dtype == np.float32, name
        bound = 1 / 4
        for values in (a.data, b.detach().numpy()):
            assert np.abs(values).max() <= bound and values.max() > 0.9 * bound, name
