"""tinygrad_seq.data batching: Dataset, TensorDataset, DataLoader, default_collate, padding.

Expected values are written by hand (or drawn from the same numpy Generator the loader is
given); with torch installed the same calls are compared with ``torch.utils.data`` and
``torch.nn.utils.rnn.pad_sequence``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.data import (
    DataLoader,
    Dataset,
    TensorDataset,
    default_collate,
    lengths_of,
    pad_collate,
    pad_sequence,
)
from tinygrad_seq.testing import gradcheck

try:
    import torch
    from torch.nn.utils.rnn import pad_sequence as torch_pad_sequence
    from torch.utils.data import DataLoader as TorchDataLoader
    from torch.utils.data import default_collate as torch_default_collate
except ImportError:  # the torch tier is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

Point = namedtuple("Point", "x y")


def plain(value):
    """A batch as nested Python containers of numpy arrays (Tensors of either library)."""
    if isinstance(value, ts.Tensor):
        return value.numpy()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, tuple | list):
        return (
            type(value)(*map(plain, value))
            if hasattr(value, "_fields")
            else [plain(v) for v in value]
        )
    return value


def assert_same(actual, expected):
    assert type(actual) is type(expected), (type(actual), type(expected))
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, tuple | list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected


# --------------------------------------------------------------------------- default_collate

EXAMPLES = [
    {"x": np.array([1.0, 2.0], dtype=np.float32), "label": 3, "weight": 0.5, "name": "ab"},
    {"x": np.array([3.0, 4.0], dtype=np.float32), "label": 4, "weight": 1.5, "name": "cd"},
]


def test_default_collate_stacks_converts_and_keeps_the_structure():
    batch = plain(default_collate(EXAMPLES))
    assert_same(
        batch,
        {
            "x": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32),
            "label": np.array([3, 4], dtype=np.int64),
            "weight": np.array([0.5, 1.5]),
            "name": ["ab", "cd"],
        },
    )
    pairs = [
        (ts.tensor([1, 2]), True, Point(1.0, np.float32(2))),
        (ts.tensor([3, 4]), False, Point(3.0, np.float32(4))),
    ]
    tensors, flags, points = plain(default_collate(pairs))  # a tuple becomes a list, as in PyTorch
    np.testing.assert_array_equal(tensors, [[1, 2], [3, 4]])
    assert_same(flags, np.array([True, False]))
    assert_same(points, Point(np.array([1.0, 3.0]), np.array([2, 4], dtype=np.float32)))
    assert isinstance(default_collate(pairs), list)


def test_default_collate_keeps_the_graph_of_tensors_that_require_grad():
    w = ts.tensor([1.0, 2.0], requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [5.0, 5.0])


@pytest.mark.parametrize(
    "batch, error, message",
    [
        ([], ValueError, "the batch is empty"),
        (
            [ts.zeros(2), ts.zeros(3)],
            ValueError,
            r"different shapes \[\(2,\), \(3,\)\].*pad_collate",
        ),
        ([np.zeros(2), np.zeros(3)], ValueError, "different shapes"),
        ([(1, 2), (1,)], ValueError, r"same number of elements; got lengths \[1, 2\]"),
        ([np.array(["a"])] * 2, TypeError, "dtype <U1"),
        ([object()] * 2, TypeError, "found object .*collate_fn"),
    ],
)
def test_default_collate_errors_say_what_is_wrong(batch, error, message):
    with pytest.raises(error, match=f"default_collate: .*{message}"):
        default_collate(batch)


@needs_torch
def test_default_collate_agrees_with_pytorch():
    ours = plain(default_collate(EXAMPLES))
    theirs = plain(torch_default_collate(EXAMPLES))
    assert_same(ours, theirs)
    pairs = [(np.arange(3), 1.0, Point(1, 2.0)), (np.arange(3, 6), 2.0, Point(3, 4.0))]
    assert_same(plain(default_collate(pairs)), plain(torch_default_collate(pairs)))


# --------------------------------------------------------------------------- datasets


def test_tensor_dataset_indexes_every_tensor_along_the_first_axis():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    data = TensorDataset(x, ts.tensor(y))
    assert len(data) == 6
    first, label = data[4]
    np.testing.assert_array_equal(first.data, [8.0, 9.0])
    assert label.item() == 4
    with pytest.raises(ValueError, match=r"same first dimension .* \(6, 2\), \(5,\)"):
        TensorDataset(x, y[:5])
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, index):
        return np.array([index, index**2]), index % 2 == 0


# --------------------------------------------------------------------------- DataLoader


@pytest.mark.parametrize("drop_last, sizes", [(False, [3, 3, 1]), (True, [3, 3])])
def test_loader_batches_in_order_with_the_last_batch_smaller_or_dropped(drop_last, sizes):
    loader = DataLoader(Squares(), batch_size=3, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) and [len(b[0]) for b in batches] == sizes
    np.testing.assert_array_equal(batches[1][0].data, [[3, 9], [4, 16], [5, 25]])
    np.testing.assert_array_equal(batches[1][1].data, [False, True, False])


def test_shuffle_follows_the_generator_and_visits_every_example_once():
    x = np.arange(10)
    loader = DataLoader(
        TensorDataset(x), batch_size=4, shuffle=True, generator=np.random.default_rng(5)
    )
    expected = np.random.default_rng(5)
    for _ in range(2):  # each pass is a new permutation from the same generator
        order = expected.permutation(10)
        seen = np.concatenate([batch.data for (batch,) in loader])
        np.testing.assert_array_equal(seen, order)
    ts.manual_seed(3)
    first = np.concatenate([b.data for (b,) in DataLoader(TensorDataset(x), 4, shuffle=True)])
    ts.manual_seed(3)
    again = np.concatenate([b.data for (b,) in DataLoader(TensorDataset(x), 4, shuffle=True)])
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == list(range(10)) and not np.array_equal(first, x)


def test_a_tensor_dataset_batches_as_its_examples_collated_one_by_one():
    data = TensorDataset(np.arange(20.0).reshape(10, 2), np.arange(10) % 3)
    fast = list(DataLoader(data, 4, shuffle=True, generator=np.random.default_rng(1)))
    by_example = list(DataLoader(list(data), 4, shuffle=True, generator=np.random.default_rng(1)))
    assert_same(plain(fast), plain(by_example))


def test_a_custom_collate_fn_receives_the_examples():
    loader = DataLoader(["a", "bb", "ccc"], batch_size=2, collate_fn=lambda b: "+".join(b))
    assert list(loader) == ["a+bb", "ccc"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
        ({"batch_size": None}, TypeError, "iterate the dataset"),
        (
            {"generator": 0},
            TypeError,
            r"numpy Generator, such as np.random.default_rng\(0\); got int",
        ),
        ({"num_workers": 2}, ValueError, "num_workers=2 is not supported"),
        ({"sampler": [0, 1]}, ValueError, "sampler"),
        ({"batchsize": 2}, TypeError, "unexpected keyword argument 'batchsize'"),
    ],
)
def test_loader_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(Squares(), **kwargs)


def test_pytorch_defaults_of_worker_options_are_accepted_and_a_dataset_needs_len():
    loader = DataLoader(Squares(), batch_size=7, num_workers=0, pin_memory=False)
    assert len(list(loader)) == 1
    with pytest.raises(TypeError, match="needs __len__ and __getitem__"):
        DataLoader(iter(range(3)))


@needs_torch
def test_loader_agrees_with_pytorch_in_order():
    ours = [plain(b) for b in DataLoader(Squares(), batch_size=3)]
    theirs = [plain(b) for b in TorchDataLoader(Squares(), batch_size=3)]
    assert_same(ours, theirs)


# --------------------------------------------------------------------------- padding


def test_pad_sequence_puts_time_first_or_batch_first_and_pads_right_or_left():
    seqs = [ts.tensor([1.0, 2.0, 3.0]), ts.tensor([4.0]), ts.tensor([5.0, 6.0])]
    np.testing.assert_array_equal(
        pad_sequence(seqs).data, [[1.0, 4.0, 5.0], [2.0, 0.0, 6.0], [3.0, 0.0, 0.0]]
    )
    np.testing.assert_array_equal(
        pad_sequence(seqs, batch_first=True, padding_value=-1, padding_side="left").data,
        [[1.0, 2.0, 3.0], [-1.0, -1.0, 4.0], [-1.0, 5.0, 6.0]],
    )
    features = [np.ones((2, 3), dtype=np.float32), 2 * np.ones((1, 3), dtype=np.float32)]
    padded = pad_sequence(features, batch_first=True)
    assert padded.shape == (2, 2, 3) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded.data[1], [[2, 2, 2], [0, 0, 0]])
    ids = pad_sequence([np.array([3, 1]), np.array([2])], padding_value=9)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids.data, [[3, 2], [1, 9]])


@pytest.mark.parametrize(
    "sequences, kwargs, message",
    [
        ([], {}, "needs at least one sequence"),
        (
            [np.zeros((2, 3)), np.zeros((2, 4))],
            {},
            r"sequence 1 has shape \(2, 4\).*steps of shape \(3,\)",
        ),
        ([np.zeros(2), np.zeros(2, dtype=np.float32)], {}, "sequence 1 .* dtype float32"),
        ([np.float64(1.0)], {}, r"sequence 0 has shape \(\)"),
        ([np.zeros(2)], {"padding_side": "top"}, "padding_side must be 'right' or 'left'"),
    ],
)
def test_pad_sequence_errors(sequences, kwargs, message):
    with pytest.raises(ValueError, match=f"pad_sequence: {message}"):
        pad_sequence(sequences, **kwargs)


layouts = st.fixed_dictionaries(
    {
        "lengths": st.lists(st.integers(1, 4), min_size=1, max_size=4),
        "width": st.integers(0, 2),
        "batch_first": st.booleans(),
        "padding_side": st.sampled_from(["right", "left"]),
    }
)


@settings(max_examples=15)
@given(layout=layouts, seed=st.integers(0, 2**16))
def test_pad_sequence_gradients_match_finite_differences(layout, seed):
    rng = np.random.default_rng(seed)
    step = (layout["width"],) if layout["width"] else ()
    seqs = [
        ts.tensor(rng.standard_normal((n, *step)), requires_grad=True) for n in layout["lengths"]
    ]
    options = {k: layout[k] for k in ("batch_first", "padding_side")}
    assert gradcheck(lambda *s: pad_sequence(s, padding_value=0.5, **options), seqs)


@needs_torch
@settings(max_examples=15)
@given(layout=layouts, seed=st.integers(0, 2**16))
def test_pad_sequence_agrees_with_pytorch(layout, seed):
    rng = np.random.default_rng(seed)
    step = (layout["width"],) if layout["width"] else ()
    arrays = [rng.standard_normal((n, *step)) for n in layout["lengths"]]
    options = {k: layout[k] for k in ("batch_first", "padding_side")}
    ours = pad_sequence(arrays, padding_value=-2.0, **options)
    theirs = torch_pad_sequence(
        [torch.from_numpy(a) for a in arrays], padding_value=-2.0, **options
    )
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_padded_batch_and_lengths_run_a_layer_as_each_sequence_alone():
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((n, 3)) for n in (5, 2, 4)]
    layer = nn.GRU(3, 4, dtype=np.float64, rng=rng)
    output, h_n = layer(pad_sequence(seqs), lengths=lengths_of(seqs))
    assert lengths_of(seqs).dtype == np.int64 and lengths_of(seqs).tolist() == [5, 2, 4]
    for b, seq in enumerate(seqs):
        alone_out, alone_h = layer(ts.tensor(seq[:, None, :]))
        np.testing.assert_allclose(h_n.data[:, b], alone_h.data[:, 0], atol=1e-12)
        np.testing.assert_allclose(output.data[: len(seq), b], alone_out.data[:, 0], atol=1e-12)


def test_pad_collate_batches_variable_length_examples_for_a_layer():
    examples = [(np.arange(n, dtype=np.float64)[:, None], n % 2) for n in (3, 1, 2)]
    loader = DataLoader(examples, batch_size=3, collate_fn=pad_collate(padding_value=-1.0))
    ((padded, lengths, labels),) = list(loader)
    np.testing.assert_array_equal(padded.data[..., 0], [[0, 0, 0], [1, -1, 1], [2, -1, -1]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    np.testing.assert_array_equal(labels.data, [1, 1, 0])
    sequences_only = pad_collate(batch_first=True)([np.ones(2), np.ones(1)])
    assert len(sequences_only) == 2 and sequences_only[0].shape == (2, 2)
