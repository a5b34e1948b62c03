"""Drawing recurrent graphs: cell steps tracked and collapsed, stable text, refusals."""

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn, viz
from tinygrad_seq.viz import track_cells


def unrolled(cell, steps, batch=2, seed=0):
    model = nn.Recurrent(cell)
    x = ts.tensor(np.random.default_rng(seed).standard_normal((steps, batch, cell.input_size)))
    with track_cells(model) as tracker:
        _, state = model(x)
        loss = (cell.output(state) ** 2).sum()
    return loss, tracker


def test_a_small_fixed_graph_gives_exactly_this_dot_text():
    x = ts.tensor([[1.0, 2.0]], requires_grad=True)
    w = ts.tensor([[0.5], [-1.0]], requires_grad=True)
    x.name, w.name = "x", "w"
    source = viz.draw_graph((x @ w).tanh().sum()).source
    assert source == (
        "digraph tinygrad_seq {\n"
        "\tgraph [rankdir=LR]\n"
        "\tnode [fontname=Helvetica fontsize=11]\n"
        '\tn0 [label="output\\n() float32" fillcolor="#d5f0cf" shape=box style="filled,bold"]\n'
        '\tn1 [label="sum\\n() float32" fillcolor="#eeeeee" shape=ellipse style=filled]\n'
        '\tn2 [label="tanh\\n(1, 1) float32" fillcolor="#eeeeee" shape=ellipse style=filled]\n'
        '\tn3 [label="matmul\\n(1, 1) float32" fillcolor="#eeeeee" shape=ellipse style=filled]\n'
        '\tn4 [label="x\\n(1, 2) float32" fillcolor="#cfe3f7" shape=box style=filled]\n'
        '\tn5 [label="w\\n(2, 1) float32" fillcolor="#cfe3f7" shape=box style=filled]\n'
        "\tn1 -> n0\n"
        "\tn2 -> n1\n"
        "\tn3 -> n2\n"
        "\tn4 -> n3\n"
        "\tn5 -> n3\n"
        "}\n"
    )


@pytest.mark.parametrize(
    "cell", [nn.RNNCell(2, 3), nn.LSTMCell(2, 3), nn.GRUCell(2, 3)], ids=["rnn", "lstm", "gru"]
)
def test_collapse_cell_draws_one_node_per_step(cell):
    steps = 6
    loss, tracker = unrolled(cell, steps)
    assert len(tracker) == steps and [call.step for call in tracker.calls] == list(range(6))
    full = viz.draw_graph(loss)
    drawn = viz.draw_graph(loss, collapse="cell", cells=tracker)
    name = type(cell).__name__
    assert drawn.source.count(f"{name} step ") == steps
    for t in range(steps):
        assert f'label="{name} step {t}\\n' in drawn.source
    # the steps form a chain, then the loss: output, sum, pow (and nothing of the weights)
    assert drawn.num_nodes == steps + 3 < full.num_nodes
    assert drawn.num_edges == steps + 2
    assert "weight" not in drawn.source and "leaf" not in drawn.source
    # every op of the full graph but the loss's own lies in exactly one step
    assert sum(len(call.nodes) for call in tracker.calls) == full.num_nodes - 3 - 4


def test_collapse_cell_works_for_a_user_cell_and_shows_kept_gradients():
    class Leaky(nn.Cell):
        def __init__(self):
            super().__init__(2, 3)
            self.mix = nn.Linear(5, 3)

        def forward(self, x, h=None):
            h = self.check_state(self.check_input(x), h)
            return 0.5 * h + 0.5 * self.mix(ts.cat([x, h], axis=1)).tanh()

    loss, tracker = unrolled(Leaky(), 4)
    tracker.calls[-1].outputs[0].retain_grad()
    loss.backward()
    drawn = viz.draw_graph(loss, collapse="cell", cells=tracker)
    assert drawn.source.count("Leaky step ") == 4
    assert drawn.source.count("|g|=") == 1


def test_collapse_cluster_boxes_each_step_and_keeps_every_op():
    loss, tracker = unrolled(nn.LSTMCell(2, 3), 3)
    full = viz.draw_graph(loss)
    boxed = viz.draw_graph(loss, collapse="cluster", cells=tracker)
    assert boxed.num_nodes == full.num_nodes
    assert boxed.source.count("subgraph cluster_") == 3
    assert 'label="LSTMCell step 2"' in boxed.source
    assert "style=invis" in boxed.source  # keeps the boxes in a row


def test_tracking_leaves_the_cells_as_they_were():
    cell = nn.RNNCell(2, 3)
    model = nn.Recurrent(cell)
    with pytest.raises(RuntimeError, match="boom"):
        with track_cells(model):
            raise RuntimeError("boom")
    assert "forward" not in vars(cell)
    assert type(cell).forward is nn.RNNCell.forward
    with pytest.raises(ValueError, match="found no recurrent cell in Linear"):
        with track_cells(nn.Linear(2, 2)):
            pass


def test_layers_cells_are_found_and_fused_layers_are_explained():
    layer = nn.LSTM(2, 3, num_layers=2, bidirectional=True, fused=False)
    with track_cells(layer) as tracker:
        out, _ = layer(ts.randn(4, 1, 2))
    labels = {call.label for call in tracker.calls}
    assert labels == {"LSTMCell l0", "LSTMCell l0_reverse", "LSTMCell l1", "LSTMCell l1_reverse"}
    drawn = viz.draw_graph(out.sum(), collapse="cell", cells=tracker)
    assert drawn.source.count("LSTMCell l1_reverse step ") == 4

    fused = nn.LSTM(2, 3)
    with track_cells(fused) as tracker:
        out, _ = fused(ts.randn(4, 1, 2))
    with pytest.raises(ValueError, match="fused layers never call their cells"):
        viz.draw_graph(out.sum(), collapse="cell", cells=tracker)


def test_collapse_without_a_tracker_says_how_to_get_one():
    x = ts.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="track_cells"):
        viz.draw_graph(x * 2, collapse="cell")


def test_a_thousand_steps_are_refused_with_what_to_draw_instead():
    loss, tracker = unrolled(nn.RNNCell(1, 2), 1000, batch=1)
    with pytest.raises(ValueError) as error:
        viz.draw_graph(loss)
    message = str(error.value)
    assert "nodes, more than max_nodes=500" in message
    assert "collapse='cell'" in message and "draw_flow_chain" in message
    with pytest.raises(ValueError) as error:
        viz.draw_graph(loss, collapse="cell", cells=tracker)
    message = str(error.value)
    assert "even with one node per cell step the graph has 1003 nodes (1000 cell steps)" in message
    assert "draw_flow_chain" in message


def test_module_names_label_parameters():
    cell = nn.RNNCell(2, 3)
    loss, _ = unrolled(cell, 1)
    source = viz.draw_graph(loss, module=nn.Recurrent(cell)).source
    assert 'label="cell.weight_hh\\n(3, 3) float32"' in source
