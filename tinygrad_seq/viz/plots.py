"""Matplotlib figures of the vanishing-gradient study (``python -m tinygrad_seq vanishing``).

- :func:`gradient_heatmaps` — log₁₀(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖) over time step t × training step,
  one panel per model (tanh RNN, LSTM h_t, LSTM C_t) on one shared, clipped colour scale;
  with ``loss=`` a last panel adds the test MSE: the one-glance picture.
- :func:`gradient_profiles` — the same ratio against t at the start, middle and end of
  training: the slope is the number of decades the gradient loses per step.
- :func:`loss_curves` — training loss and test MSE with the trivial baselines 1/6 and 1/12.
- :func:`jacobian_spectra` — singular values of ∂s_T/∂s_{T−k} against the distance k.

Each returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, no window,
rendered by Agg); :func:`save_figure` writes it. matplotlib is imported only when a figure is
made, so the rest of the package works without it (``pip install 'tinygrad_seq[plot]'``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..vanishing import StudyResult

__all__ = [
    "COLOUR_RANGE",
    "gradient_heatmaps",
    "gradient_profiles",
    "jacobian_spectra",
    "loss_curves",
    "save_figure",
    "study_figures",
]

COLOUR_RANGE = (-12.0, 0.0)
"""Decades shown by the heat maps: 10⁻¹² and below is "vanished" (float64 sees far lower)."""

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
_CURVE_COLOURS = ("tab:blue", "tab:green", "tab:red", "tab:purple")  # in the order of models
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
    panels: Sequence[tuple[str, Any, Any]],
    seq_len: int,
    loss: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Heat maps of log₁₀(‖∂L/∂z_t‖ / ‖∂L/∂z_T‖) for a state z, time t across, training up.

    ``panels`` holds ``(title, training_steps, ratios)`` with ``ratios`` of shape
    (len(training_steps), T): for each record, log₁₀ of the gradient norm of the last-step
    loss with respect to the state at t over the one at T (as ``GradientFlow.log_ratio``
    gives it). Every panel shares :data:`COLOUR_RANGE`, so equal colours mean equal ratios;
    −∞ (an underflowed gradient) and NaN are drawn as the darkest colour.

    ``loss`` (optional) adds the one-glance panel, drawn on a log scale:
    ``{"curves": {label: (steps, values)}, "baselines": {label: value}}``.
    """
    width = 3.4 * len(panels) + (4.8 if loss else 0) + 1.0
    fig = _figure(width, 4.0)
    columns = len(panels) + 1 + (2 if loss else 0)
    # With a loss panel, an empty column keeps the colour bar's label clear of its axis.
    widths = [1.0] * len(panels) + [0.06] + ([0.22, 1.25] if loss else [])
    axes = fig.subplots(1, columns, gridspec_kw={"width_ratios": widths})
    low, high = COLOUR_RANGE
    image = None
    for ax, (panel_title, steps, ratios) in zip(axes, panels, strict=False):
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
        ax.set_title(panel_title)
        ax.set_xlabel(f"time step t  (loss at t = T = {seq_len})")
        ax.set_ylabel("training step")
    colourbar = fig.colorbar(image, cax=axes[len(panels)], extend="min")
    # The same ratio for the state named in each panel's title (s_t, h_t or C_t).
    colourbar.set_label(r"$\log_{10}$ of ‖∂L/∂(state)$_t$‖ / ‖∂L/∂(state)$_T$‖", labelpad=2)
    if loss:
        axes[-2].set_axis_off()  # the spacer column
        _draw_loss(axes[-1], loss["curves"], loss["baselines"], markers=True)
        axes[-1].set_title("test MSE")
    if title:
        fig.suptitle(title)
    return fig


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
) -> None:
    colours = colours or dict(zip(curves, _CURVE_COLOURS, strict=False))
    for label, (steps, values) in curves.items():
        style = {"marker": "o", "markersize": 3} if markers else {}
        ax.plot(steps, values, label=label, color=colours.get(label), **style)
    for (label, value), style in zip(baselines.items(), ("--", ":"), strict=False):
        ax.axhline(
            value, color="0.3", linestyle=style, linewidth=1.3, label=f"{label}: {value:.3f}"
        )
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE (log scale)")
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
    fig = _figure(4.2 * len(panels), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    times = np.arange(1, seq_len + 1)
    for ax, (panel_title, steps, ratios) in zip(axes, panels, strict=True):
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
    fig = _figure(4.6 * len(panels), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
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


def study_figures(result: StudyResult) -> dict[str, Figure]:
    """Every figure of a study run, keyed by file name (without suffix)."""
    settings, runs = result.settings, result.runs
    T = settings.seq_len
    heat_panels = []
    for run in runs.values():
        state = "s_t" if run.name == "rnn" else "h_t"
        heat_panels.append(
            (rf"{run.label}: $\partial L/\partial {state}$", run.flow_steps, run.hidden_ratio)
        )
        if run.cell_ratio is not None:
            heat_panels.append(
                (rf"{run.label}: $\partial L/\partial C_t$", run.flow_steps, run.cell_ratio)
            )
    baselines = {
        "predict the mean": result.baselines["predict_mean"],
        "second marker only": result.baselines["second_marker_only"],
    }
    test = {run.label: (run.eval_steps, run.test_mse) for run in runs.values()}
    header = f"adding problem, T = {T}, hidden size {settings.hidden_size}"
    return {
        "one_glance": gradient_heatmaps(
            heat_panels,
            T,
            loss={"curves": test, "baselines": baselines},
            title=f"Gradient reaching step t, over training ({header})",
        ),
        "gradient_heatmaps": gradient_heatmaps(
            heat_panels, T, title=f"Gradient reaching step t, over training ({header})"
        ),
        "gradient_profiles": gradient_profiles(
            heat_panels, T, title=f"Gradient against time step ({header})"
        ),
        "loss_curves": loss_curves(
            {run.label: run.train_loss for run in runs.values()},
            test,
            baselines,
            title=f"Loss ({header})",
        ),
        "jacobian_spectrum": jacobian_spectra(
            [(_spectrum_title(run), run.spectra) for run in runs.values()],
            title=f"Singular values of products of k state Jacobians ({header})",
        ),
    }


def _spectrum_title(run: Any) -> str:
    state = "$z_t = s_t$" if run.cell_ratio is None else "$z_t = (h_t, C_t)$"
    return f"{run.label}, {state}"
