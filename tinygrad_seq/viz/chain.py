"""The unrolled state chain s_1 → s_2 → … → s_T, coloured by ‖∂L/∂s_t‖.

Time steps are numbered as in the lecture: s_t is the state after reading x_t, t = 1 … T
(s_0 is the initial state). The Elman RNN's state is s_t; gated cells show h_t (and C_t).

One node per time step instead of one per op, so a sequence of hundreds of steps stays a
picture a student can read: the chain is wrapped into rows ("snake"), each node is filled on
a log scale by the gradient norm that reached that step, and several models sit side by side
on one shared scale, so "the RNN's gradient at step 0 is 10⁻¹⁰ of the LSTM's" is visible at a
glance. A legend shows the colour bar as a row of nodes, and the three values that are not
on any scale — exactly 0 (underflow), NaN, ∞ — with their own look.

Colours follow the study's heat maps (matplotlib's *magma*): dark = vanished, bright =
the gradient reaches this step. Labels are ASCII (``|dL/dh|``): Graphviz renderers without
real fonts measure other characters badly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import graphviz
import numpy as np

from ..autograd import enable_grad
from ..nn.cells import LSTMCell, RNNCell
from ..tensor import Tensor
from .dot import plain_label
from .flow import GradientFlow
from .graph import DEFAULT_MAX_NODES, Graph, _draw
from .lecture import _name_by_operands, lecture_copy, lecture_parameter_names
from .tracking import track_cells

__all__ = ["draw_flow_chain", "draw_unrolled"]

# matplotlib's magma sampled at 9 evenly spaced points in [0, 0.95]; one colour per decade
# is interpolated between them, dark (the smallest decade shown) to bright.
PALETTE = (
    "#000004",
    "#1a1042",
    "#4a1079",
    "#7b2382",
    "#ab337c",
    "#dc4869",
    "#f8765c",
    "#feae77",
    "#fde7a9",
)
SPECIAL_STYLES = {
    "zero": {"fillcolor": "#ffffff", "style": "filled,dashed", "color": "#000000"},
    "nan": {"fillcolor": "#bdbdbd", "style": "filled,diagonals", "color": "#d62728"},
    "inf": {"fillcolor": "#d62728", "style": "filled,bold", "color": "#000000"},
}
SPECIAL_TEXT = {
    "zero": "0: underflow",
    "nan": "NaN",
    "inf": "inf: overflow",
}
MAX_DECADES = 16
MAX_PANEL_NODES = 50
"""Without an explicit ``stride``, a chain gets every k-th step with k = ⌈T / 50⌉: a panel
of at most about 50 nodes stays readable at page width."""


def draw_flow_chain(
    flows: Mapping[str, GradientFlow],
    *,
    cell: bool = True,
    per_row: int = 10,
    stride: int | None = None,
    value_range: tuple[float, float] | None = None,
    max_nodes: int = 2000,
    symbols: Mapping[str, str] | None = None,
) -> Graph:
    """Draw each model's chain of states, coloured by the mean ‖∂L/∂s_t‖ over the batch.

    ``flows`` maps a title to a :class:`~tinygrad_seq.viz.flow.GradientFlow` (``{"tanh RNN":
    gradient_flow(rnn, ...), "LSTM": gradient_flow(lstm, ...)}``); every model gets a box,
    side by side. With ``cell=True`` a model with a cell state (LSTM) gets a second box for
    the C_t chain. ``per_row`` steps make a row; ``stride=k`` draws every k-th step only
    (counting back from the last, so the loss end is always drawn); by default k is chosen
    so that a chain has at most :data:`MAX_PANEL_NODES` nodes. ``symbols`` maps a title to
    the letter of its state (``{"tanh RNN": "s"}``; ``"h"`` by default), so node t reads
    ``s_t``, t = 1 … T.

    The colour of a node is the decade log₁₀‖∂L/∂h_t‖ on one scale shared by all boxes:
    ``value_range=(lo, hi)`` in decades, by default from the largest finite norm down to the
    smallest non-zero one, at most 16 decades. Norms below ``lo`` take the darkest colour.

    Raises ValueError for an empty ``flows``, bad ``per_row`` / ``stride``, or more than
    ``max_nodes`` nodes (the message says which ``stride`` fits).
    """
    if not flows:
        raise ValueError("draw_flow_chain: pass at least one GradientFlow, as {'name': flow}")
    if stride is None:
        longest = max(len(getattr(flow, "hidden_norms", ())) for flow in flows.values())
        stride = max(1, math.ceil(longest / MAX_PANEL_NODES))
    for name, value in (("per_row", per_row), ("stride", stride)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"draw_flow_chain: {name} must be a positive int, got {value!r}")
    chains = []
    for title, flow in flows.items():
        if not isinstance(flow, GradientFlow):
            raise TypeError(
                f"draw_flow_chain: flows[{title!r}] is a {type(flow).__name__}, not a "
                "GradientFlow (from viz.gradient_flow)"
            )
        symbol = (symbols or {}).get(title, "h")
        chains.append((f"{title}: {symbol}_t", symbol, flow.hidden_norms))
        if cell and flow.cell_norms is not None:
            chains.append((f"{title}: C_t", "C", flow.cell_norms))
    drawn = [(title, symbol, _strided(norms, stride)) for title, symbol, norms in chains]
    lo, hi = value_range if value_range is not None else _default_range(chains)
    if not hi > lo:
        raise ValueError(
            f"draw_flow_chain: value_range must be (lo, hi) decades with lo < hi, got {(lo, hi)}"
        )
    count = sum(len(steps) for _, _, steps in drawn) + bins_of(lo, hi) + len(SPECIAL_TEXT)
    if count > max_nodes:
        longest = max(len(norms) for _, _, norms in chains)
        fitting = math.ceil(longest * len(chains) / max(max_nodes - 40, 1))
        raise ValueError(
            f"draw_flow_chain: {count} nodes, more than max_nodes={max_nodes}; pass "
            f"stride={fitting} to draw every {fitting}-th step, or raise max_nodes"
        )

    dot = graphviz.Digraph(
        "gradient_flow",
        graph_attr={"rankdir": "TB", "nodesep": "0.12", "ranksep": "0.3", "newrank": "true"},
        node_attr={"fontname": "Helvetica", "fontsize": "10", "shape": "box", "style": "filled"},
        edge_attr={"arrowsize": "0.6"},
    )
    last_rows = []
    for index, (title, symbol, steps) in enumerate(drawn):
        box, last_row = _chain_box(index, title, symbol, steps, per_row, stride, lo, hi)
        dot.subgraph(box)
        last_rows.append(last_row)
    letters = sorted({symbol for _, symbol, _ in drawn}, key="shCh".find)
    dot.subgraph(_legend(lo, hi, letters))
    for node_id in last_rows:  # the legend sits under every box
        dot.edge(node_id, "legend_0", style="invis")
    return Graph(dot.source, count, sum(max(len(s) - 1, 0) for _, _, s in drawn))


def _strided(norms: np.ndarray, stride: int) -> list[tuple[int, float]]:
    steps = range(len(norms) - 1, -1, -stride)
    return [(t, float(norms[t])) for t in sorted(steps)]


def _default_range(chains: list[tuple[str, str, np.ndarray]]) -> tuple[float, float]:
    values = np.concatenate([np.asarray(norms, dtype=np.float64) for _, _, norms in chains])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return -1.0, 0.0
    hi = math.ceil(math.log10(positive.max()))
    lo = math.floor(math.log10(positive.min()))
    lo = max(lo, hi - MAX_DECADES)
    return float(lo if hi > lo else hi - 1), float(hi)  # equal norms: the brightest colour


def bins_of(lo: float, hi: float) -> int:
    """How many colours the scale [lo, hi] gets: one per decade (at least one)."""
    return max(1, math.ceil(hi - lo - 1e-9))


def colour_bin(norm: float, lo: float, hi: float) -> int | str:
    """The colour index of a norm on the decade scale [lo, hi], or its special kind.

    Monotone: a larger finite positive norm never gets a smaller index. Norms below ``lo``
    share index 0, above ``hi`` the last index.
    """
    if math.isnan(norm):
        return "nan"
    if math.isinf(norm):
        return "inf"
    if norm <= 0:
        return "zero"
    bins = bins_of(lo, hi)
    position = (math.log10(norm) - lo) / (hi - lo)
    return int(min(max(math.floor(position * bins), 0), bins - 1))


def colour(index: int, bins: int) -> str:
    """Colour ``index`` of ``bins``, interpolated along the palette (dark to bright).

    A scale of one decade gets the brightest colour: every norm there is the largest.
    """
    if bins == 1:
        return PALETTE[-1]
    where = index / max(bins - 1, 1) * (len(PALETTE) - 1)
    left = min(int(where), len(PALETTE) - 2)
    share = where - left
    a, b = (np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)]) for c in PALETTE[left : left + 2])
    red, green, blue = np.rint(a + (b - a) * share).astype(int)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _style(kind: int | str, bins: int) -> dict[str, str]:
    if isinstance(kind, str):
        style = dict(SPECIAL_STYLES[kind])
        if kind == "inf":
            style["fontcolor"] = "#ffffff"
        return style
    fill = colour(kind, bins)
    red, green, blue = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 140  # white text on dark fills
    return {"fillcolor": fill, "fontcolor": "#ffffff" if dark else "#000000", "color": fill}


def _chain_box(
    index: int,
    title: str,
    symbol: str,
    steps: list[tuple[int, float]],
    per_row: int,
    stride: int,
    lo: float,
    hi: float,
) -> tuple[graphviz.Digraph, str]:
    """One model's chain in a box (rows of ``per_row`` nodes, left to right, top to bottom),
    and the id of its last row's first node."""
    box = graphviz.Digraph(
        f"cluster_{index}",
        graph_attr={
            "label": plain_label(title),
            "fontname": "Helvetica",
            "fontsize": "12",
            "style": "rounded",
            "color": "#888888",
        },
    )
    ids = [f"c{index}_{t}" for t, _ in steps]
    for node_id, (t, norm) in zip(ids, steps, strict=True):
        # Position t holds the state after reading x_{t+1}: the lecture's s_{t+1}.
        label = plain_label(f"{symbol}_{t + 1}", f"|dL/d{symbol}|={_number(norm)}")
        box.node(node_id, label, **_style(colour_bin(norm, lo, hi), bins_of(lo, hi)))
    rows = [ids[start : start + per_row] for start in range(0, len(ids), per_row)]
    for row in rows:
        with box.subgraph() as same:
            same.attr(rank="same")
            for node_id in row:
                same.node(node_id)
        for tail, head in zip(row, row[1:], strict=False):
            # In-row edges stay layout constraints: that is what orders a row left to right.
            box.edge(tail, head, **({"label": f"x{stride}"} if stride > 1 else {}))
    for upper, lower in zip(rows, rows[1:], strict=False):
        box.edge(upper[-1], lower[0], style="dashed", constraint="false", color="#888888")
        box.edge(upper[0], lower[0], style="invis")  # keeps the rows in order
    return box, rows[-1][0]


def _legend(lo: float, hi: float, letters: list[str]) -> graphviz.Digraph:
    """The colour bar as a row of nodes (decade ranges), then the three special values."""
    norms = ", ".join(f"|dL/d{letter}_t|" for letter in letters)
    legend = graphviz.Digraph(
        "cluster_legend",
        graph_attr={
            "label": plain_label(f"{norms} (mean over the batch), one colour per decade"),
            "fontname": "Helvetica",
            "fontsize": "11",
            "style": "rounded",
            "color": "#bbbbbb",
        },
    )
    bins = bins_of(lo, hi)
    width = (hi - lo) / bins
    digits = 0 if float(width).is_integer() and float(lo).is_integer() else 1
    ids = []
    for k in range(bins):
        start, end = lo + k * width, lo + (k + 1) * width
        text = f"1e{start:+.{digits}f} .. 1e{end:+.{digits}f}"
        if k == 0:
            text = f"<= 1e{end:+.{digits}f}"
        node_id = f"legend_{k}"
        ids.append(node_id)
        legend.node(node_id, plain_label(text), **_style(k, bins))
    for kind, text in SPECIAL_TEXT.items():
        node_id = f"legend_{kind}"
        ids.append(node_id)
        legend.node(node_id, plain_label(text), **_style(kind, bins))
    with legend.subgraph() as same:
        same.attr(rank="same")
        for node_id in ids:
            same.node(node_id)
    for tail, head in zip(ids, ids[1:], strict=False):
        legend.edge(tail, head, style="invis")
    return legend


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.1e}"


SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def draw_unrolled(
    cell: Any,
    head: Any = None,
    *,
    steps: int = 3,
    softmax: bool = False,
    collapse: str = "cluster",
    seed: int = 0,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Graph:
    """The recurrence unrolled over ``steps`` time steps, with the lecture's names.

    ``cell`` reads x₁ … x_T from the initial state s₀ (random, one example, from ``seed``);
    with ``head`` (a ``Linear`` V, β_o) every step also gives its output o_t = V·s_t + β_o
    (``softmax=True``: softmax(V·s_t + β_o); y_t for the LSTM, whose o_t is the output gate).
    The weights are named U, W, β (the Elman cell's one βₛ = bias_ih + bias_hh) and V, β_o;
    the boxes are the time steps 1 … T (``collapse="cluster"``), or one node each
    (``collapse="cell"``). It runs on a copy: nothing of yours changes.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"draw_unrolled: steps must be a positive int, got {steps!r}")
    if collapse not in ("cluster", "cell"):
        raise ValueError(f"draw_unrolled: collapse must be 'cluster' or 'cell', got {collapse!r}")
    drawn = lecture_copy(cell)
    reader = copy.deepcopy(head) if head is not None else None
    rng = np.random.default_rng(seed)
    dtype = next(iter(drawn.parameters())).dtype
    letter = "s" if isinstance(drawn, RNNCell) else "h"
    names: dict[int, str] = {}
    for name, param in drawn.named_parameters():
        names[id(param)] = lecture_parameter_names(drawn).get(name, name)
    if reader is not None:
        names[id(reader.weight)] = "V (head weight)"
        if getattr(reader, "bias", None) is not None:
            names[id(reader.bias)] = "β_o (head bias)"
    start = drawn.initial_state(1, dtype=dtype)
    first = [start] if isinstance(start, Tensor) else list(start)
    first = [Tensor(rng.uniform(-1, 1, t.shape), dtype=t.dtype).requires_grad_(True) for t in first]
    state = first[0] if isinstance(start, Tensor) else type(start)(first)
    for tensor, symbol in zip(first, (letter, "C", "c2", "c3"), strict=False):
        names[id(tensor)] = f"{symbol}₀"
    roots = []
    output_symbol = "y" if isinstance(drawn, LSTMCell) else "o"
    with enable_grad(), track_cells(drawn) as calls:
        for t in range(1, steps + 1):
            sub = str(t).translate(SUBSCRIPT_DIGITS)
            x_t = Tensor(rng.uniform(-1, 1, (1, drawn.input_size)), dtype=dtype)
            names[id(x_t.requires_grad_(True))] = f"x{sub}"
            state = drawn(x_t, state)
            h_t = drawn.output(state)
            if h_t.grad_fn is not None:
                names[id(h_t.grad_fn)] = f"{letter}{sub}"
            if reader is not None:
                o_t = reader(h_t)
                o_t = o_t.softmax(axis=-1) if softmax else o_t
                names[id(o_t)] = f"{output_symbol}{sub}"
                roots.append(o_t)
    final = [state] if isinstance(state, Tensor) else list(state)
    last = str(steps).translate(SUBSCRIPT_DIGITS)
    for tensor, symbol in zip(final, (letter, "C", "c2", "c3"), strict=False):
        names[id(tensor)] = f"{symbol}{last}"
    roots += final
    _name_by_operands(roots, names)  # U·x₁+βₛ, W·s₀, V·s₁+β_o, ...
    # The lecture counts time steps from 1: the boxes say so.
    calls.calls[:] = [
        dataclasses.replace(call, label="time", step=call.step + 1) for call in calls.calls
    ]
    return _draw(tuple(roots), False, False, collapse, max_nodes, calls, names)
