"""Command line: ``python -m tinygrad_seq vanishing --out DIR`` (the main job), ``sweep``, ``demo``.

``vanishing`` is the vanishing-gradient study (:mod:`tinygrad_seq.lab.study`): a tanh RNN
and an LSTM (or any cells: ``--cells``, ``--cell``) trained on the adding problem, their
gradient flow recorded over training, and ``DIR/report.html``, ``DIR/summary.json`` and
every picture written at the end (all at once: an interrupted run leaves ``DIR`` as it was).

``sweep`` is the horizon sweep (:mod:`tinygrad_seq.lab.sweep`): every cell at every sequence
length and seed until solved, ``DIR/runs.jsonl`` appended as runs finish (it resumes), then
``DIR/sweep.json``, ``DIR/horizon.png``/``.svg`` and ``DIR/report.html``.

A bad argument or ``--cell`` is one line on stderr and exit code 2, before anything is
written.

``demo`` is the smallest end-to-end tour: an Elman RNN written by hand from Tensor ops,
trained for a few steps of plain gradient descent, then the computation graph of one
forward pass drawn to ``DIR/graph.svg`` (and ``DIR/graph.dot``).
"""

import argparse
import importlib.util
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import tinygrad_seq as ts
from tinygrad_seq.functional import mse_loss
from tinygrad_seq.viz import draw_graph

if TYPE_CHECKING:
    from tinygrad_seq.lab.study import StudyResult, StudySettings

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
        "picture. The default run takes about half a minute on two cores; --quick a few seconds.",
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
    _model_options(vanishing)
    _setting_options(vanishing)
    vanishing.add_argument(
        "--no-diagnostics",
        dest="diagnostics",
        action="store_false",
        help="training and test loss only: no gradient-flow measurements, no heat maps",
    )
    vanishing.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="models trained at a time, one process each (default: every core; the numbers "
        "do not depend on it)",
    )
    vanishing.add_argument(
        "--quick", action="store_true", help="a tiny run of a few seconds, for smoke tests"
    )
    vanishing.add_argument("--force", action="store_true", help="replace a report already in DIR")
    vanishing.set_defaults(run=_run_vanishing)
    sweep = commands.add_parser(
        "sweep",
        help="the horizon sweep: at which sequence length T does each cell stop learning?",
        description="Train every cell at every sequence length T and seed on the adding "
        "problem until solved (test MSE below --threshold) or out of steps; append each run "
        "to DIR/runs.jsonl as it finishes (the same command resumes), then write "
        "DIR/sweep.json, DIR/horizon.png and .svg, and DIR/report.html. The default sweep "
        "(rnn, lstm, gru; T = 10, 20, 30, 50, 100; seeds 0, 1, 2) takes a few minutes on two "
        "cores; --quick a few seconds.",
    )
    sweep.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    _model_options(sweep, default="rnn,lstm,gru")
    sweep.add_argument(
        "--seq-lens",
        type=_number_list(2),
        metavar="LIST",
        help="sequence lengths, comma-separated (10,20,30,50,100; 4,8 with --quick)",
    )
    sweep.add_argument(
        "--seeds",
        type=_number_list(0),
        metavar="LIST",
        help="seeds, comma-separated (0,1,2; 0 with --quick)",
    )
    sweep.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="most training steps per run (3000; 150 with --quick)",
    )
    sweep.add_argument(
        "--threshold",
        type=_positive_float,
        default=0.05,
        metavar="MSE",
        help="a run is solved when its test MSE falls below this (0.05)",
    )
    sweep.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="runs at a time, one process each (default: every core)",
    )
    _setting_options(sweep)
    sweep.add_argument(
        "--quick", action="store_true", help="a tiny sweep of a few seconds, for smoke tests"
    )
    sweep.set_defaults(run=_run_sweep)
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


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _number_list(low: int):
    """An argparse type: comma-separated whole numbers ≥ ``low``, duplicates dropped."""
    one = _int_at_least(low)

    def parse(text: str) -> tuple[int, ...]:
        values = tuple(dict.fromkeys(one(item.strip()) for item in text.split(",")))
        return values

    return parse


def _cell_list(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of the study's built-in models, each known."""
    from tinygrad_seq.lab.study import MODELS

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(map(repr, unknown)) or repr(text)}; choose from "
            + ", ".join(MODELS)
            + " (or add your own with --cell module:Class)"
        )
    return tuple(dict.fromkeys(names))


def _model_options(parser: argparse.ArgumentParser, default: str = "rnn,lstm") -> None:
    parser.add_argument(
        "--cells",
        type=_cell_list,
        default=_cell_list(default),
        metavar="LIST",
        help=f"built-in models, comma-separated, from: rnn, lstm, gru, irnn ({default})",
    )
    parser.add_argument(
        "--cell",
        action="append",
        default=[],
        metavar="SPEC",
        dest="specs",
        help="add your own cell, package.module:Class or path/to/file.py:Class, built as "
        "Class(input_size, hidden_size) (repeatable)",
    )


def _setting_options(parser: argparse.ArgumentParser) -> None:
    """The study's settings that both commands take."""
    parser.add_argument("--lr", type=_positive_float, help="Adam's learning rate (0.01)")
    parser.add_argument("--hidden", type=_positive_int, metavar="H", help="hidden size (32)")
    parser.add_argument("--batch", type=_positive_int, metavar="B", help="batch size (64)")
    parser.add_argument(
        "--clip", type=_positive_float, help="global gradient norm clipped at this (1.0)"
    )
    parser.add_argument(
        "--forget-bias", type=_finite_float, metavar="B", help="LSTM forget-gate bias (1.0)"
    )
    parser.add_argument(
        "--init",
        choices=("default", "orthogonal", "identity"),
        help="recurrent weights W of rnn, lstm, gru: PyTorch's U(±1/√H), orthogonal or the "
        "identity (default)",
    )


_SETTING_NAMES = {
    "lr": "learning_rate",
    "hidden": "hidden_size",
    "batch": "batch_size",
    "clip": "max_grad_norm",
    "forget_bias": "forget_bias",
    "init": "init",
}


def _chosen_settings(args: argparse.Namespace, **more: object) -> dict[str, object]:
    chosen = {field: getattr(args, option) for option, field in _SETTING_NAMES.items()}
    chosen.update(more)
    return {name: value for name, value in chosen.items() if value is not None}


def _usage_error(command: str, message: str) -> int:
    print(f"{command}: error: {message}", file=sys.stderr)
    return 2


def _user_models(args: argparse.Namespace, settings: "StudySettings") -> dict:
    """``{name: factory or None}`` for --cells and --cell, checked (CellSpecError if not)."""
    from tinygrad_seq.lab.study import CellSpecError, load_cell, resolve_models

    models: dict = dict.fromkeys(args.cells)
    for spec in args.specs:
        name, factory = load_cell(spec)
        if name in models:
            raise CellSpecError(f"--cell {spec!r}: a model named {name} is already in the study")
        models[name] = factory
    return resolve_models(models, settings)


def _has_matplotlib(command: str) -> bool:
    """Whether the pictures can be drawn; if not, say how to get them (one line)."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    print(
        f"{command}: error: the pictures need matplotlib: pip install 'tinygrad_seq[plot]'",
        file=sys.stderr,
    )
    return False


def _run_vanishing(args: argparse.Namespace) -> int:
    from tinygrad_seq.lab.report import REPORT_NAME, staged_output, write_study
    from tinygrad_seq.lab.study import CellSpecError, StudySettings, run_study

    command = "python -m tinygrad_seq vanishing"
    if not _has_matplotlib(command):
        return 1
    if (args.out / REPORT_NAME).exists() and not args.force:
        print(
            f"{command}: error: {args.out / REPORT_NAME} exists; pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    chosen = _chosen_settings(
        args,
        seq_len=args.seq_len,
        steps=args.steps,
        seed=args.seed,
        diagnostics=args.diagnostics,
    )
    settings = StudySettings.quick(**chosen) if args.quick else StudySettings(**chosen)
    try:
        models = _user_models(args, settings)
    except CellSpecError as error:
        return _usage_error(command, str(error))
    try:
        with staged_output(args.out) as stage:
            print(
                f"vanishing-gradient study: adding problem, T = {settings.seq_len}, "
                f"{settings.steps} steps, seed {settings.seed}",
                flush=True,
            )
            result = run_study(settings, models=models, jobs=args.jobs)
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


RATIO_HEADER = "log10 |dL/ds_1|/|dL/ds_T|"
"""The summary's gradient column: the probe-batch mean of log₁₀ of the gradient reaching s_1
(the state after x_1; h_1 for gated cells) over the one at s_T, for the trained model."""


def _print_summary(result: "StudyResult") -> None:
    """The final table: test MSE per model against the baselines, gradient ratio, time."""
    width = max(10, *(len(run.label) for run in result.runs.values()))
    diagnostics = result.settings.diagnostics
    ratio = f" {RATIO_HEADER:>26}" if diagnostics else ""
    print(f"\n{'model':<{width}} {'test MSE':>9}{ratio} {'time':>7}")
    for run in result.runs.values():
        reached = f" {run.hidden_ratio[-1, 0]:>26.1f}" if diagnostics else ""
        print(f"{run.label:<{width}} {run.final_test_mse:>9.4f}{reached} {run.seconds:>6.1f}s")
    if diagnostics:
        print(
            f"({RATIO_HEADER}: mean over the probe batch, trained model; the gradient-flow "
            f"measurements took {100 * result.diagnostic_share:.0f}% of the training time)"
        )
    baselines = result.baselines
    print(
        f"baselines: predict the mean {baselines['predict_mean']:.4f}, "
        f"second marker only {baselines['second_marker_only']:.4f}"
    )


def _run_sweep(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tinygrad_seq.lab import sweep
    from tinygrad_seq.lab.study import CellSpecError

    command = "python -m tinygrad_seq sweep"
    if not _has_matplotlib(command):
        return 1
    plan = sweep.SweepPlan.quick() if args.quick else sweep.SweepPlan()
    settings = replace(plan.settings, **_chosen_settings(args, steps=args.steps))
    try:
        models = _user_models(args, settings)
    except CellSpecError as error:
        return _usage_error(command, str(error))
    plan = replace(
        plan,
        cells=tuple(args.cells),
        specs=tuple(zip(list(models)[len(args.cells) :], args.specs, strict=True)),
        seq_lens=args.seq_lens or plan.seq_lens,
        seeds=args.seeds or plan.seeds,
        settings=settings,
        threshold=args.threshold,
    )
    total = len(plan.tasks())

    def report(record: dict, done: int, total: int) -> None:
        verdict = (
            f"solved at step {record['steps_to_solve']}"
            if record["solved"]
            else f"not solved in {record['steps_trained']} steps"
        )
        print(
            f"[{done}/{total}] {record['cell']} T={record['seq_len']} seed {record['seed']}: "
            f"{verdict}, best test MSE {record['best_test_mse']:.4f} "
            f"({record['seconds']:.1f}s)",
            flush=True,
        )

    try:
        previous = sweep.read_runs(args.out / sweep.RUNS_NAME, plan.shared_settings())
        done = {(r["cell"], r["seq_len"], r["seed"]) for r in previous}
        missing = [task for task in plan.tasks() if task not in done]
        if not missing and sweep.outputs_complete(args.out):
            print(f"all {total} runs are in {args.out / sweep.RUNS_NAME}; nothing to do")
            return 0
        print(
            f"horizon sweep: {', '.join(plan.names)} x T = "
            f"{', '.join(map(str, plan.seq_lens))} x seeds {', '.join(map(str, plan.seeds))}: "
            f"{total} runs, {total - len(missing)} already in {args.out}",
            flush=True,
        )
        records = sweep.run_sweep(plan, args.out, jobs=args.jobs, report=report)
        summary = sweep.horizon_summary(records, plan)
        files = sweep.write_sweep(summary, args.out)
    except sweep.SweepError as error:
        return _usage_error(command, str(error))
    except KeyboardInterrupt:
        print(
            f"\n{command}: interrupted; the finished runs are in {args.out / sweep.RUNS_NAME} "
            "and the same command resumes",
            file=sys.stderr,
        )
        return 130
    except OSError as error:
        print(f"{command}: error: cannot write to {args.out}: {error}", file=sys.stderr)
        return 1
    from tinygrad_seq.lab.report import horizon_verdict

    print(horizon_verdict(summary))
    print(f"wrote {', '.join(files)} in {args.out}")
    return 0


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
