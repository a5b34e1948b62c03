"""Command line: ``python -m tinygrad_seq vanishing --out DIR`` (the main job) and ``demo``.

``vanishing`` is the vanishing-gradient study (:mod:`tinygrad_seq.vanishing`): a tanh RNN
and an LSTM trained on the adding problem, their gradient flow recorded over training, and
``DIR/report.html``, ``DIR/summary.json`` and every picture written at the end (all at once:
an interrupted run leaves ``DIR`` as it was).

``demo`` is the smallest end-to-end tour: an Elman RNN written by hand from Tensor ops,
trained for a few steps of plain gradient descent, then the computation graph of one
forward pass drawn to ``DIR/graph.svg`` (and ``DIR/graph.dot``).
"""

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq.functional import mse_loss
from tinygrad_seq.viz import draw_graph

if TYPE_CHECKING:
    from tinygrad_seq.vanishing import StudyResult

# Small enough that the whole unrolled graph fits in one readable picture.
SEQ_LEN, BATCH, INPUT_SIZE, HIDDEN_SIZE = 4, 16, 1, 8
LEARNING_RATE = 0.1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    return args.run(args)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong and where to read more)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tinygrad_seq",
        description="tinygrad_seq: a small numpy deep-learning framework for recurrent networks.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True)
    vanishing = commands.add_parser(
        "vanishing",
        help="the vanishing-gradient study: tanh RNN vs LSTM on the adding problem (main job)",
        description="Train a tanh RNN and an LSTM (hidden size 32, forget-gate bias 1) on the "
        "adding problem with Adam and gradient-norm clipping, record the gradient reaching "
        "each time step over training, and write DIR/report.html, DIR/summary.json and every "
        "picture. The default run takes one to two minutes; --quick a few seconds.",
    )
    vanishing.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    vanishing.add_argument(
        "--seq-len",
        type=_int_at_least(2),
        metavar="T",
        help="sequence length T, at least 2 (50; 8 with --quick)",
    )
    vanishing.add_argument(
        "--steps", type=_positive_int, metavar="N", help="training steps (1500; 20 with --quick)"
    )
    vanishing.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (0)")
    vanishing.add_argument(
        "--cells",
        type=_cell_list,
        default=("rnn", "lstm"),
        metavar="LIST",
        help="which models to train, comma-separated, from: rnn, lstm (rnn,lstm)",
    )
    vanishing.add_argument(
        "--quick", action="store_true", help="a tiny run of a few seconds, for smoke tests"
    )
    vanishing.add_argument("--force", action="store_true", help="replace a report already in DIR")
    vanishing.set_defaults(run=_run_vanishing)
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


def _int_at_least(low: int):
    """An argparse type: a whole number ≥ ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_CELLS = ("rnn", "lstm")


def _cell_list(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of the study's models, each known."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in _CELLS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(map(repr, unknown)) or repr(text)}; choose from "
            + ", ".join(_CELLS)
        )
    return tuple(dict.fromkeys(names))


def _run_vanishing(args: argparse.Namespace) -> int:
    from tinygrad_seq.vanishing import StudySettings, run_study
    from tinygrad_seq.viz.report import REPORT_NAME, staged_output, write_study

    command = "python -m tinygrad_seq vanishing"
    if importlib.util.find_spec("matplotlib") is None:
        print(
            f"{command}: error: the pictures need matplotlib: pip install 'tinygrad_seq[plot]'",
            file=sys.stderr,
        )
        return 1
    if (args.out / REPORT_NAME).exists() and not args.force:
        print(
            f"{command}: error: {args.out / REPORT_NAME} exists; pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    chosen = {"seq_len": args.seq_len, "steps": args.steps, "seed": args.seed}
    chosen = {name: value for name, value in chosen.items() if value is not None}
    settings = StudySettings.quick(**chosen) if args.quick else StudySettings(**chosen)
    try:
        with staged_output(args.out) as stage:
            print(
                f"vanishing-gradient study: adding problem, T = {settings.seq_len}, "
                f"{settings.steps} steps, seed {settings.seed}",
                flush=True,
            )
            result = run_study(settings, models=args.cells)
            files = write_study(result, stage)
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted; {args.out} left as it was", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"{command}: error: cannot write to {args.out}: {error}", file=sys.stderr)
        return 1
    _print_summary(result)
    if files.graph_message:
        print(files.graph_message, file=sys.stderr)
    pictures = sorted(set(files.pictures))
    print(
        f"wrote {args.out / REPORT_NAME}, summary.json and {len(pictures)} pictures in {args.out}"
    )
    return 0


def _print_summary(result: "StudyResult") -> None:
    """The final table: test MSE per model against the baselines, gradient ratio, time."""
    print(f"\n{'model':<10} {'test MSE':>9} {'log10 |dL/dh_1|/|dL/dh_T|':>26} {'time':>7}")
    for run in result.runs.values():
        reached = run.hidden_ratio[-1, 0]  # the trained model, mean over the probe batch
        print(f"{run.label:<10} {run.final_test_mse:>9.4f} {reached:>26.1f} {run.seconds:>6.1f}s")
    baselines = result.baselines
    print(
        f"baselines: predict the mean {baselines['predict_mean']:.4f}, "
        f"second marker only {baselines['second_marker_only']:.4f}"
    )


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
