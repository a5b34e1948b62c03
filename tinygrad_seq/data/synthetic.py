"""Generated tasks and a tiny built-in text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CharVocab", "adding_problem", "tiny_text"]

# Written for this package (no licence questions): short sentences with repeated words and
# letters, so a character model can learn something in a few hundred steps.
_TINY_TEXT = """\
the cat sat on the mat. the dog sat on the log. the cat saw the dog and the dog saw the cat.
a red hat is on the cat. a tan hat is on the dog. the cat and the dog nap in the sun.
the sun is hot and the mat is warm. the log is old and the dog is glad.
the cat ran to the mat and the dog ran to the log. then the cat sat and the dog sat.
"""


def tiny_text() -> str:
    """About 350 characters of simple English: a corpus for character-level models in tests."""
    return _TINY_TEXT


class CharVocab:
    """Characters ↔ integer ids, built from a text (ids in sorted character order)."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary: {unknown}")
        return np.array([self.index[ch] for ch in text], dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def adding_problem(
    batch_size: int, seq_len: int, rng: np.random.Generator | None = None, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Le et al. 2015; Arjovsky et al. 2016): remember two marked numbers.

    Returns ``x`` of shape (T, B, 2) — channel 0 values from U[0, 1], channel 1 a marker that
    is 1 at exactly two steps, one in each half of the sequence — and the target ``y`` of
    shape (B, 1), the sum of the two marked values. Predicting the mean (1) scores an MSE of
    1/6 ≈ 0.167; using only the later marker perfectly scores 1/12 ≈ 0.083, so an MSE below
    that shows the model carried the first value across at least T/2 steps.
    """
    if seq_len < 2:
        raise ValueError(f"adding_problem: seq_len must be at least 2, got {seq_len}")
    if batch_size < 1:
        raise ValueError(f"adding_problem: batch_size must be at least 1, got {batch_size}")
    rng = rng if rng is not None else np.random.default_rng()
    values = rng.random((seq_len, batch_size))
    half = seq_len // 2
    first = rng.integers(0, half, batch_size)
    second = rng.integers(half, seq_len, batch_size)
    markers = np.zeros((seq_len, batch_size))
    columns = np.arange(batch_size)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[first, columns] + values[second, columns])[:, None].astype(dtype)
    return x, y
