"""The vanishing-gradient study written to a folder: pictures, ``summary.json``, ``report.html``.

:func:`write_study` turns a :class:`~tinygrad_seq.lab.study.StudyResult` into files;
:func:`staged_output` makes the whole set appear at once. The report is one self-contained
HTML file: every picture is inlined as a ``data:`` URI (PNG or SVG), there are no scripts,
style sheets or fonts from elsewhere, and every piece of text that comes from data is
HTML-escaped.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..nn import Recurrent

if TYPE_CHECKING:
    from .study import StudyResult

__all__ = [
    "StudyFiles",
    "horizon_verdict",
    "render_html",
    "render_sweep_html",
    "staged_output",
    "write_study",
]

REPORT_NAME = "report.html"
SUMMARY_NAME = "summary.json"
# Published last, in this order: a reader who sees report.html sees a complete run.
_LAST = (SUMMARY_NAME, REPORT_NAME)
_STAGING_PREFIX = ".tinygrad_seq-staging-"


@dataclass
class StudyFiles:
    """What :func:`write_study` wrote: file names inside the folder it was given.

    ``graph_message`` says why the graph pictures are missing (no renderer), or is None.
    """

    pictures: list[str] = field(default_factory=list)
    graph_sources: list[str] = field(default_factory=list)
    graph_message: str | None = None


@contextlib.contextmanager
def staged_output(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Collect files in a hidden staging folder inside ``folder``; publish them on success.

    On normal exit every staged file is moved into ``folder`` with ``os.replace`` (atomic, same
    file system), ``summary.json`` and ``report.html`` last, and the staging folder is removed.
    On any exception — Ctrl-C included — the staging folder is deleted and ``folder`` keeps
    exactly what it held before: never a half-written file, and an older report survives.
    Raises OSError at once when ``folder`` cannot be created or written to.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = folder / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
    stage.mkdir()
    try:
        yield stage
        staged = sorted(p for p in stage.iterdir() if p.is_file())
        last = [p for name in _LAST for p in staged if p.name == name]
        for path in [p for p in staged if p not in last] + last:
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_study(result: StudyResult, folder: Path, graphs: bool = True) -> StudyFiles:
    """Write every picture, ``summary.json`` and ``report.html`` of ``result`` into ``folder``.

    Matplotlib figures become PNG files (line plots also SVG). The graph pictures (the
    hidden-state chain coloured by gradient, one RNN and one LSTM step at op level) need a
    Graphviz renderer; without one their ``.dot`` files are still written and
    ``StudyFiles.graph_message`` says how to get pictures.
    """
    from .plots import save_figure, study_figures

    files = StudyFiles()
    images: dict[str, tuple[str, bytes]] = {}
    vector = {"loss_curves", "jacobian_spectrum", "gradient_profiles"}
    for name, fig in study_figures(result).items():
        formats = ("png", "svg") if name in vector else ("png",)
        files.pictures += [path.name for path in save_figure(fig, folder / name, formats)]
        images[name] = ("image/png", (folder / f"{name}.png").read_bytes())
    if graphs and result.settings.diagnostics:
        graph_images, sources, files.graph_message = _draw_graphs(result, folder)
        images.update(graph_images)
        files.pictures += [f"{name}.svg" for name in graph_images]
        files.graph_sources = [path.name for path in sources]

    summary = result.summary()
    (folder / SUMMARY_NAME).write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    page = render_html(summary, images, files.graph_message)
    (folder / REPORT_NAME).write_text(page, encoding="utf-8")
    return files


def _draw_graphs(
    result: StudyResult, folder: Path
) -> tuple[dict[str, tuple[str, bytes]], list[Path], str | None]:
    """The Graphviz pictures: SVG bytes by name, the .dot files, and a message if not drawn.

    Without any renderer the .dot files are written directly, so the run says so once
    instead of once per graph.
    """
    from ..viz.chain import draw_flow_chain, draw_unrolled
    from ..viz.dot import INSTALL_HINT, find_renderer
    from ..viz.lecture import draw_cell_step

    runs = result.runs
    from .plots import state_name

    flows = {run.label: run.final_flow for run in runs.values()}
    symbols = {run.label: state_name(run)[0] for run in runs.values()}
    graphs = {"flow_chain": draw_flow_chain(flows, symbols=symbols)}
    for run in runs.values():
        rnn = run.model.rnn
        cell = rnn.cell if isinstance(rnn, Recurrent) else rnn.cell(0)
        graphs[f"{run.name}_step"] = draw_cell_step(cell, head=run.model.head)
        if run.name == "rnn":  # the lecture's picture of the recurrence, three steps long
            graphs["rnn_unrolled"] = draw_unrolled(cell, run.model.head)
    if find_renderer() is None:
        sources = []
        for name, graph in graphs.items():
            sources.append(folder / f"{name}.dot")
            sources[-1].write_text(graph.source, encoding="utf-8")
        return {}, sources, f"graph pictures not drawn, only their .dot files: {INSTALL_HINT}"
    images, sources, message = {}, [], None
    for name, graph in graphs.items():
        rendered = graph.render(folder / f"{name}.svg", format="svg")
        sources.append(rendered.dot_path)
        if rendered.ok:
            images[name] = ("image/svg+xml", rendered.picture_path.read_bytes())
        else:
            message = rendered.message
    return images, sources, message


# --------------------------------------------------------------------------- the HTML page

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.95em; color: #333; margin-top: 0.4em; }
.eq { font-family: "DejaVu Serif", Georgia, serif; white-space: nowrap; }
.side { display: flex; gap: 1em; flex-wrap: wrap; align-items: flex-start; }
.side figure { flex: 1 1 20em; }
.note { background: #fff6e0; padding: 0.6em 1em; border-left: 4px solid #e0a000; }
"""

_EXPLANATIONS = {
    "one_glance": (
        "The study at one glance. Each heat map row is one measurement on the same probe "
        "batch at one training step; each column a time step t of the sequence. The colour is "
        "log<sub>10</sub>(‖∂L/∂x<sub>t</sub>‖ / ‖∂L/∂x<sub>T</sub>‖): how much of the gradient "
        "of the loss at the last step still reaches step t (0 = all of it, −12 or darker = "
        "vanished; one shared colour scale). For the tanh RNN "
        '<span class="eq">s<sub>t</sub> = tanh(U·x<sub>t</sub> + W·s<sub>t−1</sub> + '
        "β<sub>s</sub>)</span> the left side, where the first marker lies, stays dark and the "
        "test MSE stays on the 1/6 line. For the LSTM the map turns bright across the whole "
        "width at the moment its loss falls below both baselines: learning and gradient flow "
        "switch on together."
    ),
    "gradient_heatmaps": (
        "The same heat maps without the loss panel: tanh RNN ∂L/∂s<sub>t</sub>, LSTM "
        "∂L/∂h<sub>t</sub> and LSTM ∂L/∂C<sub>t</sub>, one colour scale. The LSTM's cell state "
        '<span class="eq">C<sub>t</sub> = f<sub>t</sub>⊙C<sub>t−1</sub> + '
        "i<sub>t</sub>⊙C̃<sub>t</sub></span> is an additive path: its Jacobian is "
        "diag(f<sub>t</sub>), so where the forget gates learn f<sub>t</sub> ≈ 1 the error "
        "reaches early steps almost undiminished (the constant error carousel)."
    ),
    "gradient_profiles": (
        "Rows of the heat maps at the first, middle and last measurement. In the tanh RNN "
        "the gradient is multiplied at every step back by the transposed Jacobian "
        '<span class="eq">J<sub>j</sub> = diag(1 − s<sub>j</sub><sup>2</sup>)·W</span>, so '
        '<span class="eq">‖∂s<sub>T</sub>/∂s<sub>t</sub>‖ ≤ (max|1 − s²|·‖W‖₂)'
        "<sup>T−t</sup></span> (Pascanu et al. 2013). The nearly straight falling lines "
        "come from the product of Jacobians itself, not from the bound: at the default "
        "initialisation ‖W‖₂ is about 1 and the bound grows with the distance, while the "
        "product loses a steady number of decades per step (the slope)."
    ),
    "loss_curves": (
        "Training loss on each batch (thin) and test MSE on a fixed test set (dots), log "
        "scale. Always answering 1 scores 1/6 ≈ 0.167; knowing only the second (recent) marked "
        "value scores 1/12 ≈ 0.083. Below 1/12 the model must have carried the first value "
        "across at least T/2 steps."
    ),
    "jacobian_spectrum": (
        "Singular values σ₁ (solid) and σ₅ (dotted) of the product of state Jacobians "
        '<span class="eq">∂z<sub>T</sub>/∂z<sub>T−k</sub> = J<sub>T</sub>·J<sub>T−1</sub>⋯'
        "J<sub>T−k+1</sub></span> against the distance k, at the start, middle and end of "
        "training (geometric mean over probe examples). For the tanh RNN z = s and "
        "J<sub>j</sub> = diag(1 − s<sub>j</sub><sup>2</sup>)·W; for the LSTM z = "
        "(h<sub>t</sub>, C<sub>t</sub>), whose Jacobian holds the additive cell path "
        "diag(f<sub>t</sub>). σ₁ bounds how much of any gradient survives k steps: it falls "
        "exponentially for the tanh RNN, and stays level for the trained LSTM."
    ),
    "flow_chain": (
        "The unrolled chain of states of the trained models on the probe batch, s<sub>1</sub> "
        "… s<sub>T</sub> for the Elman RNNs (h<sub>t</sub> and C<sub>t</sub> for gated "
        "cells), each node coloured by ‖∂L/∂s<sub>t</sub>‖ on a log scale; long sequences "
        "show every k-th step, at most about 50 nodes a chain."
    ),
    "rnn_unrolled": (
        "The recurrence of the trained tanh RNN unrolled over three time steps: every step "
        "reads x<sub>t</sub> and s<sub>t−1</sub> through the same U, W and β<sub>s</sub>, "
        "and the output layer V, β<sub>o</sub> gives o<sub>t</sub> = V·s<sub>t</sub> + "
        "β<sub>o</sub> (the adding problem reads only the last one)."
    ),
    "rnn_step": (
        "One step of the tanh RNN as the library's autograd records it, op by op: the affine "
        "maps U·x<sub>t</sub> + β<sub>s</sub> and W·s<sub>t−1</sub>, their sum, tanh, and "
        "the output layer o<sub>t</sub> = V·s<sub>t</sub> + β<sub>o</sub> (β<sub>s</sub> is "
        "PyTorch's bias_ih + bias_hh: only their sum matters)."
    ),
    "lstm_step": (
        "One step of the LSTM, op by op: one affine map of x<sub>t</sub> and one of "
        "h<sub>t−1</sub>, each covering all four gates (PyTorch's order i, f, g, o), added and "
        "split into f<sub>t</sub>, i<sub>t</sub>, C̃<sub>t</sub>, "
        "o<sub>t</sub>; the cell update C<sub>t</sub> = f<sub>t</sub>⊙C<sub>t−1</sub> + "
        "i<sub>t</sub>⊙C̃<sub>t</sub> and h<sub>t</sub> = o<sub>t</sub>⊙tanh(C<sub>t</sub>)."
    ),
}

_TITLES = {
    "one_glance": "Gradient flow over training, and the test loss",
    "gradient_heatmaps": "Heat maps of the gradient reaching each time step",
    "gradient_profiles": "Gradient against time step",
    "loss_curves": "Loss curves and the trivial baselines",
    "jacobian_spectrum": "Spectrum of products of Jacobians",
    "flow_chain": "The hidden-state chain coloured by gradient",
    "rnn_step": "One RNN step at op level",
    "rnn_unrolled": "The tanh RNN unrolled over three steps",
    "lstm_step": "One LSTM step at op level",
}


def render_html(
    summary: dict[str, Any],
    images: dict[str, tuple[str, bytes]],
    graph_message: str | None = None,
) -> str:
    """The report page for ``summary`` (as ``summary.json``) with ``images`` inlined.

    ``images`` maps a picture's name to ``(mime type, bytes)``. Every value taken from
    ``summary`` and the message is escaped; the explanations are this module's own markup.
    """
    e = _escape
    settings, models, baselines = summary["settings"], summary["models"], summary["baselines"]
    T = settings["seq_len"]
    compared = e(" vs ".join(entry["label"] for entry in models.values()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Vanishing gradients: {compared}, adding problem T = {e(T)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Vanishing gradients through time: {compared}</h1>",
        "<p>Every model reads a sequence of T pairs (value, marker), x<sub>1</sub> … "
        "x<sub>T</sub> from the initial state s<sub>0</sub>, and answers once, from its "
        "output at the last step, with the sum of the two marked values; one marker lies in the "
        "first half of the sequence. To use it, the gradient of the loss at step T must "
        "reach a step at least T/2 back. The loss L is placed at the last step only.</p>",
        "<h2>Results</h2>",
        _results_table(summary),
        _verdict(models, baselines, T),
    ]
    for name in ("one_glance", "loss_curves", "gradient_profiles", "gradient_heatmaps"):
        parts.append(_figure(name, images))
    parts.append(_figure("jacobian_spectrum", images))
    parts.append("<h2>Graphs</h2>")
    if graph_message:
        parts.append(f'<p class="note">{e(graph_message)}</p>')
    graph_figures = [_figure(name, images) for name in images if name.endswith("_step")]
    parts.append(_figure("rnn_unrolled", images))
    parts.append(_figure("flow_chain", images))
    parts.append('<div class="side">' + "".join(graph_figures) + "</div>")
    parts += [
        "<h2>Settings</h2>",
        _settings_table(settings),
        "<h2>Seeds</h2>",
        "<p>Every random stream is drawn from <code>numpy.random.default_rng(seed)</code> with "
        "these seeds, so the same seed gives the same numbers. Both models see the same "
        "training batches, probe batch and test set.</p>",
        _table([(name, value) for name, value in summary["seeds"].items()], ("stream", "seed")),
        "<h2>How it was measured</h2>",
        "<p>Every few training steps a recorder runs the current model in float64 on a fixed "
        "probe batch, backpropagates the last-step loss and takes, per example, the norm of "
        "the total derivative ∂L/∂h<sub>t</sub> (through every path from h<sub>t</sub> on). "
        "The heat maps and profiles show log<sub>10</sub> of its ratio to the last step's, "
        "averaged over the batch (a geometric mean, so a few examples cannot dominate); "
        "<code>summary.json</code> also holds the batch-mean norms themselves. "
        "Weights start from U(±1/√H) as in PyTorch — the RNN's W "
        "too (an orthogonal W is the stronger baseline; it lets more gradient through at "
        "the start, but its loss stays on the baseline as well). The LSTM's forget-gate bias "
        f"β<sub>f</sub> is set to {e(settings['forget_bias'])} (PyTorch's two biases: the f "
        "block of bias_ih_l0 holds it, that of bias_hh_l0 is 0). Settings follow the "
        "literature on the adding problem (Adam, lr 10<sup>−2</sup>, global gradient norm "
        "clipped at 1; see docs/vanishing-gradients.md).</p>",
        "<p>Caveat: at T = 50 a tanh RNN can learn the task with a 10× smaller learning rate "
        "and several thousand steps; the robust separation is at T = 100.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{_escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f"<td>{_escape(row[0])}</td>"]
        cells += [f'<td class="num">{_escape(_number(v))}</td>' for v in row[1:]]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


RATIO_COLUMN = (
    "mean over the probe batch of log₁₀(‖∂L/∂s₁‖ / ‖∂L/∂s_T‖), trained model "
    "(s_t: the state read out, h_t for gated cells)"
)
"""The results table's gradient column: what it averages, over what, and when."""


def _results_table(summary: dict[str, Any]) -> str:
    rows = []
    timings = summary.get("timings_seconds", {})
    for name, entry in summary["models"].items():
        ratios = entry.get("hidden_log_ratio")
        first = ratios[-1][0] if ratios else None
        if ratios is None:
            reached = "not measured"
        else:
            reached = "−∞ (underflow)" if first is None else f"{first:.1f}"
        seconds = timings.get(name)
        rows.append(
            (
                entry["label"],
                entry["test_mse"],
                reached,
                "" if seconds is None else f"{seconds:.1f}",
            )
        )
    baselines = summary["baselines"]
    rows.append(("baseline: predict the mean (1)", baselines["predict_mean"], "", ""))
    rows.append(("baseline: second marker only", baselines["second_marker_only"], "", ""))
    header = (
        "model",
        "test MSE",
        RATIO_COLUMN,
        "time (s)",
    )
    return _table(rows, header)


def _verdict(models: dict[str, Any], baselines: dict[str, float], T: int) -> str:
    lines = []
    for entry in models.values():
        mse = entry["test_mse"]
        if mse < baselines["second_marker_only"]:
            verdict = "below 1/12: it carries the first value across the sequence"
        elif mse < baselines["predict_mean"] * 0.9:
            verdict = "between 1/12 and 1/6: it uses at most the recent marker"
        else:
            verdict = "on the 1/6 baseline: it learned to answer the mean"
        lines.append(f"<li>{_escape(entry['label'])}: {_escape(_number(mse))}, {verdict}.</li>")
    return f"<p>Final test MSE at T = {_escape(T)}:</p><ul>{''.join(lines)}</ul>"


def _settings_table(settings: dict[str, Any]) -> str:
    return _table(list(settings.items()), ("setting", "value"))


def _figure(name: str, images: dict[str, tuple[str, bytes]]) -> str:
    if name not in images:
        return ""
    mime, data = images[name]
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    model = name.removesuffix("_step")
    title = _TITLES.get(name, f"One step of {model} at op level")
    explanation = _EXPLANATIONS.get(
        name, "One step of this cell as the library's autograd records it, op by op."
    )
    return (
        f'<figure id="{_escape(name)}"><h3>{_escape(title)}</h3>'
        f'<img src="{uri}" alt="{_escape(title)}">'
        f"<figcaption>{explanation}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- the sweep's page


def render_sweep_html(summary: dict[str, Any], horizon_png: bytes) -> str:
    """The horizon sweep's page: solved fractions, the verdict per cell, the picture."""
    e = _escape
    cells, seq_lens = summary["cells"], summary["seq_lens"]
    table = summary["table"]
    header = ("cell", *(f"T = {T}" for T in seq_lens))
    rows = []
    for cell, label in cells.items():
        row = [label]
        for T in seq_lens:
            entry = table.get(cell, {}).get(str(T))
            row.append("" if entry is None else f"{entry['solved']}/{entry['runs']}")
        rows.append(tuple(row))
    settings = summary["settings"]
    uri = f"data:image/png;base64,{base64.b64encode(horizon_png).decode('ascii')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>How far back can each cell remember? The horizon sweep</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>How far back can each cell remember?</h1>",
        "<p>Every cell trains on the adding problem at each sequence length T and seed with "
        f"the same settings (hidden size {e(settings['hidden_size'])}, batch "
        f"{e(settings['batch_size'])}, Adam lr {e(settings['learning_rate'])}, gradient norm "
        f"clipped at {e(settings['max_grad_norm'])}, at most {e(settings['steps'])} steps). "
        f"A run is <em>solved</em> when its test MSE falls below {e(summary['threshold'])}; "
        "remembering only the recent marker scores 1/12 ≈ 0.083, always answering the mean "
        "1/6 ≈ 0.167.</p>",
        "<h2>Solved runs (solved / seeds)</h2>",
        _table(rows, header),
        f"<p>{e(horizon_verdict(summary))}</p>",
        '<figure id="horizon"><h3>Test MSE and steps to solve against T</h3>'
        f'<img src="{uri}" alt="test MSE and steps to solve against T">'
        "<figcaption>Left: final test MSE of every run (points) and the median per cell "
        "(lines), with the baselines and the threshold. Right: training steps until the "
        "first evaluation below the threshold; open markers at the top were never solved."
        "</figcaption></figure>",
        "<h2>Runs</h2>",
        _table(
            [
                (
                    cells.get(r["cell"], r["cell"]),
                    r["seq_len"],
                    r["seed"],
                    "yes" if r["solved"] else "no",
                    "" if r["steps_to_solve"] is None else r["steps_to_solve"],
                    r["best_test_mse"],
                    r["final_test_mse"],
                    r["seconds"],
                )
                for r in summary["runs"]
            ],
            ("cell", "T", "seed", "solved", "steps to solve", "best MSE", "final MSE", "s"),
        ),
        "<h2>Settings</h2>",
        _settings_table(settings),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def horizon_verdict(summary: dict[str, Any]) -> str:
    """One sentence per cell, from the measured runs: the longest T it solves in every seed."""
    sentences = []
    for cell, label in summary["cells"].items():
        longest = summary["longest_solved"][cell]
        every, some = longest["every_seed"], longest["any_seed"]
        if every is None and some is None:
            text = f"{label} solves none of the lengths tried"
        elif every is None:
            text = f"{label} solves T = {some} in some seeds but no length in every seed"
        else:
            text = f"The longest T that {label} solves in every seed is {every}"
            if some is not None and some > every:
                text += f" (and T = {some} in some seeds)"
        failed = [T for T, entry in summary["table"].get(cell, {}).items() if not entry["solved"]]
        if failed:
            text += f"; no seed solves T = {', '.join(failed)}"
        sentences.append(text + ".")
    return " ".join(sentences)
