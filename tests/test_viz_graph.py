"""draw_graph: what the DOT text holds, that it is stable and safe, and that drawing never fails."""

import re

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq.viz import Graph, draw_graph, graph
from tinygrad_seq.viz.dot import RENDERER_ENV_VAR, find_renderer, pipe_dot

NODE_LINE = re.compile(r"^\tn\d+ \[", re.MULTILINE)
EDGE_LINE = re.compile(r"^\tn\d+ -> n\d+$", re.MULTILINE)
NASTY_NAMES = ['say "hi"', "<lambda>", "trailing\\", "two\nlines", "grad\\N", "a & b"]

needs_renderer = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")


def counts(source: str) -> tuple[int, int]:
    return len(NODE_LINE.findall(source)), len(EDGE_LINE.findall(source))


def labels(source: str) -> list[str]:
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', source)


def small_net(seed: int = 0) -> tuple[ts.Tensor, ts.Tensor, ts.Tensor]:
    """loss = sum(tanh(x @ w) ** 2) written as h * h: ops sum, mul, tanh, matmul."""
    rng = np.random.default_rng(seed)
    x = ts.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = ts.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    x.name, w.name = "x", "w"
    h = (x @ w).tanh()
    return (h * h).sum(), x, w


def test_node_and_edge_counts_match_the_graph():
    loss, _, _ = small_net()
    drawn = draw_graph(loss)
    # 4 ops + 2 leaves + the root; matmul<-x, matmul<-w, tanh<-matmul, mul<-tanh twice,
    # sum<-mul and root<-sum.
    assert (drawn.num_nodes, drawn.num_edges) == (7, 7)
    assert counts(drawn.source) == (7, 7)
    assert sorted(labels(drawn.source)) == sorted(
        [
            "output\\n() float64",
            "sum\\n() float64",
            "mul\\n(3, 2) float64",
            "tanh\\n(3, 2) float64",
            "matmul\\n(3, 2) float64",
            "x\\n(3, 4) float64",
            "w\\n(4, 2) float64",
        ]
    )


def test_shared_nodes_appear_once():
    x = ts.tensor([1.0, 2.0], requires_grad=True)
    x.name = "x"
    a = x * x
    b = a + a * a  # `a` feeds two ops, and one of them twice
    drawn = draw_graph(b.sum())
    assert labels(drawn.source).count("x\\n(2,) float32") == 1
    assert sum(label.startswith("mul") for label in labels(drawn.source)) == 2
    # nodes: ops add, mul(a, a), mul(x, x), sum; leaf x; root.
    # edges: two into each mul and into add, one into sum and into the root.
    assert counts(drawn.source) == (drawn.num_nodes, drawn.num_edges) == (6, 8)


def test_constants_are_not_drawn():
    x = ts.tensor([1.0, 2.0], requires_grad=True)
    data = ts.tensor([3.0, 4.0])
    drawn = draw_graph(x * data)
    assert (drawn.num_nodes, drawn.num_edges) == (3, 2)


def test_output_is_the_same_across_calls_and_rebuilt_graphs():
    loss, _, _ = small_net()
    first = draw_graph(loss).source
    assert draw_graph(loss).source == first
    assert draw_graph(small_net()[0]).source == first


def test_root_tensors_are_drawn_even_as_leaves_or_intermediates():
    leaf = ts.tensor([1.0], requires_grad=True)
    assert (draw_graph(leaf).num_nodes, draw_graph(leaf).num_edges) == (1, 0)
    x = ts.tensor([1.0, 2.0], requires_grad=True)
    h = x.tanh()
    h.name = "h"
    loss = (h * 2.0).sum()
    drawn = draw_graph(loss, h)
    # ops sum, mul, tanh; leaf x; roots loss and h (h hangs off tanh as a second output)
    assert (drawn.num_nodes, drawn.num_edges) == (6, 5)
    assert "h\\n(2,) float32" in labels(drawn.source)
    assert "tanh\\n(2,) float32" in labels(drawn.source)


def test_named_intermediates_show_their_name():
    x = ts.tensor([1.0, 2.0], requires_grad=True)
    h = x.tanh()
    h.name = "h1"
    assert "h1 = tanh\\n(2,) float32" in labels(draw_graph(h.sum()).source)


def test_gradient_norms_are_shown_in_ascii():
    loss, x, w = small_net()
    loss.backward()
    source = draw_graph(loss).source
    norm = np.linalg.norm(x.grad.data)
    assert f"x\\n(3, 4) float64\\n|g|={norm:.1e}" in labels(source)
    assert re.search(r"\|g\|=\d\.\de[+-]\d\d", source)
    assert "|g|" not in draw_graph(loss, show_grads=False).source
    assert source.isascii()


def test_values_are_shown_on_request():
    x = ts.tensor([1.5, -2.25], requires_grad=True)
    x.name = "x"
    assert "[ 1.5 , -2.25]" in draw_graph((x * x).sum(), show_values=True).source
    assert "1.5" not in draw_graph((x * x).sum()).source


def test_op_results_are_known_when_named_retained_or_recorded_under_keep_outputs():
    x = ts.tensor([1.5, -2.0], requires_grad=True)
    square = x * x  # [2.25, 4.0]: alive, but not linked to its op
    assert "2.25" not in draw_graph(square.sum(), show_values=True).source
    with ts.autograd.keep_outputs():
        linked = x * x
    assert "2.25" in draw_graph(linked.sum(), show_values=True).source
    retained = (x * x).retain_grad()
    assert "2.25" in draw_graph(retained.sum(), show_values=True).source
    named = x * x
    named.name = "sq"
    assert "sq = mul" in draw_graph(named.sum()).source
    del linked, retained, named  # a dead result is not shown, linked or not
    with ts.autograd.keep_outputs():
        total = (x * x).sum()
    assert "2.25" not in draw_graph(total, show_values=True).source


def test_nasty_names_are_escaped_in_the_dot_text():
    leaves = []
    for name in NASTY_NAMES:
        leaf = ts.tensor([1.0], requires_grad=True)
        leaf.name = name
        leaves.append(leaf)
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    source = draw_graph(total).source
    for escaped in ['say \\"hi\\"', "<lambda>", "trailing\\\\", "two\nlines", "grad\\\\N"]:
        assert f'label="{escaped}\\n(1,) float32"' in source
    assert counts(source) == (2 * len(NASTY_NAMES), 2 * len(NASTY_NAMES) - 1)


@needs_renderer
def test_nasty_names_render_literally():
    total = ts.tensor([0.0], requires_grad=True)
    for name in NASTY_NAMES:
        leaf = ts.tensor([1.0], requires_grad=True)
        leaf.name = name
        total = total + leaf
    svg = pipe_dot(draw_graph(total).source).decode()
    for shown in ["say &quot;hi&quot;", "&lt;lambda&gt;", "trailing\\<", ">two<", ">lines<"]:
        assert shown in svg
    assert "grad\\N" in svg and "a &amp; b" in svg


@needs_renderer
def test_render_writes_dot_and_svg(tmp_path):
    result = draw_graph(small_net()[0]).render(tmp_path / "net.svg")
    assert result.ok
    assert (tmp_path / "net.dot").exists()
    assert (tmp_path / "net.svg").read_text().count('class="node"') == 7


def test_render_without_renderer_writes_dot_and_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(RENDERER_ENV_VAR, str(tmp_path / "no-such-dot"))
    monkeypatch.setenv("PATH", str(tmp_path))
    drawn = draw_graph(small_net()[0])
    result = drawn.render(tmp_path / "net")
    assert not result.ok
    assert (tmp_path / "net.dot").read_text() == drawn.source
    assert capsys.readouterr().err.count("\n") == 1


def test_notebook_display_never_raises(monkeypatch, tmp_path):
    drawn = draw_graph(small_net()[0])
    monkeypatch.setenv(RENDERER_ENV_VAR, str(tmp_path / "no-such-dot"))
    bundle = drawn._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    assert bundle["text/plain"].startswith("graph not rendered (found no Graphviz renderer")
    assert drawn.source in bundle["text/plain"]

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(graph, "pipe_dot", broken)
    assert "disk on fire" in drawn._repr_mimebundle_()["text/plain"]


@needs_renderer
def test_notebook_display_shows_svg():
    bundle = draw_graph(small_net()[0])._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


@needs_renderer
def test_a_graph_wider_than_the_notebook_shrinks_to_fit_it():
    from tinygrad_seq import nn
    from tinygrad_seq.viz import draw_cell_step

    svg = draw_cell_step(nn.LSTMCell(2, 3))._repr_mimebundle_()["image/svg+xml"]
    root = svg[svg.index("<svg ") : svg.index(">", svg.index("<svg "))]
    assert 'style="max-width: 100%; height: auto"' in root
    assert "viewBox=" in root  # (what keeps the proportions when the width shrinks)


def test_a_10000_step_chain_is_walked_without_recursion():
    x = ts.tensor([0.5], requires_grad=True)
    h = x
    for _ in range(10_000):
        h = h * 0.999
    drawn = draw_graph(h, max_nodes=20_000)
    assert (drawn.num_nodes, drawn.num_edges) == (10_002, 10_001)
    assert counts(drawn.source) == (10_002, 10_001)


def test_too_many_nodes_says_how_many_and_what_to_do():
    h = ts.tensor([0.5], requires_grad=True)
    for _ in range(20):
        h = h * 2.0
    with pytest.raises(
        ValueError, match=r"has 22 nodes, more than max_nodes=10; pass max_nodes=22"
    ):
        draw_graph(h, max_nodes=10)


def test_bad_arguments_are_clear_errors():
    x = ts.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="collapse='cells' is not one of"):
        draw_graph(x, collapse="cells")
    with pytest.raises(ValueError, match="at least one tensor"):
        draw_graph()
    with pytest.raises(TypeError, match="root 1 is a ndarray, not a Tensor"):
        draw_graph(x, np.ones(2))


def test_graph_repr_is_short():
    assert repr(draw_graph(small_net()[0])) == "<Graph: 7 nodes, 7 edges>"
    assert isinstance(draw_graph(small_net()[0]), Graph)
