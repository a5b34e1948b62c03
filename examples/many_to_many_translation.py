"""Many-to-many (encoder–decoder): translate dates written by people into ISO dates.

"25 Dec 2023", "Monday, December 25, 2023", "12/25/23" … → "2023-12-25", character by
character. The encoder LSTM reads the source and its final state (h, C) — a fixed-size
summary of the whole date — starts the decoder LSTM, which writes the ten target
characters one at a time:

    encoder:  (h_t, C_t) = LSTM_enc(E_src[x_t], (h_{t−1}, C_{t−1})),  t = 1 … T_in
    decoder:  (h'_1, C'_1) from LSTM_dec(E_tgt[^], (h_T, C_T)),  then
              (h'_k, C'_k) = LSTM_dec(E_tgt[y_{k−1}], (h'_{k−1}, C'_{k−1})),
              p(y_k | x, y_<k) = softmax(V·h'_k + β_o).

Training uses teacher forcing: the decoder reads the *true* previous character
(``shift_right`` puts the start symbol ^ first). At test time ``decode`` runs free and
feeds back its own choices, so one wrong digit can derail the rest; exact match counts a
date as right only if all ten characters are.

Target: ≥ 90% exact-match on 1,000 held-out dates (dates never seen in training).
Measured (full mode, 900 steps, 2 cores): 99.9% exact match on the held-out dates, in 26 s
wall-clock (48 s of CPU over both cores). While other heavy jobs shared the machine the
same run took 5.5 min.

    python examples/many_to_many_translation.py [--quick] [--out examples/out] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_seq as ts
from tinygrad_seq import functional as F
from tinygrad_seq import nn
from tinygrad_seq.data import CharVocab, date_pairs, lengths_of, pad_sequence

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a few steps, for the test suite")
parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

ts.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
steps = 20 if args.quick else 900
embed_size, hidden, batch_size = 16, 96, 64

# Different dates in train and test: date_pairs draws days without replacement.
sources, targets = date_pairs(21_000, rng=rng)
train, test = slice(0, 20_000), slice(20_000, 21_000)
source_vocab = CharVocab("".join(sources))
target_vocab = CharVocab("^0123456789-")  # ^ starts every decoder input
START = target_vocab.index["^"]
print(f"{len(source_vocab)} source characters, {len(target_vocab)} target characters")


def encode_sources(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Character ids (T, B), time-first, padded to the longest text, and the true lengths."""
    ids = [source_vocab.encode(text) for text in texts]
    return pad_sequence(ids).numpy(), lengths_of(ids)  # the padding is never read


def encode_targets(texts: list[str]) -> np.ndarray:
    return np.stack([target_vocab.encode(t) for t in texts], axis=1)  # (10, B)


model = nn.Seq2Seq(
    nn.LSTMCell(embed_size, hidden),
    nn.LSTMCell(embed_size, hidden),
    source_vocab=len(source_vocab),
    target_vocab=len(target_vocab),
    start_token=START,
)
optimizer = ts.optim.Adam(model.parameters(), lr=0.005)

progress = tqdm(range(steps), desc="dates", disable=None)
for _ in progress:
    batch = rng.integers(train.start, train.stop, batch_size)
    source, lengths = encode_sources([sources[i] for i in batch])
    target = encode_targets([targets[i] for i in batch])
    logits = model(source, model.shift_right(target), source_lengths=lengths)
    loss = F.cross_entropy(logits, target)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)

source, lengths = encode_sources(sources[test])
predicted = model.decode(source, max_length=10, source_lengths=lengths)  # free-running
answers = ["".join(target_vocab.decode(predicted[:, k])) for k in range(predicted.shape[1])]
correct = np.array([a == t for a, t in zip(answers, targets[test], strict=True)])
for k in range(6):
    mark = "ok " if correct[k] else "BAD"
    print(f"  {mark} {sources[test][k]:>28s} -> {answers[k]}   (true {targets[test][k]})")
print(f"final training loss {loss.item():.4f}")
print(f"result: {correct.mean():.1%} exact-match on 1,000 held-out dates (target >= 90%)")
