"""Module system and basic layers: registration, state dicts, modes, dtypes, gradients."""

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.nn import init
from tinygrad_seq.testing import gradcheck
from tinygrad_seq.testing import strategies as tst


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4))
        self.head = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.encoder(x).tanh() * self.scale)


def test_named_parameters_are_dotted_and_in_definition_order():
    names = [name for name, _ in TwoLayer().named_parameters()]
    assert names == [
        "scale",
        "encoder.weight",
        "encoder.bias",
        "head.0.weight",
        "head.0.bias",
        "head.2.weight",
        "head.2.bias",
    ]


def test_replacing_a_parameter_keeps_its_place_in_the_order():
    layer = nn.Linear(2, 3)
    layer.weight = nn.Parameter(np.zeros((3, 2)))
    assert list(layer.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(layer.state_dict()["weight"], 0)


def test_children_modules_and_reassignment():
    model = TwoLayer()
    assert [type(m).__name__ for m in model.children()] == ["Linear", "Sequential"]
    assert len(list(model.modules())) == 6
    model.encoder = None  # replacing a sub-module unregisters it
    assert "encoder.weight" not in dict(model.named_parameters())


def test_shared_parameters_are_listed_once_but_saved_under_every_name():
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = model.a
    assert len(list(model.parameters())) == 2
    state = model.state_dict()  # as PyTorch: tied weights appear under each name
    assert list(state) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    state["b.weight"] = state["a.weight"] = np.eye(2)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.b.weight.data, np.eye(2))


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_train_and_eval_reach_every_submodule():
    model = TwoLayer().eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_clears_every_gradient():
    model = TwoLayer()
    model(ts.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_double_keeps_the_parameter_objects():
    model = TwoLayer()
    before = list(model.parameters())
    model.double()
    after = list(model.parameters())
    assert all(a is b for a, b in zip(before, after, strict=True))
    assert all(p.dtype == np.float64 for p in after)
    assert model(ts.randn(2, 3, dtype=np.float64)).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_state_dict_round_trip_copies():
    model, other = TwoLayer(), TwoLayer()
    state = model.state_dict()
    assert list(state) == [name for name, _ in model.named_parameters()]
    state["scale"][0] = 123.0  # a copy: the model is unchanged
    assert model.scale.data[0] == 1.0
    other.load_state_dict(model.state_dict())
    x = ts.randn(4, 3)
    model.eval(), other.eval()
    np.testing.assert_array_equal(model(x).data, other(x).data)


def test_load_state_dict_casts_to_each_parameters_dtype():
    model = nn.Linear(2, 3)
    model.load_state_dict({"weight": np.ones((3, 2), dtype=np.float64), "bias": [1, 2, 3]})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    np.testing.assert_array_equal(model.bias.data, [1, 2, 3])


def test_load_state_dict_is_all_or_nothing_and_names_every_problem():
    model = TwoLayer()
    before = model.state_dict()
    bad = dict(before)
    bad["encoder.weight"] = np.zeros((5, 3))
    del bad["head.2.bias"]
    bad["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(bad)
    message = str(error.value)
    assert "'encoder.weight': expected shape (4, 3), found (5, 3)" in message
    assert "missing key 'head.2.bias' (expected shape (2,))" in message
    assert "unexpected key 'extra'" in message
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict_ignores_missing_and_unexpected():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": np.eye(2), "other": np.zeros(3)}, strict=False)
    np.testing.assert_array_equal(model.weight.data, np.eye(2))
    with pytest.raises(RuntimeError, match="expected shape"):
        model.load_state_dict({"weight": np.eye(3)}, strict=False)


def test_repr_prints_the_tree():
    text = repr(TwoLayer())
    assert "(encoder): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(1): Dropout(p=0.5)" in text


# --------------------------------------------------------------------------- layers


def test_linear_matches_x_wT_plus_b_and_pytorch_init_bounds():
    layer = nn.Linear(16, 5, rng=np.random.default_rng(0))
    bound = 1 / 4
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound  # spread over the range, not zeros
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(
        layer(ts.tensor(x)).data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-6
    )


def test_linear_without_bias_and_bad_input():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"Linear: input of shape \(2, 4\).*in_features=3"):
        layer(ts.ones(2, 4))


@given(data=st.data())
def test_linear_gradients(data):
    batch = data.draw(tst.shapes(max_dims=2), label="batch shape")
    layer = nn.Linear(3, 2, dtype=np.float64, rng=data.draw(tst.rngs()))
    x = ts.tensor(data.draw(tst.arrays(batch + (3,))), requires_grad=True)
    gradcheck(lambda x, w, b: x @ w.transpose() + b, [x, layer.weight, layer.bias])
    gradcheck(lambda x: layer(x), [x])


def test_embedding_accumulates_repeated_rows_and_respects_padding():
    emb = nn.Embedding(4, 2, padding_idx=0, dtype=np.float64)
    assert np.all(emb.weight.data[0] == 0)
    out = emb(np.array([[1, 1, 0], [3, 1, 0]]))
    assert out.shape == (2, 3, 2)
    out.backward(np.ones((2, 3, 2)))
    np.testing.assert_array_equal(emb.weight.grad.data[:, 0], [0.0, 3.0, 0.0, 1.0])
    with pytest.raises(IndexError, match="embedding: index 4 is out of range for 4"):
        emb(np.array([4]))


def test_embedding_padding_row_returns_its_values_but_gets_no_gradient():
    emb = nn.Embedding(4, 3, padding_idx=1, dtype=np.float64)
    emb.weight.data[1] = [1.0, 2.0, 3.0]  # e.g. weights copied from PyTorch
    out = emb(np.array([1, 2, 1]))
    np.testing.assert_array_equal(out.data[0], [1.0, 2.0, 3.0])
    out.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(emb.weight.grad.data[1], 0.0)
    np.testing.assert_array_equal(emb.weight.grad.data[2], 1.0)


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = ts.ones(1000, dtype=np.float64)
    a = nn.Dropout(0.25, rng=np.random.default_rng(3))(x)
    b = nn.Dropout(0.25, rng=np.random.default_rng(3))(x)
    np.testing.assert_array_equal(a.data, b.data)
    assert set(np.unique(a.data)) <= {0.0, 1 / 0.75}
    assert 0.18 < np.mean(a.data == 0) < 0.32
    layer = nn.Dropout(0.25).eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="p must be between 0 and 1"):
        nn.Dropout(1.5)


def test_sequential_indexing_and_type_check():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert len(seq) == 2 and isinstance(seq[1], nn.Linear)
    with pytest.raises(TypeError, match="item 1 is a int"):
        nn.Sequential(nn.Linear(2, 2), 3)


# --------------------------------------------------------------------------- init


def test_initialisers():
    rng = np.random.default_rng(0)
    w = nn.Parameter(np.empty((64, 32)))
    init.orthogonal_(w, gain=2.0, rng=rng)
    np.testing.assert_allclose(np.linalg.svd(w.data, compute_uv=False), 2.0, rtol=1e-5)
    init.xavier_uniform_(w, rng=rng)
    assert np.abs(w.data).max() <= np.sqrt(6 / 96)
    init.xavier_normal_(w, rng=rng)
    assert abs(w.data.std() - np.sqrt(2 / 96)) < 0.02
    init.constant_(w, 0.5)
    assert np.all(w.data == 0.5)
    init.zeros_(w), init.ones_(w)
    assert np.all(w.data == 1)
    a = init.normal_(nn.Parameter(np.empty(5)), rng=np.random.default_rng(9))
    b = init.normal_(nn.Parameter(np.empty(5)), rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(np.empty(3)))


def test_parameter_is_a_float_leaf_that_requires_grad():
    p = nn.Parameter([1, 2, 3])
    assert p.requires_grad and p.is_leaf and p.dtype == np.float32
    assert "Parameter containing" in repr(p)


# --------------------------------------------------------------------------- PyTorch habits


@pytest.mark.parametrize("value", [ts.zeros(3, 2), np.zeros((3, 2)), [[0.0, 0.0]] * 3])
def test_assigning_a_non_parameter_over_a_parameter_raises_pytorchs_type_error(value):
    layer = nn.Linear(2, 3)
    weight = layer.weight
    kind = type(value).__name__
    with pytest.raises(
        TypeError, match=rf"cannot assign '{kind}' as parameter 'weight' \(Parameter or None"
    ):
        layer.weight = value
    # Nothing changed: the parameter is still registered and still the attribute.
    assert layer.weight is weight
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_a_parameter_can_still_be_replaced_or_set_to_none():
    layer = nn.Linear(2, 3)
    layer.weight = nn.Parameter(np.ones((3, 2)))
    np.testing.assert_array_equal(layer.state_dict()["weight"], 1)
    layer.bias = None  # as PyTorch: None removes the parameter
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    layer.bias = nn.Parameter(np.zeros(3))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_assigning_a_non_module_over_a_sub_module_raises():
    model = TwoLayer()
    with pytest.raises(TypeError, match=r"cannot assign 'int' as child module 'encoder'"):
        model.encoder = 3
    assert isinstance(model.encoder, nn.Linear)
    assert "encoder.weight" in dict(model.named_parameters())


class FakeTorchTensor:
    """A stand-in with the methods the loader uses of a torch tensor (and no __array__)."""

    def __init__(self, array):
        self._array = np.asarray(array)
        self.calls = []

    def detach(self):
        self.calls.append("detach")
        return self

    def cpu(self):
        self.calls.append("cpu")
        return self

    def numpy(self):
        self.calls.append("numpy")
        return self._array


def test_load_state_dict_reads_pytorch_tensors_without_importing_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` would now fail
    layer = nn.Linear(2, 3)
    state = {
        "weight": FakeTorchTensor(np.arange(6.0).reshape(3, 2)),
        "bias": FakeTorchTensor([1, 2, 3]),
    }
    layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, np.arange(6.0).reshape(3, 2))
    assert layer.weight.dtype == np.float32  # cast to the parameter's dtype, as PyTorch
    assert state["weight"].calls == ["detach", "cpu", "numpy"]
    state["weight"]._array[0, 0] = 99.0  # copied, not shared
    assert layer.weight.data[0, 0] == 0.0


def test_load_state_dict_refuses_non_numbers_and_changes_nothing():
    layer = nn.Linear(2, 1)
    before = layer.state_dict()
    with pytest.raises(RuntimeError, match=r"key 'weight': dtype <U1 is not a number type"):
        layer.load_state_dict({"weight": np.array([["a", "b"]]), "bias": np.zeros(1)})
    np.testing.assert_array_equal(layer.bias.data, before["bias"])


def test_load_state_dict_accepts_a_torch_modules_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    ours = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    out, (h, c) = ours(ts.tensor(x))
    expected, (h_t, c_t) = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.data, h_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.data, c_t.detach().numpy(), rtol=1e-10, atol=1e-12)
