"""Toy data for the four patterns of the course, generated from a seed: nothing is downloaded.

Each generator takes ``rng`` (a ``np.random.Generator``; the same seed gives the same data)
and returns numpy arrays. Sequences are time-first, as everywhere in tinygrad_seq: token ids
(T, B).

========================  ==========================================  ====================
pattern                   generator                                   what is learned
========================  ==========================================  ====================
one-to-one                :func:`two_moons`                           a 2-D decision line
one-to-many (captioning)  :func:`shape_captions`                      image → 4-word caption
many-to-one (sentiment)   :func:`sentiment`                           negation across filler
many-to-many (seq2seq)    :func:`date_pairs`                          "25 Dec 2023" → ISO date
many-to-many (synced)     :func:`bracket_depth`, :func:`running_parity`  a tag at every step
========================  ==========================================  ====================
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CAPTION_VOCAB",
    "DATE_FORMATS",
    "SENTIMENT_VOCAB",
    "WordVocab",
    "bracket_depth",
    "date_pairs",
    "running_parity",
    "sentiment",
    "shape_captions",
    "two_moons",
]


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _check_positive(function: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{function}: {name} must be at least 1, got {value}")


class WordVocab:
    """Words ↔ integer ids, in the order given (id 0 is the first word, e.g. a padding token)."""

    def __init__(self, words: Sequence[str]) -> None:
        if len(set(words)) != len(words):
            raise ValueError(f"WordVocab: the words must be distinct, got {list(words)}")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentence: str | Sequence[str]) -> np.ndarray:
        """Ids of the words of ``sentence`` (a string split on spaces, or a list of words)."""
        words = sentence.split() if isinstance(sentence, str) else list(sentence)
        unknown = sorted(set(words) - set(self.index))
        if unknown:
            raise ValueError(f"WordVocab.encode: words not in the vocabulary: {unknown}")
        return np.array([self.index[w] for w in words], dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray, stop: str | None = None) -> str:
        """The words of ``ids`` joined by spaces, cut before the first ``stop`` word if given."""
        words = [self.words[int(i)] for i in np.asarray(ids).reshape(-1)]
        if stop is not None and stop in words:
            words = words[: words.index(stop)]
        return " ".join(words)


# --------------------------------------------------------------------------- one-to-one


def two_moons(
    n: int, noise: float = 0.1, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in the plane: points ``x`` (n, 2) and labels ``y`` (n,).

    Class 0 lies on the upper half circle of radius 1 around (0, 0), class 1 on the lower
    one around (1, 0.5), each point moved by Gaussian noise of standard deviation ``noise``.
    No straight line separates them: a classifier needs a hidden layer.
    """
    _check_positive("two_moons", n=n)
    rng = _rng(rng)
    y = rng.integers(0, 2, n)
    angle = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + rng.normal(0, noise, (n, 2))
    return x.astype(np.float32), y.astype(np.int64)


# --------------------------------------------------------------------------- one-to-many

_COLOURS = {
    "red": (1.0, 0.1, 0.1),
    "green": (0.1, 0.9, 0.1),
    "blue": (0.15, 0.25, 1.0),
    "yellow": (1.0, 0.9, 0.1),
}
# 3×3 stamps: a filled square, a "circle" (a plus, the round shape of a 3×3 grid) and a
# triangle (the lower-left half).
_SHAPES = {
    "square": np.ones((3, 3)),
    "circle": np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=float),
    "triangle": np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=float),
}
_ROWS = ("top", "bottom")
_COLUMNS = ("left", "right")

CAPTION_VOCAB = WordVocab(["<end>", *_COLOURS, *_SHAPES, *_ROWS, *_COLUMNS])
"""The 12 words of :func:`shape_captions`; id 0, ``<end>``, closes every caption."""


def shape_captions(
    n: int, size: int = 8, noise: float = 0.1, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Tiny RGB images of one coloured shape, and their captions.

    Returns ``images`` (n, size, size, 3) in [0, 1] and ``captions`` (5, n) — time-first ids
    of :data:`CAPTION_VOCAB` such as "red square top left <end>". The shape (3×3 pixels)
    sits in one quadrant at a random offset, its colour is jittered, and Gaussian pixel
    noise of standard deviation ``noise`` is added, so no two images are alike.
    """
    _check_positive("shape_captions", n=n)
    if size < 6 or size % 2:
        raise ValueError(f"shape_captions: size must be even and at least 6, got {size}")
    rng = _rng(rng)
    half = size // 2
    images = np.zeros((n, size, size, 3))
    captions = np.zeros((5, n), dtype=np.int64)
    colours, shapes = list(_COLOURS), list(_SHAPES)
    for k in range(n):
        colour = colours[rng.integers(len(colours))]
        shape = shapes[rng.integers(len(shapes))]
        row, column = rng.integers(2), rng.integers(2)
        top = row * half + rng.integers(0, half - 2)
        left = column * half + rng.integers(0, half - 2)
        rgb = np.clip(np.array(_COLOURS[colour]) + rng.normal(0, 0.05, 3), 0, 1)
        images[k, top : top + 3, left : left + 3] = _SHAPES[shape][:, :, None] * rgb
        words = [colour, shape, _ROWS[row], _COLUMNS[column], "<end>"]
        captions[:, k] = CAPTION_VOCAB.encode(words)
    images = np.clip(images + rng.normal(0, noise, images.shape), 0, 1)
    return images.astype(np.float32), captions


# --------------------------------------------------------------------------- many-to-one

_SUBJECTS = ("the film", "the movie", "the plot", "the acting", "the ending")
_VERBS = ("was", "is")
_POSITIVE = ("good", "great", "fun")
_NEGATIVE = ("bad", "dull", "awful")
_FILLER = (
    "and we sat in the back row",
    "while the popcorn was cold",
    "and my friend came late",
    "as it rained all evening",
    "and the seats were red",
    "while people talked on the phone",
)

SENTIMENT_VOCAB = WordVocab(
    ["<pad>"]
    + sorted(
        {w for phrase in _SUBJECTS + _VERBS + _FILLER for w in phrase.split()}
        | {"not", "very"}
        | set(_POSITIVE + _NEGATIVE)
    )
)
"""The words of :func:`sentiment`; id 0, ``<pad>``, fills the steps after a sentence's end."""


def sentiment(
    n: int, filler: int = 0, negation: float = 0.25, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Toy movie reviews with negation, followed by ``filler`` neutral words.

    A review reads "the film was [not] [very] good|great|fun|bad|dull|awful" and then
    exactly ``filler`` words of neutral clauses ("and we sat in the back row while …",
    the last clause cut to length). Its label is 1 (positive) when a positive word is *not*
    negated or a negative word *is*: the model must remember "not" until it meets the
    adjective, and then remember the verdict across all the filler — the filler length is
    the knob that makes the memory long.

    A review is negated with probability ``negation``. At 0.5 the label would be the XOR of
    two words, each alone uncorrelated with it, and a model that has not yet learned to
    keep anything would get no gradient telling it to start; at the default 0.25 the
    adjective alone already predicts 75% of the labels, and learning "not" comes second.

    Returns ``tokens`` (T, n) ids of :data:`SENTIMENT_VOCAB`, padded with 0 to the longest
    review, ``lengths`` (n,) and ``labels`` (n,), all int64.
    """
    _check_positive("sentiment", n=n)
    if filler < 0:
        raise ValueError(f"sentiment: filler must be at least 0, got {filler}")
    if not 0 <= negation <= 1:
        raise ValueError(f"sentiment: negation must be a probability, got {negation}")
    rng = _rng(rng)
    reviews, labels = [], np.zeros(n, dtype=np.int64)
    for k in range(n):
        negated, positive = bool(rng.random() < negation), bool(rng.integers(2))
        words = _SUBJECTS[rng.integers(len(_SUBJECTS))].split()
        words.append(_VERBS[rng.integers(len(_VERBS))])
        words += ["not"] if negated else []
        words += ["very"] if rng.integers(2) else []
        adjectives = _POSITIVE if positive else _NEGATIVE
        words.append(adjectives[rng.integers(len(adjectives))])
        tail: list[str] = []
        while len(tail) < filler:
            tail += _FILLER[rng.integers(len(_FILLER))].split()
        reviews.append(words + tail[:filler])
        labels[k] = positive != negated
    lengths = np.array([len(r) for r in reviews], dtype=np.int64)
    tokens = np.zeros((lengths.max(), n), dtype=np.int64)
    for k, review in enumerate(reviews):
        tokens[: len(review), k] = SENTIMENT_VOCAB.encode(review)
    return tokens, lengths, labels


# --------------------------------------------------------------------------- many-to-many

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def _us_short(d: datetime.date) -> str:
    return f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}"


# Written out by hand rather than with strftime, whose month names follow the locale.
DATE_FORMATS = {
    "25 Dec 2023": lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
    "December 25, 2023": lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    "Monday, December 25, 2023": (
        lambda d: f"{_WEEKDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year}"
    ),
    "12/25/23": _us_short,
    "25.12.2023": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "dec 25 2023": lambda d: f"{_MONTHS[d.month - 1][:3].lower()} {d.day} {d.year}",
    "25 december 2023": lambda d: f"{d.day} {_MONTHS[d.month - 1].lower()} {d.year}",
}
"""Source formats of :func:`date_pairs`, each named by how it writes 25 December 2023."""


def date_pairs(
    n: int,
    rng: np.random.Generator | None = None,
    first: datetime.date = datetime.date(1950, 1, 1),
    last: datetime.date = datetime.date(2049, 12, 31),
) -> tuple[list[str], list[str]]:
    """``n`` different dates between ``first`` and ``last``, as (sources, targets) strings.

    Each source is the date in one of the :data:`DATE_FORMATS`, picked at random
    ("25 Dec 2023", "12/25/23", …); its target is the ISO form "2023-12-25". The dates are
    drawn without replacement, so slicing the result gives disjoint train and test sets. In
    the two-digit-year format "12/25/23" the century follows from the range: with the
    default 1950–2049, 50–99 are 19xx and 00–49 are 20xx.
    """
    _check_positive("date_pairs", n=n)
    days = (last - first).days + 1
    if n > days:
        raise ValueError(f"date_pairs: asked for {n} different dates, but the range has {days}")
    rng = _rng(rng)
    formats = list(DATE_FORMATS.values())
    sources, targets = [], []
    for offset in rng.choice(days, size=n, replace=False):
        date = first + datetime.timedelta(days=int(offset))
        sources.append(formats[rng.integers(len(formats))](date))
        targets.append(date.isoformat())
    return sources, targets


def bracket_depth(
    n: int, length: int, max_depth: int = 4, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Strings of "(", ")" and "x" tagged with the bracket depth after each character.

    Returns ``tokens`` (length, n) with 0 = "(", 1 = ")", 2 = "x", and ``depth``
    (length, n), the number of brackets open after reading each token (0 … ``max_depth``).
    The strings are always balanced so far (never a ")" at depth 0) and never deeper than
    ``max_depth``. Tagging them needs a counter that survives long runs of "x".
    """
    _check_positive("bracket_depth", n=n, length=length, max_depth=max_depth)
    rng = _rng(rng)
    tokens = np.zeros((length, n), dtype=np.int64)
    depth = np.zeros((length, n), dtype=np.int64)
    current = np.zeros(n, dtype=np.int64)
    for t in range(length):
        draw = rng.random(n)
        # Open with probability 0.25, close with 0.25, otherwise an "x"; at the limits the
        # impossible bracket becomes an "x".
        token = np.where(draw < 0.25, 0, np.where(draw < 0.5, 1, 2))
        token = np.where((token == 0) & (current == max_depth), 2, token)
        token = np.where((token == 1) & (current == 0), 2, token)
        current = current + (token == 0) - (token == 1)
        tokens[t], depth[t] = token, current
    return tokens, depth


def running_parity(
    n: int, length: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random bits (length, n) and, at each step, the parity of the bits so far (XOR), int64."""
    _check_positive("running_parity", n=n, length=length)
    bits = _rng(rng).integers(0, 2, (length, n))
    return bits.astype(np.int64), (np.cumsum(bits, axis=0) % 2).astype(np.int64)
