"""Matplotlib figures of the vanishing-gradient study (``python -m tinygrad_seq vanishing``).

- :func:`gradient_heatmaps` — log₁₀(‖∂L/∂s_t‖ / ‖∂L/∂s_T‖) over time step t × training step,
  one panel per state (tanh RNN s_t, LSTM h_t and C_t, …) on one shared, clipped colour
  scale, at most :data:`PANELS_PER_ROW` to a row so that it reads at page width; with
  ``loss=`` a last panel adds the test MSE on the same training-step axis: the one-glance
  picture.
- :func:`gradient_profiles` — the same ratio against t at the start, middle and end of
  training: the slope is the number of decades the gradient loses per step.
- :func:`loss_curves` — training loss and test MSE with the trivial baselines 1/6 and 1/12.
- :func:`jacobian_spectra` — singular values of ∂s_T/∂s_{T−k} against the distance k.
- :func:`horizon_figure` — the horizon sweep: test MSE and steps to solve against T.

Each returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, no window,
rendered by Agg); :func:`save_figure` writes it. matplotlib is imported only when a figure is
made, so the rest of the package works without it (``pip install 'tinygrad_seq[plot]'``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .study import StudyResult

__all__ = [
    "COLOUR_RANGE",
    "PANELS_PER_ROW",
    "gradient_heatmaps",
    "gradient_profiles",
    "horizon_figure",
    "jacobian_spectra",
    "loss_curves",
    "save_figure",
    "study_figures",
]

COLOUR_RANGE = (-12.0, 0.0)
"""Decades shown by the heat maps: 10⁻¹² and below is "vanished" (float64 sees far lower)."""

PANELS_PER_ROW = 3
"""Heat maps, profiles and spectra wrap after this many panels: a row stays page-wide."""

_STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}
_COLOURMAP = "magma"  # dark = vanished, bright = the gradient reaches this step
_CURVE_COLOURS = (
    "tab:blue",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:orange",
    "tab:brown",
)  # in the order of models
_STEP_STYLES = ("-", "--", ":")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _styled(function: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function with the module's readable fonts, leaving global settings alone."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return function(*args, **kwargs)

    return wrapper


@_styled
def gradient_heatmaps(
    panels: Sequence[tuple[Any, ...]],
    seq_len: int,
    loss: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Heat maps of log₁₀(‖∂L/∂z_t‖ / ‖∂L/∂z_T‖) for a state z, time t across, training up.

    ``panels`` holds ``(title, training_steps, ratios)`` with ``ratios`` of shape
    (len(training_steps), T): for each record, log₁₀ of the gradient norm of the last-step
    loss with respect to the state at t over the one at T (as ``GradientFlow.log_ratio``
    gives it). An optional fourth element lists ``(training_step, text)`` marks drawn across
    the panel (the study marks where a model's test MSE falls below 1/12). Every panel
    shares :data:`COLOUR_RANGE`, so equal colours mean equal ratios; −∞ (an underflowed
    gradient) and NaN are drawn as the darkest colour. Panels wrap after
    :data:`PANELS_PER_ROW`.

    ``loss`` (optional) adds the one-glance panel at the end of the first row, on the same
    training-step axis (upwards) with the MSE across on a log scale:
    ``{"curves": {label: (steps, values)}, "baselines": {label: value},
    "spikes": {label: steps}}`` (``spikes``, optional: training steps whose gradient norm
    was far above the clipping threshold, drawn as ticks at the panel's right edge).
    """
    columns = min(len(panels), PANELS_PER_ROW)
    rows = math.ceil(len(panels) / columns)
    width = 3.3 * columns + (4.4 if loss else 0) + 1.0
    fig = _figure(width, 3.6 * rows + 0.4)
    # With a loss panel, an empty column keeps the colour bar's label clear of its axis.
    widths = [1.0] * columns + [0.06] + ([0.25, 1.25] if loss else [])
    grid = fig.add_gridspec(rows, len(widths), width_ratios=widths)
    low, high = COLOUR_RANGE
    image, first = None, None
    for index, (panel_title, steps, ratios, *marks) in enumerate(panels):
        ax = fig.add_subplot(grid[index // columns, index % columns], sharey=first)
        first = first or ax
        values = np.asarray(ratios, dtype=np.float64)
        values = np.clip(np.nan_to_num(values, neginf=low, nan=low), low, high)
        steps = np.asarray(steps)
        image = ax.pcolormesh(
            _edges(np.arange(1, seq_len + 1)),
            _edges(steps),
            values,
            cmap=_COLOURMAP,
            vmin=low,
            vmax=high,
            shading="flat",
            rasterized=True,
        )
        for step, text in marks[0] if marks else ():
            ax.axhline(step, color="tab:cyan", linestyle="--", linewidth=1.4)
            ax.annotate(
                text,
                (1, step),
                xytext=(3, 3),
                textcoords="offset points",
                color="tab:cyan",
                fontsize=9,
                fontweight="bold",
            )
        ax.set_title(panel_title)
        ax.set_xlabel(f"time step t  (loss at t = T = {seq_len})")
        if index % columns == 0:
            ax.set_ylabel("training step")
    colourbar = fig.colorbar(image, cax=fig.add_subplot(grid[:, columns]), extend="min")
    # The same ratio for the state named in each panel's title (s_t, h_t or C_t).
    colourbar.set_label(r"$\log_{10}$ of ‖∂L/∂(state)$_t$‖ / ‖∂L/∂(state)$_T$‖", labelpad=2)
    if loss:
        ax = fig.add_subplot(grid[0, -1], sharey=first)
        _draw_loss(ax, loss["curves"], loss["baselines"], markers=True, vertical=True)
        colours = dict(zip(loss["curves"], _CURVE_COLOURS, strict=False))
        for label, steps in loss.get("spikes", {}).items():
            if len(steps):
                ax.plot(
                    np.full(len(steps), 0.98),
                    steps,
                    linestyle="none",
                    marker="<",
                    markersize=4,
                    color=colours.get(label),
                    transform=ax.get_yaxis_transform(),
                    label=f"{label}: gradient spike (clipped)",
                )
        ax.legend(loc="lower left", fontsize=8)  # the curves start on the right, at 1/6
        ax.set_title("test MSE")
    if title:
        fig.suptitle(title)
    return fig


def _panel_axes(count: int, width: float, height: float, sharey: bool = False) -> list[Any]:
    """``count`` axes in rows of at most :data:`PANELS_PER_ROW`, in a new figure."""
    columns = min(count, PANELS_PER_ROW)
    rows = math.ceil(count / columns)
    fig = _figure(width * columns, height * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharey=sharey, squeeze=False)).ravel()
    for extra in axes[count:]:
        extra.set_axis_off()
    return list(axes[:count])


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around ``centres`` (evenly or unevenly spaced) for pcolormesh."""
    centres = np.asarray(centres, dtype=np.float64)
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middles = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middles[0]], middles, [2 * centres[-1] - middles[-1]]])


def _draw_loss(
    ax: Any,
    curves: Mapping[str, tuple[Any, Any]],
    baselines: Mapping[str, float],
    markers: bool = False,
    colours: Mapping[str, str] | None = None,
    vertical: bool = False,
) -> None:
    """MSE curves on a log scale against the training step (upwards when ``vertical``)."""
    colours = colours or dict(zip(curves, _CURVE_COLOURS, strict=False))
    for label, (steps, values) in curves.items():
        style = {"marker": "o", "markersize": 3} if markers else {}
        points = (values, steps) if vertical else (steps, values)
        ax.plot(*points, label=label, color=colours.get(label), **style)
    line = ax.axvline if vertical else ax.axhline
    for (label, value), style in zip(baselines.items(), ("--", ":"), strict=False):
        line(value, color="0.3", linestyle=style, linewidth=1.3, label=f"{label}: {value:.3f}")
    (ax.set_xscale if vertical else ax.set_yscale)("log")
    (ax.set_ylabel if vertical else ax.set_xlabel)("training step")
    (ax.set_xlabel if vertical else ax.set_ylabel)("MSE (log scale)")
    ax.legend(loc="lower left")
    ax.grid(True, which="major", alpha=0.3)


@_styled
def loss_curves(
    train: Mapping[str, Any],
    test: Mapping[str, tuple[Any, Any]],
    baselines: Mapping[str, float],
    title: str = "Adding problem: loss",
) -> Figure:
    """Training loss per step (thin) and test MSE at the evaluation points (dots).

    ``train`` maps a model label to its per-step losses (step 1 first), ``test`` maps it to
    ``(steps, mse)``; ``baselines`` are horizontal lines with their names written on them.
    """
    fig = _figure(7.5, 4.5)
    ax = fig.subplots()
    colours = dict(zip(train, _CURVE_COLOURS, strict=False))
    for label, losses in train.items():
        losses = np.asarray(losses)
        ax.plot(
            np.arange(1, len(losses) + 1),
            losses,
            color=colours[label],
            alpha=0.3,
            linewidth=0.8,
            label=f"{label}: training batch",
        )
    test_curves = {f"{label}: test set": curve for label, curve in test.items()}
    test_colours = {f"{label}: test set": colours.get(label) for label in test}
    _draw_loss(ax, test_curves, baselines, markers=True, colours=test_colours)
    ax.set_title(title)
    return fig


@_styled
def gradient_profiles(
    panels: Sequence[tuple[str, Any, Any]], seq_len: int, title: str | None = None
) -> Figure:
    """log₁₀(‖∂L/∂z_t‖ / ‖∂L/∂z_T‖) for a state z against t at the first, middle, last record.

    ``panels`` as for :func:`gradient_heatmaps`. A straight line falling by d decades over
    the sequence means the gradient shrinks by a factor 10^(d/T) per step.
    """
    axes = _panel_axes(len(panels), 4.0, 3.6, sharey=True)
    fig = axes[0].figure
    times = np.arange(1, seq_len + 1)
    for ax, (panel_title, steps, ratios, *_) in zip(axes, panels, strict=True):
        values = np.asarray(ratios, dtype=np.float64)
        rows = sorted({0, len(steps) // 2, len(steps) - 1})
        for row, style in zip(rows, _STEP_STYLES, strict=False):
            ax.plot(times, values[row], linestyle=style, label=f"training step {steps[row]}")
        ax.set_title(panel_title)
        ax.set_xlabel("time step t")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    axes[0].set_ylabel(r"$\log_{10}$ of ‖∂L/∂(state)$_t$‖ / ‖∂L/∂(state)$_T$‖")
    if title:
        fig.suptitle(title)
    return fig


@_styled
def jacobian_spectra(
    panels: Sequence[tuple[str, Mapping[int, Any]]],
    title: str | None = None,
    ranks: tuple[int, int] = (1, 5),
) -> Figure:
    """Singular values of the product of k state Jacobians, ∂z_T/∂z_{T−k}, against k.

    ``panels`` holds ``(title, {training_step: singular_values})`` with ``singular_values``
    of shape (K, S): row k−1 the singular values of the product over k steps, largest
    first (as ``viz.flow.jacobian_product_spectrum`` returns them). Two ranks are drawn on
    a log scale, σ₁ solid and σ₅ dotted by default: σ₁ bounds the gain of any gradient over
    k steps; the smallest values are rounding noise (below ~10⁻¹⁵·σ₁) and are not drawn.
    """
    axes = _panel_axes(len(panels), 4.2, 3.8)
    fig = axes[0].figure
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    for ax, (panel_title, spectra) in zip(axes, panels, strict=True):
        for (step, values), colour in zip(spectra.items(), colours, strict=False):
            values = np.atleast_2d(np.asarray(values, dtype=np.float64))
            distance = np.arange(1, values.shape[0] + 1)
            for rank, style in zip(ranks, ("-", ":"), strict=True):
                if rank <= values.shape[1]:
                    label = f"step {step}: $\\sigma_{{{rank}}}$"
                    ax.plot(distance, values[:, rank - 1], color=colour, ls=style, label=label)
        ax.set_yscale("log")
        ax.set_title(panel_title)
        ax.set_xlabel("k  (steps back from T)")
        ax.set_ylabel(r"singular values of $\partial z_T/\partial z_{T-k}$")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best")
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats``; return the files written."""
    base = Path(path).with_suffix("")
    written = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        fig.savefig(target, format=fmt)
        written.append(target)
    return written


def state_name(run: Any) -> str:
    """The lecture's name of a model's state: s_t for the Elman RNNs, h_t for the others."""
    return "s_t" if run.name in ("rnn", "irnn") else "h_t"


def study_figures(result: StudyResult) -> dict[str, Figure]:
    """Every figure of a study run, keyed by file name (without suffix).

    Without diagnostics only the loss curves exist.
    """
    settings, runs = result.settings, result.runs
    T = settings.seq_len
    baselines = {
        "predict the mean": result.baselines["predict_mean"],
        "second marker only": result.baselines["second_marker_only"],
    }
    test = {run.label: (run.eval_steps, run.test_mse) for run in runs.values()}
    header = f"adding problem, T = {T}, hidden size {settings.hidden_size}"
    figures = {
        "loss_curves": loss_curves(
            {run.label: run.train_loss for run in runs.values()},
            test,
            baselines,
            title=f"Loss ({header})",
        )
    }
    if not settings.diagnostics:
        return figures
    heat_panels = []
    for run in runs.values():
        marks = _learned_marks(run, result.baselines["second_marker_only"])
        state = state_name(run)
        heat_panels.append(
            (
                rf"{run.label}: $\partial L/\partial {state}$",
                run.flow_steps,
                run.hidden_ratio,
                marks,
            )
        )
        if run.cell_ratio is not None:
            heat_panels.append(
                (rf"{run.label}: $\partial L/\partial C_t$", run.flow_steps, run.cell_ratio, marks)
            )
    spikes = {
        run.label: np.flatnonzero(run.grad_norms > SPIKE_FACTOR * settings.max_grad_norm) + 1
        for run in runs.values()
    }
    return {
        "one_glance": gradient_heatmaps(
            heat_panels,
            T,
            loss={"curves": test, "baselines": baselines, "spikes": spikes},
            title=f"Gradient reaching step t, over training ({header})",
        ),
        "gradient_heatmaps": gradient_heatmaps(
            heat_panels, T, title=f"Gradient reaching step t, over training ({header})"
        ),
        "gradient_profiles": gradient_profiles(
            heat_panels, T, title=f"Gradient against time step ({header})"
        ),
        **figures,
        "jacobian_spectrum": jacobian_spectra(
            [(_spectrum_title(run), run.spectra) for run in runs.values()],
            title=f"Singular values of products of k state Jacobians ({header})",
        ),
    }


SPIKE_FACTOR = 10.0
"""A training step whose gradient norm exceeds this many times the clipping threshold is
marked as a spike in the one-glance picture (clipping cut it down to the threshold)."""


def _learned_marks(run: Any, threshold: float) -> list[tuple[int, str]]:
    """Where the test MSE first falls below ``threshold`` (1/12): the model has learned."""
    below = np.flatnonzero(np.asarray(run.test_mse) < threshold)
    if not below.size or run.eval_steps[below[0]] == 0:
        return []
    return [(int(run.eval_steps[below[0]]), "test MSE < 1/12")]


def _spectrum_title(run: Any) -> str:
    if run.cell_ratio is not None:
        return f"{run.label}, $z_t = (h_t, C_t)$"
    return f"{run.label}, $z_t = {state_name(run)}$"


@_styled
def horizon_figure(summary: Mapping[str, Any]) -> Figure:
    """The horizon sweep at one glance: test MSE and steps to solve against T, per cell.

    ``summary`` is ``sweep.json`` (:func:`tinygrad_seq.lab.sweep.horizon_summary`). Left:
    the final test MSE of every run (one point per seed) and the median per cell (a line),
    on a log scale, with the 1/6 and 1/12 baselines and the threshold for "solved". Right:
    the training steps until solved; runs never solved are drawn as open markers on the
    "not solved" line above the step budget.
    """
    fig = _figure(11.0, 4.3)
    left, right = fig.subplots(1, 2)
    cells, runs = summary["cells"], summary["runs"]
    seq_lens = summary["seq_lens"]
    budget = summary["settings"]["steps"]
    colours = dict(zip(cells, _CURVE_COLOURS * 4, strict=False))
    spread = {cell: 0.012 * (k - (len(cells) - 1) / 2) for k, cell in enumerate(cells)}
    for cell, label in cells.items():
        mine = [r for r in runs if r["cell"] == cell]
        if not mine:
            continue
        shift = 1 + spread[cell]  # side by side on the log-T axis, not on top of each other
        xs = [r["seq_len"] * shift for r in mine]
        colour = colours[cell]
        left.scatter(xs, [r["final_test_mse"] for r in mine], s=16, color=colour, alpha=0.6)
        lengths = [T for T in seq_lens if any(r["seq_len"] == T for r in mine)]
        medians = [
            float(np.median([r["final_test_mse"] for r in mine if r["seq_len"] == T]))
            for T in lengths
        ]
        left.plot(lengths, medians, color=colour, label=f"{label} (median)")
        solved = [r for r in mine if r["solved"]]
        failed = [r for r in mine if not r["solved"]]
        right.scatter(
            [r["seq_len"] * shift for r in solved],
            [r["steps_to_solve"] for r in solved],
            s=18,
            color=colour,
            label=label,
        )
        right.scatter(
            [r["seq_len"] * shift for r in failed],
            [budget * 1.15] * len(failed),
            s=22,
            facecolors="none",
            edgecolors=colour,
        )
    baselines = summary["baselines"]
    for value, text, style in (
        (baselines["predict_mean"], "1/6: predict the mean", "--"),
        (baselines["second_marker_only"], "1/12: second marker only", ":"),
        (summary["threshold"], f"solved below {summary['threshold']:g}", "-."),
    ):
        left.axhline(value, color="0.3", linestyle=style, linewidth=1.2, label=text)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(seq_lens, [str(T) for T in seq_lens])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T")
        ax.grid(True, alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("final test MSE (log scale)")
    left.set_title("test MSE against T (one point per seed)")
    left.legend(loc="lower right", fontsize=8)
    right.axhline(budget * 1.15, color="0.5", linewidth=0.8)
    right.annotate(
        "not solved (open markers)",
        (0.02, budget * 1.15),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=8,
        color="0.3",
    )
    right.set_ylim(0, budget * 1.3)
    right.set_ylabel("training steps until solved")
    right.set_title(f"steps to solve (budget {budget})")
    right.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0, 0.9))
    fig.suptitle(
        f"How far back can each cell remember? Adding problem, {len(summary['seeds'])} seeds"
    )
    return fig
