"""Command line: ``python -m tinygrad_seq demo --out DIR``.

``demo`` is the smallest end-to-end tour: an Elman RNN written by hand from Tensor ops,
trained for a few steps of plain gradient descent, then the computation graph of one
forward pass drawn to ``DIR/graph.svg`` (and ``DIR/graph.dot``).
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq.functional import mse_loss
from tinygrad_seq.viz import draw_graph

# Small enough that the whole unrolled graph fits in one readable picture.
SEQ_LEN, BATCH, INPUT_SIZE, HIDDEN_SIZE = 4, 16, 1, 8
LEARNING_RATE = 0.1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinygrad_seq",
        description="tinygrad_seq: a small numpy deep-learning framework for recurrent networks.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train a tiny hand-written RNN and draw its computation graph",
        description="Train a tiny tanh RNN written from Tensor ops for a few steps of gradient "
        "descent, printing the loss, then draw the graph of one forward pass to "
        "DIR/graph.svg and DIR/graph.dot.",
    )
    demo.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    demo.add_argument("--steps", type=_positive_int, default=30, help="training steps (30)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.set_defaults(run=_run_demo)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _run_demo(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    # Toy task: after reading a sequence of numbers, output their sum.
    x = rng.uniform(-1.0, 1.0, size=(SEQ_LEN, BATCH, INPUT_SIZE)).astype(np.float32)
    target = x.sum(axis=0)
    params = _init_params(rng)

    print(f"training a tanh RNN (T={SEQ_LEN}, H={HIDDEN_SIZE}) to sum {SEQ_LEN} numbers")
    for step in range(1, args.steps + 1):
        loss, _ = _forward(params, x, target)
        loss.backward()
        for param in params.values():  # updating .data directly records no graph
            param.data -= LEARNING_RATE * param.grad.data
            param.grad = None
        print(f"step {step:3d}/{args.steps}  loss {loss.item():.4f}", flush=True)

    loss, states = _forward(params, x, target)  # holding states keeps h1..hT named
    loss.name = "loss"
    loss.backward()  # so the picture shows each parameter's gradient norm
    result = draw_graph(loss).render(args.out / "graph.svg")
    if result.ok:
        print(f"wrote {result.dot_path} and {result.picture_path}")
    else:
        print(f"wrote {result.dot_path} only (no picture: see the message above)")
    return 0


def _init_params(rng: np.random.Generator) -> dict[str, ts.Tensor]:
    """U (input to hidden), W (hidden to hidden), b, and the read-out V, c."""
    scale = 1.0 / np.sqrt(HIDDEN_SIZE)
    shapes = {
        "U": (INPUT_SIZE, HIDDEN_SIZE),
        "W": (HIDDEN_SIZE, HIDDEN_SIZE),
        "b": (HIDDEN_SIZE,),
        "V": (HIDDEN_SIZE, 1),
        "c": (1,),
    }
    params = {}
    for name, shape in shapes.items():
        param = ts.tensor(rng.uniform(-scale, scale, size=shape).astype(np.float32))
        param.requires_grad_()
        param.name = name
        params[name] = param
    return params


def _forward(
    params: dict[str, ts.Tensor], x: np.ndarray, target: np.ndarray
) -> tuple[ts.Tensor, list[ts.Tensor]]:
    """h_t = tanh(x_t U + h_{t-1} W + b) from h_0 = 0, then y = h_T V + c; the MSE and h_1..h_T.

    The states are returned (and named h1, h2, ...) so they stay alive: the graph holds its
    intermediate tensors only weakly, and draw_graph labels those it can still see.
    """
    U, W, b, V, c = (params[name] for name in "UWbVc")
    h = ts.zeros(BATCH, HIDDEN_SIZE)
    states = []
    for t in range(SEQ_LEN):
        h = (ts.tensor(x[t]) @ U + h @ W + b).tanh()
        h.name = f"h{t + 1}"
        states.append(h)
    return mse_loss(h @ V + c, target), states
