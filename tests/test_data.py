"""Built-in data: the adding problem's contract and the character vocabulary."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_seq.data import CharVocab, adding_problem, tiny_text


@given(batch=st.integers(1, 8), seq_len=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_adding_problem_marks_one_step_in_each_half_and_sums_them(batch, seq_len, seed):
    x, y = adding_problem(batch, seq_len, np.random.default_rng(seed))
    assert x.shape == (seq_len, batch, 2) and y.shape == (batch, 1)
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(axis=0), 2)
    half = seq_len // 2
    np.testing.assert_array_equal(markers[:half].sum(axis=0), 1)
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=0), rtol=1e-6)
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()


def test_adding_problem_is_seeded_and_checks_its_arguments():
    a = adding_problem(3, 6, np.random.default_rng(1))
    b = adding_problem(3, 6, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="seq_len must be at least 2, got 1"):
        adding_problem(3, 1)


def test_char_vocab_round_trip_and_unknown_characters():
    vocab = CharVocab(tiny_text())
    ids = vocab.encode("the dog")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "the dog"
    assert vocab.chars == sorted(vocab.chars) and len(vocab) == len(set(tiny_text()))
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['Z'\]"):
        vocab.encode("Zed")
