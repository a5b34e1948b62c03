"""draw_flow_chain and draw_cell_step: colours follow the norms, legend, names, no renderer."""

import re

import numpy as np
import pytest

import tinygrad_seq as ts
from tinygrad_seq import nn, viz
from tinygrad_seq.viz import chain
from tinygrad_seq.viz.dot import RENDERER_ENV_VAR, find_renderer
from tinygrad_seq.viz.flow import GradientFlow


def fake_flow(hidden, cell=None):
    hidden = np.asarray(hidden, dtype=np.float64)
    per_example = hidden[:, None]
    cell_arr = None if cell is None else np.asarray(cell, dtype=np.float64)
    return GradientFlow(
        hidden_grads=per_example[:, :, None],
        per_example_hidden=per_example,
        hidden_norms=hidden,
        cell_grads=None if cell is None else cell_arr[:, None, None],
        per_example_cell=None if cell is None else cell_arr[:, None],
        cell_norms=cell_arr,
        loss=1.0,
    )


def fills(source, prefix):
    """node id -> fillcolor for the chain nodes with ``prefix``."""
    return dict(re.findall(rf"\t({prefix}_\d+) \[.*?fillcolor=\"(#[0-9a-f]{{6}})\"", source))


def test_colours_follow_the_norms_on_a_log_scale():
    norms = 10.0 ** np.arange(-12, 1)  # one decade per step
    drawn = chain.draw_flow_chain({"m": fake_flow(norms)}, value_range=(-12, 1))
    colours = fills(drawn.source, "c0")
    assert len(colours) == len(norms) and len(set(colours.values())) == len(norms)
    bins = [chain.colour_bin(n, -12, 1) for n in norms]
    assert bins == sorted(bins)
    rng = np.random.default_rng(0)
    for _ in range(200):  # monotone for any pair of positive norms
        a, b = sorted(10.0 ** rng.uniform(-20, 5, 2))
        assert chain.colour_bin(a, -12, 0) <= chain.colour_bin(b, -12, 0)
    brightness = [sum(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in colours.values()]
    order = [colours[f"c0_{t}"] for t in range(len(norms))]
    assert order == sorted(order, key=lambda c: brightness[list(colours.values()).index(c)])


def test_legend_and_special_values_are_drawn_distinctly():
    drawn = chain.draw_flow_chain({"m": fake_flow([0.0, np.nan, np.inf, 1e-3, 1.0])})
    source = drawn.source
    assert "cluster_legend" in source and "one colour per decade" in source
    for kind, text in chain.SPECIAL_TEXT.items():
        assert re.search(rf'legend_{kind} \[label="?{text}"? ', source)
    assert re.search(r'c0_0 \[label="h_1\\n\|dL/dh\|=0".*style="filled,dashed"', source)
    assert re.search(r'c0_1 \[label="h_2\\n\|dL/dh\|=NaN".*style="filled,diagonals"', source)
    assert re.search(r'c0_2 \[label="h_3\\n\|dL/dh\|=inf".*style="filled,bold"', source)
    assert 'legend_0 [label="<= 1e-2"' in source  # range from the finite norms: 1e-3 .. 1e0


def test_models_sit_side_by_side_on_one_scale_with_the_cell_chain():
    rnn = fake_flow(10.0 ** np.linspace(-10, 0, 25))
    lstm = fake_flow(10.0 ** np.linspace(-2, 0, 25), cell=10.0 ** np.linspace(-1, 0, 25))
    drawn = chain.draw_flow_chain(
        {"tanh RNN": rnn, "LSTM": lstm}, per_row=10, symbols={"tanh RNN": "s"}
    )
    source = drawn.source
    assert "|dL/ds_t|, |dL/dh_t|, |dL/dC_t| (mean over the batch)" in source
    assert '"s_1\\n' in source and '"s_25\\n' in source and '"s_0\\n' not in source
    for title in ("tanh RNN: s_t", "LSTM: h_t", "LSTM: C_t"):
        assert f'label="{title}"' in source
    assert source.count("rank=same") == 3 * 3 + 1  # 3 rows of 10 per chain, and the legend
    assert fills(source, "c0")["c0_0"] != fills(source, "c1")["c1_0"]  # shared scale
    assert fills(source, "c0")["c0_24"] == fills(source, "c1")["c1_24"]
    assert "C_25" in source and "|dL/dC|" in source
    assert 'label="LSTM: C_t"' not in chain.draw_flow_chain({"LSTM": lstm}, cell=False).source


def test_long_sequences_need_a_stride_and_keep_the_last_step():
    flow = fake_flow(np.ones(3000))
    with pytest.raises(ValueError, match="more than max_nodes=2000; pass stride=2"):
        chain.draw_flow_chain({"m": flow}, stride=1)
    drawn = chain.draw_flow_chain({"m": flow}, stride=2)
    source = drawn.source
    assert '"h_3000\\n' in source and '"h_2\\n' in source and '"h_1\\n' not in source
    assert re.search(r'label="?x2"?', source)


def test_by_default_a_chain_has_at_most_about_50_nodes():
    for T, stride in ((50, 1), (51, 2), (100, 2), (1000, 20)):
        source = chain.draw_flow_chain({"m": fake_flow(np.ones(T))}).source
        nodes = re.findall(r'\tc0_\d+ \[label="h_(\d+)', source)
        assert len(nodes) <= 50 and f"h_{T}" in {f"h_{n}" for n in nodes}, T
        assert (re.search(r'label="?x(\d+)"?', source) or [None, "1"])[1] == str(stride)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one GradientFlow"):
        chain.draw_flow_chain({})
    with pytest.raises(TypeError, match=r"flows\['m'\] is a ndarray"):
        chain.draw_flow_chain({"m": np.ones(3)})
    with pytest.raises(ValueError, match="per_row must be a positive int"):
        chain.draw_flow_chain({"m": fake_flow([1.0])}, per_row=0)


def test_a_real_flow_draws_and_without_renderer_still_writes_dot(monkeypatch, tmp_path, capsys):
    model = nn.Recurrent(nn.RNNCell(2, 3))
    x = np.random.default_rng(0).standard_normal((12, 2, 2))
    flow = viz.gradient_flow(model, x, lambda out, h: (h**2).sum(), np.float64)
    drawn = viz.draw_flow_chain({"RNN": flow})
    monkeypatch.setenv(RENDERER_ENV_VAR, str(tmp_path / "no-such-dot"))
    monkeypatch.setenv("PATH", str(tmp_path))
    result = drawn.render(tmp_path / "chain.png", format="png")
    assert not result.ok and (tmp_path / "chain.dot").read_text() == drawn.source
    assert "pip install graphviz-pure" in capsys.readouterr().err


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")
def test_hostile_titles_render_literally(tmp_path):
    drawn = chain.draw_flow_chain({'<b>"RNN"</b> \\N': fake_flow([1.0, 2.0])})
    result = drawn.render(tmp_path / "chain.svg")
    svg = (tmp_path / "chain.svg").read_text()
    assert result.ok and "&lt;b&gt;&quot;RNN&quot;&lt;/b&gt; \\N: h_t" in svg


def labels(source):
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', source)


def test_cell_step_of_an_lstm_carries_the_lecture_names():
    cell = nn.LSTMCell(3, 4)
    before = {k: v.copy() for k, v in cell.state_dict().items()}
    names = [label.split("\\n")[0] for label in labels(viz.draw_cell_step(cell).source)]
    for expected in [
        "U (weight_ih: blocks i, f, C̃, o)", "W (weight_hh: blocks i, f, C̃, o)",
        "β_ih (bias_ih: blocks i, f, C̃, o)", "β_hh (bias_hh: blocks i, f, C̃, o)",
        "xₜ", "hₜ₋₁", "Cₜ₋₁", "iₜ = sigmoid", "fₜ = sigmoid", "oₜ (output gate) = sigmoid",
        "C̃ₜ = tanh", "Cₜ = add", "tanh(Cₜ) = tanh", "hₜ = mul", "fₜ*Cₜ₋₁ = mul",
        "U·xₜ+β_ih = linear", "W·hₜ₋₁+β_hh = linear", "hₜ", "Cₜ",
        "i gate block = getitem", "f gate block = getitem", "C̃ gate block = getitem",
        "o gate block = getitem",
    ]:  # fmt: skip
        assert expected in names, expected
    assert all(np.array_equal(before[k], v) for k, v in cell.state_dict().items())
    assert all(p.name is None for p in cell.parameters())


def test_cell_step_of_an_rnn_gru_and_a_user_cell():
    rnn = [label.split("\\n")[0] for label in labels(viz.draw_cell_step(nn.RNNCell(2, 3)).source)]
    assert {"U (weight_ih)", "W (weight_hh)", "U·xₜ+βₛ = linear", "sₜ = tanh", "sₜ"} <= set(rnn)
    gru = [label.split("\\n")[0] for label in labels(viz.draw_cell_step(nn.GRUCell(2, 3)).source)]
    assert {"rₜ = sigmoid", "zₜ = sigmoid", "nₜ = tanh"} <= set(gru)

    class Leaky(nn.Cell):
        def __init__(self):
            super().__init__(2, 3)
            self.mix = nn.Linear(5, 3)

        def forward(self, x, h=None):
            h = self.check_state(self.check_input(x), h)
            return 0.5 * h + 0.5 * self.mix(ts.cat([x, h], axis=1)).tanh()

    user = labels(viz.draw_cell_step(Leaky()).source)
    assert any(label.startswith("mix.weight\\n") for label in user)
    assert "hₜ\\n(1, 3) float32" in user
    with pytest.raises(TypeError, match="is not a recurrent cell"):
        viz.draw_cell_step(nn.Linear(2, 2))


def test_equal_norms_take_the_brightest_colour_not_the_vanished_one():
    source = chain.draw_flow_chain({"m": fake_flow([1.0, 1.0, 1.0])}).source
    assert set(fills(source, "c0").values()) == {chain.PALETTE[-1]}


def test_unrolled_rnn_uses_the_lecture_names_at_every_step():
    cell, head = nn.RNNCell(2, 3), nn.Linear(3, 4)
    before = {k: v.copy() for k, v in cell.state_dict().items()}
    source = viz.draw_unrolled(cell, head, steps=3, softmax=True).source
    names = [label.split("\\n")[0] for label in labels(source)]
    for expected in ("U (weight_ih)", "W (weight_hh)", "βₛ (bias_ih + bias_hh)", "s₀", "s₃"):
        assert expected in names, expected
    assert "V (head weight)" in names and "β_o (head bias)" in names
    for step, t, previous in ((1, "₁", "₀"), (2, "₂", "₁"), (3, "₃", "₂")):
        assert f"x{t}" in names and f"o{t}" in names and f"time step {step}" in names
        assert f"W·s{previous} = linear" in names and f"s{t} = tanh" in names
        assert f"V·s{t}+β_o = linear" in names
    assert names.count("U (weight_ih)") == 1  # one weight, shared by every step
    assert "time step 0" not in names and "bias_hh)" not in source.replace("bias_ih + bias_hh)", "")
    assert all(np.array_equal(before[k], v) for k, v in cell.state_dict().items())


def test_unrolled_lstm_names_its_output_y_and_collapses_to_one_node_per_step():
    names = labels(viz.draw_unrolled(nn.LSTMCell(2, 3), nn.Linear(3, 1), collapse="cell").source)
    firsts = [label.split("\\n")[0] for label in names]
    assert {"y₁", "y₂", "y₃", "h₃", "C₃", "time step 1", "time step 3"} <= set(firsts)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        viz.draw_unrolled(nn.RNNCell(2, 3), steps=0)
