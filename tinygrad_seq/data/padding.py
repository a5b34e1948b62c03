"""Variable-length sequences in one batch: pad them, and keep their lengths.

The recurrent layers take a padded batch (T, B, …) and ``lengths`` (B,), each sequence's
true length: padded steps then carry the state unchanged, so the padding changes nothing::

    batch = pad_sequence([ts.tensor(s) for s in sequences])     # (T_max, B, features)
    output, h_n = rnn(batch, lengths=lengths_of(sequences))

For a :class:`~tinygrad_seq.data.DataLoader` over examples of different lengths,
``collate_fn=pad_collate()`` does both for every batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor, full, tensor
from .loader import default_collate

__all__ = ["lengths_of", "pad_collate", "pad_sequence"]


def pad_sequence(
    sequences: Sequence[Any],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences of shapes (L_i, *) into (T, B, *) — or (B, T, *) with ``batch_first`` —
    where T = max L_i, filling the missing steps with ``padding_value``, as PyTorch's
    ``pad_sequence`` does. ``padding_side="left"`` puts the padding before each sequence.

    Differentiable: the gradient reaches each sequence's own steps. Arrays and lists are
    converted to Tensors; all sequences must share their trailing shape and dtype.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(
            f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}"
        )
    tensors = [s if isinstance(s, Tensor) else tensor(s) for s in sequences]
    if not tensors:
        raise ValueError("pad_sequence: needs at least one sequence")
    trailing, dtype = tensors[0].shape[1:], tensors[0].dtype
    for k, t in enumerate(tensors):
        if t.ndim == 0 or t.shape[1:] != trailing or t.dtype != dtype:
            raise ValueError(
                f"pad_sequence: sequence {k} has shape {t.shape} and dtype {t.dtype}, but "
                f"sequence 0 has steps of shape {trailing} and dtype {dtype}: every sequence "
                "must be (length, *the same step shape) of the same dtype"
            )
    lengths = lengths_of(tensors)
    T = int(lengths.max())
    # All steps one after another, then one row of padding; each place of the result picks
    # its row of that: one concatenation and one gather, whatever the batch size.
    padding = full((1, *trailing), padding_value, dtype=dtype)
    rows = F.cat([*tensors, padding], axis=0)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    step = np.arange(T)[:, None] - (T - lengths[None, :] if padding_side == "left" else 0)
    inside = (step >= 0) & (step < lengths[None, :])
    index = np.where(inside, starts[None, :] + step, len(rows) - 1)  # (T, B)
    return rows[index.T if batch_first else index]


def lengths_of(sequences: Sequence[Any]) -> np.ndarray:
    """The length (first dimension) of each sequence, as the int64 array (B,) that the
    recurrent layers' ``lengths`` argument takes."""
    return np.array([len(s) for s in sequences], dtype=np.int64)


def pad_collate(
    batch_first: bool = False, padding_value: float = 0.0
) -> Callable[[list[Any]], tuple[Any, ...]]:
    """A ``collate_fn`` for examples whose first element is a variable-length sequence.

    Each example is a sequence, or a tuple ``(sequence, *rest)``; a batch is
    ``(padded, lengths, *rest)``: the sequences through :func:`pad_sequence`, their lengths
    from :func:`lengths_of`, and every other element through :func:`default_collate`.
    """

    def collate(batch: list[Any]) -> tuple[Any, ...]:
        with_rest = isinstance(batch[0], tuple)
        sequences = [example[0] for example in batch] if with_rest else batch
        padded = pad_sequence(sequences, batch_first, padding_value)
        rest = default_collate([example[1:] for example in batch]) if with_rest else []
        return (padded, lengths_of(sequences), *rest)

    return collate
