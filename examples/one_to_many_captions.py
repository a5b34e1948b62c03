"""One-to-many: captioning in miniature — an 8×8 image becomes a caption, word by word.

Each image holds one coloured shape in one quadrant ("red square top left"). A small
encoder (Linear + tanh on the 192 flattened pixels) turns the image into a feature vector
v; ``OneToMany`` feeds v into an LSTM at the first step and then, step after step, the
embedding of the word it has just produced:

    x_1 = P·v,   x_t = E[y_{t−1}] (t ≥ 2),   (h_t, C_t) = LSTM(x_t, (h_{t−1}, C_{t−1})),
    p(y_t | image, y_<t) = softmax(V·h_t + β_o).

Training uses teacher forcing (the true previous word is fed in); generation runs free,
either greedy (the most likely word) or sampled (draw from the softmax, with a temperature).

Target: ≥ 90% exact-match greedy captions on 500 held-out images.
Measured (full mode, 1,500 steps, 2 cores): 97.4% exact match (per word: colour
99.6%, shape 98.0%, row 100%, column 99.8%), in 7 s (47 s while the machine was shared with
other heavy jobs).

    python examples/one_to_many_captions.py [--quick] [--out examples/out] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_seq as ts
from tinygrad_seq import functional as F
from tinygrad_seq import nn
from tinygrad_seq.data import CAPTION_VOCAB, shape_captions

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a few steps, for the test suite")
parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

ts.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
steps = 30 if args.quick else 1500
feature_size, embed_size, hidden = 48, 16, 64

images, captions = shape_captions(12500, rng=rng)  # captions: (5, N) word ids, time-first
train, test = slice(0, 12000), slice(12000, 12500)
SLOTS = ("colour", "shape", "row", "column", "<end>")  # what each caption position says
pixels = images.reshape(len(images), -1)  # (N, 192): the encoder sees a flat vector


class Captioner(nn.Module):
    """Image → feature vector v (the encoder) → caption (the one-to-many decoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(pixels.shape[1], feature_size)
        self.decoder = nn.OneToMany(
            nn.LSTMCell(embed_size, hidden), feature_size, len(CAPTION_VOCAB)
        )

    def features(self, pixels: np.ndarray) -> ts.Tensor:
        return self.encoder(ts.tensor(pixels)).tanh()

    def forward(self, pixels: np.ndarray, captions: np.ndarray) -> ts.Tensor:
        return self.decoder(self.features(pixels), captions)  # teacher forcing

    def caption(self, pixels: np.ndarray, temperature: float = 0.0) -> np.ndarray:
        with ts.no_grad():
            return self.decoder.generate(
                self.features(pixels), max_length=5, temperature=temperature, rng=rng
            )


model = Captioner()
optimizer = ts.optim.Adam(model.parameters(), lr=0.005)

progress = tqdm(range(steps), desc="captions", disable=None)
for _ in progress:
    batch = rng.integers(train.start, train.stop, 64)
    logits = model(pixels[batch], captions[:, batch])  # (5, 64, vocab)
    loss = F.cross_entropy(logits, captions[:, batch])  # (T, B, C) against (T, B)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)

greedy = model.caption(pixels[test])
exact = (greedy == captions[:, test]).all(axis=0).mean()
print(f"final training loss {loss.item():.4f}")


def words(ids: np.ndarray) -> str:
    return CAPTION_VOCAB.decode(ids, stop="<end>")


# Sampling draws each word from softmax(logits / temperature); at 1.5 the trained model's
# confident distributions are flattened enough to show an occasional other choice.
sampled = model.caption(pixels[test][:6], temperature=1.5)
for k in range(6):
    print(
        f"  true: {words(captions[:, test][:, k]):28s} greedy: {words(greedy[:, k]):28s} "
        f"sampled: {words(sampled[:, k])}"
    )
per_word = (greedy == captions[:, test]).mean(axis=1)
print("per word: " + ", ".join(f"{w} {a:.1%}" for w, a in zip(SLOTS, per_word, strict=True)))
print(f"result: {exact:.1%} exact-match greedy captions on 500 held-out images (target >= 90%)")

# Picture: held-out images with their generated captions.
import matplotlib  # noqa: E402  (only needed for the picture)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(3, 6, figsize=(12, 6.5))
for k, ax in enumerate(axes.flat):
    ok = (greedy[:, k] == captions[:, test][:, k]).all()
    ax.imshow(images[test][k], interpolation="nearest")
    caption = words(greedy[:, k]).split()  # two lines: "red square" / "top left"
    title = " ".join(caption[:2]) + "\n" + " ".join(caption[2:])
    ax.set_title(title, fontsize=9, color="black" if ok else "red")
    ax.axis("off")
fig.suptitle(f"greedy captions of held-out images ({exact:.0%} exact; red = wrong)")
args.out.mkdir(parents=True, exist_ok=True)
fig.savefig(args.out / "one_to_many_captions.png", dpi=100, bbox_inches="tight")
print(f"picture: {args.out / 'one_to_many_captions.png'}")
