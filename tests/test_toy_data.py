"""The toy data generators behind the examples: shapes, seeding, and each task's own rule."""

import datetime
import re

import numpy as np
import pytest

from tinygrad_seq import data
from tinygrad_seq.data import (
    CAPTION_VOCAB,
    DATE_FORMATS,
    SENTIMENT_VOCAB,
    WordVocab,
    bracket_depth,
    date_pairs,
    names,
    running_parity,
    sentiment,
    shape_captions,
    two_moons,
)


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: two_moons(20, rng=rng),
        lambda rng: shape_captions(6, rng=rng),
        lambda rng: sentiment(6, filler=5, rng=rng),
        lambda rng: date_pairs(6, rng=rng),
        lambda rng: bracket_depth(4, 12, rng=rng),
        lambda rng: running_parity(4, 12, rng=rng),
    ],
    ids=["moons", "captions", "sentiment", "dates", "brackets", "parity"],
)
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(make):
    _same(make(np.random.default_rng(3)), make(np.random.default_rng(3)))
    first, other = make(np.random.default_rng(3)), make(np.random.default_rng(4))
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, other, strict=True)
    )


def test_two_moons_shapes_and_classes_lie_on_their_half_circles():
    x, y = two_moons(500, noise=0.0, rng=np.random.default_rng(0))
    assert x.shape == (500, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(np.hypot(*x[y == 0].T), 1, atol=1e-6)
    np.testing.assert_allclose(np.hypot(x[y == 1, 0] - 1, x[y == 1, 1] - 0.5), 1, atol=1e-6)


def test_shape_captions_describe_the_pixels():
    images, captions = shape_captions(40, noise=0.0, rng=np.random.default_rng(1))
    assert images.shape == (40, 8, 8, 3) and captions.shape == (5, 40)
    assert images.min() >= 0 and images.max() <= 1
    for k in range(40):
        colour, shape, row, column = CAPTION_VOCAB.decode(captions[:, k], stop="<end>").split()
        ink = images[k].sum(axis=2) > 0
        rows, cols = np.nonzero(ink)
        assert (rows < 4).all() if row == "top" else (rows >= 4).all()
        assert (cols < 4).all() if column == "left" else (cols >= 4).all()
        assert ink.sum() == {"square": 9, "circle": 5, "triangle": 6}[shape]
        mean_rgb = images[k][ink].mean(axis=0)
        brightest = {"red": 0, "green": 1, "blue": 2}.get(colour)
        if brightest is not None:
            assert mean_rgb.argmax() == brightest
        else:  # yellow: red and green, no blue
            assert mean_rgb[2] < mean_rgb[0] and mean_rgb[2] < mean_rgb[1]
    assert (captions[-1] == CAPTION_VOCAB.index["<end>"]).all()


def test_sentiment_labels_follow_negation_and_filler_has_the_asked_length():
    for filler in (0, 3, 17):
        tokens, lengths, labels = sentiment(200, filler=filler, rng=np.random.default_rng(2))
        assert tokens.shape == (lengths.max(), 200)
        for k in range(200):
            words = SENTIMENT_VOCAB.decode(tokens[: lengths[k], k]).split()
            assert (tokens[lengths[k] :, k] == 0).all()  # padding after the end
            adjective = next(
                w for w in words if w in ("good", "great", "fun", "bad", "dull", "awful")
            )
            head = words[: words.index(adjective) + 1]
            assert len(words) - len(head) == filler
            positive = adjective in ("good", "great", "fun")
            assert labels[k] == (positive != ("not" in head))
        assert 0.3 < labels.mean() < 0.7


def test_sentiment_negation_is_a_probability():
    def negated(p):
        tokens, lengths, _ = sentiment(300, negation=p, rng=np.random.default_rng(8))
        return (tokens == SENTIMENT_VOCAB.index["not"]).any(axis=0).mean()

    assert negated(0.0) == 0 and negated(1.0) == 1 and 0.15 < negated(0.25) < 0.35
    with pytest.raises(ValueError, match="negation must be a probability, got 1.5"):
        sentiment(2, negation=1.5)


def test_date_pairs_targets_are_the_iso_dates_of_distinct_days():
    sources, targets = date_pairs(400, rng=np.random.default_rng(5))
    assert len(set(targets)) == 400
    for source, target in zip(sources, targets, strict=True):
        date = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31)
        assert source in {f(date) for f in DATE_FORMATS.values()}
    assert len({re.sub(r"\d", "0", s) for s in sources}) > len(DATE_FORMATS)
    day = datetime.date(2023, 12, 25)
    assert {name: f(day) for name, f in DATE_FORMATS.items()} == {n: n for n in DATE_FORMATS}
    with pytest.raises(ValueError, match="asked for 3 different dates, but the range has 2"):
        date_pairs(3, first=datetime.date(2000, 1, 1), last=datetime.date(2000, 1, 2))


def test_bracket_depth_counts_open_brackets_within_limits():
    tokens, depth = bracket_depth(30, 50, max_depth=3, rng=np.random.default_rng(6))
    steps = np.where(tokens == 0, 1, np.where(tokens == 1, -1, 0))
    np.testing.assert_array_equal(depth, np.cumsum(steps, axis=0))
    assert depth.min() == 0 and depth.max() == 3


def test_running_parity_is_the_xor_of_the_bits_so_far():
    bits, parity = running_parity(5, 30, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(parity, np.bitwise_xor.accumulate(bits, axis=0))


def test_word_vocab_round_trip_stop_word_and_errors():
    vocab = WordVocab(["<end>", "a", "b"])
    assert vocab.encode("a b <end> a").tolist() == [1, 2, 0, 1]
    assert vocab.decode([1, 2, 0, 1], stop="<end>") == "a b"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['c'\]"):
        vocab.encode(["a", "c"])
    with pytest.raises(ValueError, match="must be distinct"):
        WordVocab(["a", "a"])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: two_moons(0), "n must be at least 1"),
        (lambda: shape_captions(2, size=7), "size must be even"),
        (lambda: sentiment(2, filler=-1), "filler must be at least 0"),
        (lambda: bracket_depth(2, 0), "length must be at least 1"),
    ],
)
def test_generators_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_names_are_the_shipped_public_domain_census_list():
    first = names()
    assert len(first) == 5163 and first == sorted(set(first))
    assert all(re.fullmatch("[a-z]+", name) for name in first)
    assert {"mary", "james", "linda"} <= set(first)
    assert data.names is names


def test_names_file_is_declared_as_package_data():
    # An installed wheel must carry names.txt: pyproject lists it as package data.
    from pathlib import Path

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(
        r'\[tool\.setuptools\.package-data\]\s*"tinygrad_seq\.data" = \["\*\.txt"\]', pyproject
    )
