"""Many-to-one: toy sentiment with negation — an LSTM beats a plain RNN as the filler grows.

A review such as "the film was not very good" is followed by F words of neutral filler
("… and we sat in the back row while the popcorn was cold"). The label (positive or
negative) depends on two early words — the adjective and a possible "not" — so the model
must carry one bit across all F filler words to the end, where ``ManyToOne`` answers from
the last state:  y = softmax(V·h_T + β_o).

For every filler length F the script trains a tanh RNN and an LSTM with the same budget and
prints a table of held-out accuracy. The gradient that would teach the RNN to keep the
bit has to cross F steps of W·diag(1 − s_t²) and vanishes; the LSTM's cell state
C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t carries it along — once its forget gate starts near 1.
With PyTorch's initialisation f_t ≈ σ(0) = 0.5, so at first the LSTM forgets too (0.5⁴⁰ ≈
1e−12) and sits on the 50% plateau for a long time; the standard remedy (Gers et al. 2000,
Jozefowicz et al. 2015) is a positive forget-gate bias, here 3 (f_t ≈ 0.95 at the start).
The RNN has no such knob: that is the lesson.

Target: the LSTM ≥ 95% at every filler length; the RNN clearly behind it at the longest.
Measured (full mode, 800 steps per model, 2 cores), held-out accuracy:

    filler words    0      10      20      40
    RNN           100%    100%    66.1%   49.7%
    LSTM          100%    100%    100%    100%

in 50 s for all eight models.

    python examples/many_to_one_sentiment.py [--quick] [--out examples/out] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_seq as ts
from tinygrad_seq import functional as F
from tinygrad_seq import nn
from tinygrad_seq.data import SENTIMENT_VOCAB, sentiment

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a few steps, for the test suite")
parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

fillers = [0, 5] if args.quick else [0, 10, 20, 40]
steps = 20 if args.quick else 800
embed_size, hidden = 16, 32


class SentimentClassifier(nn.Module):
    """Word ids → embeddings → a recurrent encoder → one answer from the last state."""

    def __init__(self, cell: nn.Cell) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(SENTIMENT_VOCAB), embed_size)
        self.classify = nn.ManyToOne(cell, 2)

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> ts.Tensor:
        # lengths: each review answers from its own last word, not from the padding after it.
        return self.classify(self.embed(tokens), lengths=lengths)


def lstm_cell(forget_bias: float = 3.0) -> nn.LSTMCell:
    """An LSTM cell whose forget gate starts almost open, so it remembers from the start."""
    cell = nn.LSTMCell(embed_size, hidden)
    # Gate order i, f, g, o: rows H…2H of the biases belong to the forget gate f_t.
    cell.bias_ih.data[hidden : 2 * hidden] = forget_bias
    cell.bias_hh.data[hidden : 2 * hidden] = 0.0
    return cell


def train_and_test(kind: str, filler: int, seed: int) -> float:
    """Train one model on fresh reviews every step; return its held-out accuracy."""
    ts.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cell = nn.RNNCell(embed_size, hidden) if kind == "RNN" else lstm_cell()
    model = SentimentClassifier(cell)
    optimizer = ts.optim.Adam(model.parameters(), lr=0.01)
    progress = tqdm(range(steps), desc=f"{kind} filler={filler:2d}", disable=None)
    for _ in progress:
        tokens, lengths, labels = sentiment(64, filler=filler, rng=rng)
        loss = F.cross_entropy(model(tokens, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        # Clipping keeps the occasional exploding step of the RNN from wrecking training.
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    tokens, lengths, labels = sentiment(1000, filler=filler, rng=np.random.default_rng(10_000))
    with ts.no_grad():
        return float((model(tokens, lengths).numpy().argmax(axis=1) == labels).mean())


example, length, label = sentiment(1, filler=12, rng=np.random.default_rng(1))
print("a review:", SENTIMENT_VOCAB.decode(example[: length[0], 0]), "->", int(label[0]))

accuracy = {
    (kind, f): train_and_test(kind, f, args.seed) for f in fillers for kind in ("RNN", "LSTM")
}

print("\nheld-out accuracy (1,000 reviews; chance = 50%)")
print(f"{'filler words':>12} | {'RNN':>6} | {'LSTM':>6}")
for f in fillers:
    print(f"{f:>12} | {accuracy['RNN', f]:>6.1%} | {accuracy['LSTM', f]:>6.1%}")
longest = fillers[-1]
print(
    f"result: at {longest} filler words the LSTM reaches {accuracy['LSTM', longest]:.1%} and the "
    f"RNN {accuracy['RNN', longest]:.1%} (target: LSTM >= 95% everywhere, RNN behind)"
)

import matplotlib  # noqa: E402  (only needed for the picture)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(5.5, 3.8))
for kind, marker in (("RNN", "o"), ("LSTM", "s")):
    ax.plot(fillers, [accuracy[kind, f] for f in fillers], marker=marker, label=kind)
ax.axhline(0.5, color="grey", linestyle=":", label="chance")
ax.set_xlabel("filler words between the verdict and the end")
ax.set_ylabel("held-out accuracy")
ax.set_ylim(0.4, 1.02)
ax.legend()
args.out.mkdir(parents=True, exist_ok=True)
fig.savefig(args.out / "many_to_one_sentiment.png", dpi=110, bbox_inches="tight")
print(f"picture: {args.out / 'many_to_one_sentiment.png'}")
