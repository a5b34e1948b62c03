"""The four patterns of the course, each a small module built on any cell.

- :class:`ManyToOne` — read a whole sequence, answer once from the last state
  (sentiment of a sentence, a regression target at the end).
- :class:`OneToMany` — start from one vector and generate a sequence, feeding each output
  back as the next input (captioning: an image vector → a caption).
- :class:`ManyToMany` — synchronous: an answer at every step (tagging).
- :class:`Seq2Seq` — encoder–decoder: read a sequence, then write another of a different
  length (translation), trained with teacher forcing and run free.

Sequences are time-first: token ids (T, B), features (T, B, D). The cells are any cells of the
Cell protocol, so a user's own cell works in every pattern.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor, default_generator
from .cells import check_cell, initial_state_of, output_of, parameter_dtype, size_of, step_of
from .layers import Embedding, Linear
from .module import Module
from .recurrent import Recurrent

__all__ = ["ManyToMany", "ManyToOne", "OneToMany", "Seq2Seq", "sample"]


def sample(
    logits: Tensor | np.ndarray, temperature: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Pick one class per row of ``logits`` (B, V): greedy (argmax) when ``temperature`` is 0.

    Otherwise draw from softmax(logits / temperature): below 1 sharper, above 1 flatter.
    """
    array = np.asarray(logits.data if isinstance(logits, Tensor) else logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return array.argmax(axis=-1)
    rng = rng if rng is not None else default_generator()
    scaled = array / temperature
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = probs.cumsum(axis=-1)
    draws = rng.random(array.shape[:-1] + (1,))
    return np.minimum((cumulative < draws).sum(axis=-1), array.shape[-1] - 1)


class ManyToOne(Module):
    """Many-to-one: h_T = the last state after reading x_1 … x_T;  y = V·h_T + β_o.

    ``forward(x, lengths=None) -> (B, out_features)``: logits for classification (use
    ``cross_entropy``) or values for regression (``mse_loss``). With ``lengths`` the answer
    comes from each sequence's own last step.
    """

    def __init__(self, cell: Any, out_features: int) -> None:
        super().__init__()
        check_cell(cell, "ManyToOne")
        self.encoder = Recurrent(cell)
        hidden_size = size_of(cell, "hidden_size", "ManyToOne")
        self.head = Linear(hidden_size, out_features, dtype=parameter_dtype(cell))

    def forward(self, x: Tensor, lengths: Any = None) -> Tensor:
        _, state = self.encoder(x, lengths=lengths)
        return self.head(output_of(self.encoder.cell, state))


class ManyToMany(Module):
    """Synchronous many-to-many: y_t = V·h_t + β_o at every step (tagging).

    ``forward(x, lengths=None) -> (T, B, out_features)``; padded steps give the head's
    bias only, and should be left out of the loss with ``ignore_index``.
    """

    def __init__(self, cell: Any, out_features: int) -> None:
        super().__init__()
        check_cell(cell, "ManyToMany")
        self.encoder = Recurrent(cell)
        hidden_size = size_of(cell, "hidden_size", "ManyToMany")
        self.head = Linear(hidden_size, out_features, dtype=parameter_dtype(cell))

    def forward(self, x: Tensor, lengths: Any = None) -> Tensor:
        outputs, _ = self.encoder(x, lengths=lengths)
        return self.head(outputs)


class OneToMany(Module):
    """One-to-many: generate tokens from one feature vector v (an image, a topic).

    The first input is a projection of v; every later input is the embedding of the
    previous token, so at step t the cell reads x_t = E[y_{t−1}] and predicts y_t from
    h_t. ``forward(features, targets)`` trains with teacher forcing (the true previous token
    is fed in) and returns logits (T, B, vocab_size) for ``targets`` (T, B);
    ``generate(features, max_length)`` runs free, feeding back its own choices.
    """

    def __init__(
        self, cell: Any, feature_size: int, vocab_size: int, rng: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        check_cell(cell, "OneToMany")
        dtype, width = parameter_dtype(cell), size_of(cell, "input_size", "OneToMany")
        self.cell = cell
        self.project = Linear(feature_size, width, dtype=dtype, rng=rng)
        self.embed = Embedding(vocab_size, width, dtype=dtype, rng=rng)
        self.head = Linear(
            size_of(cell, "hidden_size", "OneToMany"), vocab_size, dtype=dtype, rng=rng
        )
        self.driver = Recurrent(cell)

    def forward(self, features: Tensor, targets: Any) -> Tensor:
        targets = _token_ids(targets, "OneToMany.forward")
        first = self.project(features).unsqueeze(0)  # x_1 = P·v
        if targets.shape[0] > 1:  # x_t = E[y_{t−1}] for t ≥ 2: the true previous token
            first = F.cat([first, self.embed(targets[:-1])], axis=0)
        outputs, _ = self.driver(first)
        return self.head(outputs)

    @no_grad()
    def generate(
        self,
        features: Tensor,
        max_length: int,
        temperature: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Token ids (max_length, B): greedy when ``temperature`` is 0, else sampled."""
        x = self.project(features)
        state = initial_state_of(self.cell, x.shape[0], x.dtype)
        tokens = []
        for _ in range(max_length):
            state = step_of(self.cell, x, state)
            token = sample(self.head(output_of(self.cell, state)), temperature, rng)
            tokens.append(token)
            x = self.embed(token)
        return np.stack(tokens)


class Seq2Seq(Module):
    """Encoder–decoder: the encoder reads the source; its final state starts the decoder.

    ``forward(source, target_in, source_lengths=None)`` is teacher forcing: ``target_in``
    is the target shifted right (``start_token`` first), and the logits (T_out, B,
    target_vocab) predict the target itself. ``decode(source, max_length)`` runs free:
    each chosen token is fed back as the next input. The two cells must have states of the
    same shape (the same kind of cell and the same hidden size).
    """

    def __init__(
        self,
        encoder_cell: Any,
        decoder_cell: Any,
        source_vocab: int,
        target_vocab: int,
        start_token: int = 0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        check_cell(encoder_cell, "Seq2Seq")
        check_cell(decoder_cell, "Seq2Seq")
        hidden_size = size_of(decoder_cell, "hidden_size", "Seq2Seq")
        if size_of(encoder_cell, "hidden_size", "Seq2Seq") != hidden_size:
            raise ValueError(
                f"Seq2Seq: the encoder's hidden_size ({encoder_cell.hidden_size}) must equal "
                f"the decoder's ({hidden_size}): its final state starts the decoder"
            )
        if not 0 <= start_token < target_vocab:
            raise ValueError(
                f"Seq2Seq: start_token {start_token} is not in the target vocabulary of "
                f"{target_vocab}"
            )
        dtype = parameter_dtype(decoder_cell)
        self.start_token = start_token
        source_width = size_of(encoder_cell, "input_size", "Seq2Seq")
        target_width = size_of(decoder_cell, "input_size", "Seq2Seq")
        self.source_embed = Embedding(source_vocab, source_width, dtype=dtype, rng=rng)
        self.target_embed = Embedding(target_vocab, target_width, dtype=dtype, rng=rng)
        self.encoder = Recurrent(encoder_cell)
        self.decoder = Recurrent(decoder_cell)
        self.head = Linear(hidden_size, target_vocab, dtype=dtype, rng=rng)

    def encode(self, source: Any, source_lengths: Any = None) -> Any:
        """The encoder's final state: a summary of the whole source sequence."""
        source = _token_ids(source, "Seq2Seq.encode")
        _, state = self.encoder(self.source_embed(source), lengths=source_lengths)
        return state

    def forward(self, source: Any, target_in: Any, source_lengths: Any = None) -> Tensor:
        state = self.encode(source, source_lengths)
        target_in = _token_ids(target_in, "Seq2Seq.forward")
        outputs, _ = self.decoder(self.target_embed(target_in), state)
        return self.head(outputs)

    def shift_right(self, target: Any) -> np.ndarray:
        """The decoder's teacher-forcing input: ``start_token`` followed by target[:-1]."""
        target = _token_ids(target, "Seq2Seq.shift_right")
        start = np.full((1,) + target.shape[1:], self.start_token, dtype=target.dtype)
        return np.concatenate([start, target[:-1]], axis=0)

    @no_grad()
    def decode(
        self,
        source: Any,
        max_length: int,
        source_lengths: Any = None,
        temperature: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Token ids (max_length, B), generated free-running from the start token."""
        state = self.encode(source, source_lengths)
        cell = self.decoder.cell
        batch = _token_ids(source, "Seq2Seq.decode").shape[1]
        token = np.full(batch, self.start_token, dtype=np.int64)
        tokens = []
        for _ in range(max_length):
            state = step_of(cell, self.target_embed(token), state)
            token = sample(self.head(output_of(cell, state)), temperature, rng)
            tokens.append(token)
        return np.stack(tokens)


def _token_ids(tokens: Any, where: str) -> np.ndarray:
    ids = np.asarray(tokens.data if isinstance(tokens, Tensor) else tokens)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: token ids must be an integer array of shape (T, B), got shape "
            f"{ids.shape} and dtype {ids.dtype}"
        )
    return ids
