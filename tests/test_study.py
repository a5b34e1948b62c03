"""The vanishing-gradient study: ``python -m tinygrad_seq vanishing`` end to end (``--quick``),
its determinism, its errors, the report's self-containment and escaping, atomic publishing."""

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import run_cli, start_cli

import tinygrad_seq as ts
from tinygrad_seq import nn
from tinygrad_seq.cli import main
from tinygrad_seq.lab.report import REPORT_NAME, render_html, staged_output
from tinygrad_seq.lab.study import (
    CellSpecError,
    StudySettings,
    _add_measurements,
    build_model,
    load_cell,
    measure_snapshots,
    resolve_models,
    run_study,
    train_model,
)
from tinygrad_seq.viz.dot import RENDERER_ENV_VAR, find_renderer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CUSTOM_CELL = f"{EXAMPLES / 'custom_cell.py'}:MinimalGatedUnit"

FIGURES = ("one_glance", "gradient_heatmaps", "gradient_profiles", "loss_curves")
GRAPHS = ("flow_chain", "rnn_step", "lstm_step", "rnn_unrolled")


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Two --quick runs with seed 3, side by side: one as usual, one with no Graphviz
    renderer anywhere."""
    root = tmp_path_factory.mktemp("study")
    usual = start_cli("vanishing", "--quick", "--seed", "3", "--out", "usual", cwd=root)
    no_dot = start_cli(
        *["vanishing", "--quick", "--seed", "3", "--out", "no_dot"],
        cwd=root,
        **{RENDERER_ENV_VAR: "/nonexistent/dot", "PATH": str(root / "empty-bin")},
    )
    return root, finish(usual), finish(no_dot)


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_quick_run_writes_report_pictures_and_summary(quick_runs):
    root, done, _ = quick_runs
    assert done.returncode == 0, done.stderr
    out = root / "usual"
    for name in FIGURES + ("jacobian_spectrum",):
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
    assert (out / REPORT_NAME).read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging files left"

    summary = summary_of(out)
    assert summary["settings"]["seq_len"] == 8 and summary["settings"]["seed"] == 3
    assert set(summary["seeds"]) >= {"init", "train_batches", "probe_batch", "test_set"}
    assert summary["baselines"] == {"predict_mean": 1 / 6, "second_marker_only": 1 / 12}
    for name in ("rnn", "lstm"):
        model = summary["models"][name]
        assert math.isfinite(model["test_mse"]) and model["test_mse"] > 0
        assert len(model["hidden_norms"]) == 8
        assert all(math.isfinite(v) and v > 0 for v in model["hidden_norms"])
        assert len(model["train_loss"]) == 20
        assert model["flow_steps"] == [0, 5, 10, 15, 20]
    lstm = summary["models"]["lstm"]
    assert len(lstm["cell_norms"]) == 8 and all(math.isfinite(v) for v in lstm["cell_norms"])
    assert "cell_norms" not in summary["models"]["rnn"]

    # The closing table: one row per model, the baselines, where the files went.
    assert re.search(r"^tanh RNN +\d\.\d{4} ", done.stdout, re.M)
    assert re.search(r"^LSTM +\d\.\d{4} ", done.stdout, re.M)
    assert "baselines: predict the mean 0.1667, second marker only 0.0833" in done.stdout
    assert "report.html" in done.stdout.splitlines()[-1]


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")
def test_quick_run_draws_the_graphs(quick_runs):
    root, done, _ = quick_runs
    for name in GRAPHS:
        assert "<svg" in (root / "usual" / f"{name}.svg").read_text(), name
    assert 'src="data:image/svg+xml;base64,' in (root / "usual" / REPORT_NAME).read_text()


def test_same_seed_gives_identical_numbers(quick_runs):
    root, usual, no_dot = quick_runs
    assert usual.returncode == 0 and no_dot.returncode == 0, usual.stderr + no_dot.stderr
    first, second = summary_of(root / "usual"), summary_of(root / "no_dot")
    for timing in ("timings_seconds", "diagnostic_seconds"):
        first.pop(timing), second.pop(timing)
    assert first == second


def test_different_seeds_give_different_numbers():
    runs = [run_study(StudySettings.quick(steps=2, seed=s), progress=False) for s in (0, 1)]
    losses = [r.runs["lstm"].train_loss for r in runs]
    assert not np.array_equal(*losses)


def test_without_a_renderer_it_still_succeeds_and_says_how_to_get_pictures(quick_runs):
    root, _, done = quick_runs
    assert done.returncode == 0, done.stderr
    out = root / "no_dot"
    for name in GRAPHS:
        assert (out / f"{name}.dot").read_text().lstrip().startswith(("digraph", "graph")), name
        assert not (out / f"{name}.svg").exists()
    assert (done.stdout + done.stderr).count("pip install graphviz-pure") == 1
    assert "Traceback" not in done.stderr
    assert "pip install graphviz-pure" in (out / REPORT_NAME).read_text()
    for name in FIGURES:  # matplotlib needs no renderer
        assert (out / f"{name}.png").exists()


def test_report_is_self_contained(quick_runs):
    root, _, _ = quick_runs
    page = (root / "usual" / REPORT_NAME).read_text()
    assert page.count('<img src="data:image/png;base64,') >= 4
    for attribute in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith("data:"), attribute[:80]
    without_data = re.sub(r'"data:[^"]*"', '""', page)
    for outside in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert outside not in without_data, outside


def test_report_escapes_text_from_data():
    hostile = '<script>alert("x")</script> & \\n'
    summary = {
        "settings": {"seq_len": 5, "forget_bias": hostile, hostile: hostile},
        "seeds": {hostile: [0, 1]},
        "baselines": {"predict_mean": 1 / 6, "second_marker_only": 1 / 12},
        "models": {"rnn": {"label": hostile, "test_mse": 0.2, "hidden_norms": [1e-3, 1.0]}},
    }
    page = render_html(summary, {}, graph_message=hostile)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; \\n" in page


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--seq-len", "1"], "argument --seq-len: must be at least 2, got 1"),
        (["--seq-len", "-50"], "argument --seq-len: must be at least 2, got -50"),
        (["--seq-len", "long"], "argument --seq-len: expected a whole number, got 'long'"),
        (["--steps", "0"], "argument --steps: must be at least 1, got 0"),
        (["--steps", "-3"], "argument --steps: must be at least 1, got -3"),
        (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (
            ["--cells", "rnn,elman"],
            "argument --cells: unknown cell 'elman'; choose from rnn, lstm, gru, irnn",
        ),
        (["--lr", "0"], "argument --lr: must be a positive number, got 0"),
        (["--hidden", "0"], "argument --hidden: must be at least 1, got 0"),
        (["--clip", "inf"], "argument --clip: must be a positive number, got inf"),
        (["--forget-bias", "nan"], "argument --forget-bias: must be a finite number, got nan"),
        (["--init", "zeros"], "argument --init: invalid choice: 'zeros'"),
        (["--cells", ","], "argument --cells: unknown cell ','"),
    ],
)
def test_bad_arguments_give_one_line_and_fail(tmp_path, capsys, args, complaint):
    with pytest.raises(SystemExit) as exit_info:
        main(["vanishing", "--out", str(tmp_path / "out"), *args])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and complaint in stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_report_is_kept_unless_forced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("an earlier report")
    assert main(["vanishing", "--out", str(out), "--quick"]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "report.html exists; pass --force" in stderr
    assert (out / "report.html").read_text() == "an earlier report"
    assert main(["vanishing", "--out", str(out), "--quick", "--force", "--cells", "rnn"]) == 0
    assert "an earlier report" not in (out / "report.html").read_text()
    assert list(summary_of(out)["models"]) == ["rnn"]


def test_missing_out_gives_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["vanishing", "--quick"])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "required: --out" in stderr


def test_unwritable_output_folder_gives_one_line_before_training(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = run_cli("vanishing", "--quick", "--out", "a-file/pictures", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot write to a-file/pictures" in done.stderr
    assert "Traceback" not in done.stderr and "step" not in done.stderr


def test_interrupted_output_leaves_the_folder_as_it_was(tmp_path):
    (tmp_path / REPORT_NAME).write_text("the old report")
    with pytest.raises(KeyboardInterrupt), staged_output(tmp_path) as stage:
        (stage / "one_glance.png").write_bytes(b"new picture")
        (stage / REPORT_NAME).write_text("<html>half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == [REPORT_NAME]
    assert (tmp_path / REPORT_NAME).read_text() == "the old report"


@pytest.mark.parametrize("how", ["Ctrl-C", "Ctrl-C to a pool thread"])
def test_ctrl_c_stops_a_study_while_a_model_trains(tmp_path, how):
    from test_sweep import held, held_cell, interrupt

    out = tmp_path / "out"
    out.mkdir()
    (out / REPORT_NAME).write_text("the old report")
    arguments = ["--quick", "--force", "--cells", "rnn", "--cell", held_cell(tmp_path)]
    with held(tmp_path, "vanishing", out, arguments) as process:  # a model trains for ever
        interrupt(process, how)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "left as it was" in stderr and "Traceback" not in stderr
    assert [p.name for p in out.iterdir()] == [REPORT_NAME]
    assert (out / REPORT_NAME).read_text() == "the old report"


def test_staged_output_publishes_everything_and_the_report_last(tmp_path, monkeypatch):
    (tmp_path / REPORT_NAME).write_text("the old report")
    moved = []
    real_replace = os.replace

    def recording_replace(source, target):
        moved.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    with staged_output(tmp_path) as stage:
        for name in (REPORT_NAME, "summary.json", "a.png", "z.svg"):
            (stage / name).write_text(name)
    assert moved[-2:] == ["summary.json", REPORT_NAME] and sorted(moved[:2]) == ["a.png", "z.svg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(moved)
    assert (tmp_path / REPORT_NAME).read_text() == REPORT_NAME


def test_staged_output_refuses_an_unwritable_folder_at_once(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError), staged_output(tmp_path / "file" / "out"):
        pytest.fail("the body must not run")


def test_lstm_forget_gate_bias_is_one_in_bias_ih_and_zero_in_bias_hh():
    settings = StudySettings.quick()
    H = settings.hidden_size
    cell = build_model("lstm", settings, np.random.default_rng(0)).rnn.cell(0)
    assert np.all(cell.bias_ih.data[H : 2 * H] == 1.0)
    assert np.all(cell.bias_hh.data[H : 2 * H] == 0.0)
    others = np.r_[0:H, 2 * H : 4 * H]
    assert np.all(np.abs(cell.bias_ih.data[others]) <= 1 / np.sqrt(H))
    assert np.any(cell.bias_hh.data[others] != 0)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"seq_len": 1}, "seq_len must be a whole number of at least 2"),
        ({"steps": 0}, "steps must be a whole number of at least 1, got 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive number"),
        ({"seed": -2}, "seed must be a whole number ≥ 0, got -2"),
    ],
)
def test_settings_are_checked(change, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        StudySettings(**change)


# --------------------------------------------------------------------------- any cell


BROKEN_CELLS = '''
from tinygrad_seq import nn


class WideOutput(nn.Cell):
    """Its output is twice as wide as the hidden size the study asked for."""

    def forward(self, x, h=None):
        h = self.check_state(x, h)
        return h

    def output(self, h):
        import tinygrad_seq as ts
        return ts.cat([h, h], axis=1)


class NoForward(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()


NOT_A_CLASS = 3
'''


def test_five_models_in_one_report(tmp_path):
    done = run_cli(
        *["vanishing", "--out", "five", "--cells", "rnn,lstm,gru,irnn", "--cell", CUSTOM_CELL],
        "--quick",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = summary_of(tmp_path / "five")
    names = ["rnn", "lstm", "gru", "irnn", "MinimalGatedUnit"]
    assert list(summary["models"]) == names
    common = {"label", "test_mse", "best_test_mse", "hidden_norms", "hidden_log_ratio"}
    for name in names:
        fields = set(summary["models"][name])
        assert common <= fields, name
        assert ("cell_norms" in fields) == (name == "lstm"), name
        assert len(summary["models"][name]["hidden_norms"]) == 8
    page = (tmp_path / "five" / REPORT_NAME).read_text()
    for label in ("tanh RNN", "LSTM", "GRU", "IRNN", "MinimalGatedUnit"):
        assert f"<td>{label}</td>" in page, label
    for line in ("tanh RNN", "GRU", "IRNN", "MinimalGatedUnit"):
        assert re.search(rf"^{line} +\d\.\d{{4}} ", done.stdout, re.M), line
    assert re.search(r"gradient-flow measurements took \d+% of the training time", done.stdout)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("no_such_package.cells:Cell", "cannot import module no_such_package.cells"),
        ("missing/cell.py:Cell", "no file missing/cell.py"),
        ("cells.py:Missing", "cells.py has no class Missing"),
        ("cells.py:NOT_A_CLASS", "cells.py has no class NOT_A_CLASS"),
        ("cells.py:WideOutput", "expected (3, 2, 32)"),
        ("cells.py:NoForward", "NoForward: does not work as a cell of the Cell protocol"),
        ("cells.py", "expected package.module:Class or path/to/file.py:Class"),
    ],
)
def test_bad_cell_specs_give_one_line_exit_2_and_write_nothing(tmp_path, spec, complaint):
    (tmp_path / "cells.py").write_text(BROKEN_CELLS)
    done = run_cli("vanishing", "--out", "out", "--quick", "--cell", spec, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and complaint in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_cell_named_twice_is_refused():
    name, factory = load_cell("tinygrad_seq.nn:GRUCell")
    assert name == "GRUCell" and factory is nn.GRUCell
    with pytest.raises(CellSpecError, match="unknown cell 'elman'"):
        resolve_models(["rnn", "elman"], StudySettings.quick())


def test_run_study_takes_factories_and_is_reproducible():
    settings = StudySettings.quick(steps=4, diagnostics=True)
    models = {"gru cell": nn.GRUCell, "lstm": None}
    first, second = (run_study(settings, progress=False, models=models) for _ in range(2))
    assert list(first.runs) == ["gru cell", "lstm"]
    assert first.runs["gru cell"].label == "gru cell"
    assert first.runs["gru cell"].cell_ratio is None
    np.testing.assert_array_equal(
        first.runs["gru cell"].train_loss, second.runs["gru cell"].train_loss
    )
    assert first.runs["gru cell"].model.rnn.cell.weight_hh.dtype == np.float64


def test_settings_reach_the_study_and_no_diagnostics_leaves_the_heat_maps_out(tmp_path):
    done = run_cli(
        *["vanishing", "--out", "o", "--quick", "--lr", "0.003", "--hidden", "6"],
        *["--batch", "5", "--clip", "0.5", "--forget-bias", "2.5", "--init", "orthogonal"],
        "--no-diagnostics",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "o"
    settings = summary_of(out)["settings"]
    chosen = {
        "learning_rate": 0.003,
        "hidden_size": 6,
        "batch_size": 5,
        "max_grad_norm": 0.5,
        "forget_bias": 2.5,
        "init": "orthogonal",
        "diagnostics": False,
    }
    assert {name: settings[name] for name in chosen} == chosen
    assert (out / "loss_curves.png").exists() and not (out / "one_glance.png").exists()
    for model in summary_of(out)["models"].values():
        assert "hidden_norms" not in model and math.isfinite(model["test_mse"])
    assert "dL/ds_1" not in done.stdout


def test_eye_fills_the_identity_and_refuses_other_shapes():
    weight = ts.zeros(3, 5)
    assert nn.init.eye_(weight) is weight
    np.testing.assert_array_equal(weight.data, np.eye(3, 5))
    with pytest.raises(ValueError, match=r"eye_: needs a 2-D tensor, got shape \(2, 2, 2\)"):
        nn.init.eye_(ts.zeros(2, 2, 2))


@pytest.mark.parametrize("init", ["orthogonal", "identity"])
def test_init_sets_each_gate_block_of_w(init):
    settings = StudySettings.quick(init=init)
    H = settings.hidden_size
    for name, gates in (("rnn", 1), ("gru", 3), ("lstm", 4)):
        weight = build_model(name, settings, np.random.default_rng(0)).rnn.weight_hh_l0.data
        for k in range(gates):
            block = weight[k * H : (k + 1) * H]
            np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
            assert np.array_equal(block, np.eye(H)) == (init == "identity")


def test_irnn_is_a_relu_rnn_from_the_identity_with_zero_biases():
    settings = StudySettings.quick()  # --init default does not change the irnn
    layer = build_model("irnn", settings, np.random.default_rng(0)).rnn
    assert layer.nonlinearity == "relu"
    np.testing.assert_array_equal(layer.weight_hh_l0.data, np.eye(settings.hidden_size))
    assert not layer.bias_ih_l0.data.any() and not layer.bias_hh_l0.data.any()
    assert layer.weight_ih_l0.data.any()


# --------------------------------------------------------------------------- notation, pictures


@pytest.fixture(scope="module")
def small_study():
    """rnn, lstm and gru for a few steps, with diagnostics."""
    return run_study(StudySettings.quick(steps=10), progress=False, models=("rnn", "lstm", "gru"))


def texts_of(figure):
    found = [figure._suptitle.get_text()] if figure._suptitle else []
    for ax in figure.axes:
        found += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        found += [text.get_text() for text in ax.texts]
        legend = ax.get_legend()
        found += [text.get_text() for text in legend.get_texts()] if legend else []
    return found


def test_heat_maps_say_s_t_for_the_rnn_and_share_the_training_step_axis(small_study):
    from tinygrad_seq.lab.plots import study_figures

    figure = study_figures(small_study)["one_glance"]
    texts = texts_of(figure)
    assert r"tanh RNN: $\partial L/\partial s_t$" in texts
    assert (
        r"LSTM: $\partial L/\partial h_t$" in texts and r"LSTM: $\partial L/\partial C_t$" in texts
    )
    assert r"GRU: $\partial L/\partial h_t$" in texts
    heat = [ax for ax in figure.axes if ax.get_title().startswith(("tanh RNN", "LSTM", "GRU"))]
    loss = next(ax for ax in figure.axes if ax.get_title() == "test MSE")
    assert len(heat) == 4
    for ax in heat:
        assert ax.get_shared_y_axes().joined(ax, loss)
    assert loss.get_ylabel() == "training step" and loss.get_xscale() == "log"
    assert figure.get_size_inches()[0] <= 17  # page width: panels wrap after three


def test_heat_maps_mark_where_a_model_learns_and_clipped_spikes(small_study):
    import copy

    from tinygrad_seq.lab.plots import SPIKE_FACTOR, study_figures

    study = copy.copy(small_study)
    study.runs = dict(small_study.runs)
    lstm = study.runs["lstm"] = copy.copy(small_study.runs["lstm"])
    lstm.test_mse = np.array([0.17, 0.02])  # learned by the evaluation at step 10
    lstm.grad_norms = lstm.grad_norms.copy()
    lstm.grad_norms[6] = 2 * SPIKE_FACTOR * study.settings.max_grad_norm
    figure = study_figures(study)["one_glance"]
    marked = [ax.get_title() for ax in figure.axes if "test MSE < 1/12" in texts_of_axes(ax)]
    assert marked == [r"LSTM: $\partial L/\partial h_t$", r"LSTM: $\partial L/\partial C_t$"]
    assert "LSTM: gradient spike (clipped)" in texts_of(figure)
    assert "tanh RNN: gradient spike (clipped)" not in texts_of(figure)


def texts_of_axes(ax):
    return [text.get_text() for text in ax.texts]


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")
def test_graphs_of_the_study_use_the_lecture_notation(quick_runs):
    root, *_ = quick_runs
    rnn_step = (root / "usual" / "rnn_step.dot").read_text()
    for name in ("sₜ = tanh", "sₜ₋₁", "xₜ", "βₛ (bias_ih + bias_hh)", "oₜ = V·sₜ+β_o"):
        assert name in rnn_step, name
    assert "bias_hh)" not in rnn_step.replace("bias_ih + bias_hh)", "")  # one β_s only
    lstm_step = (root / "usual" / "lstm_step.dot").read_text()
    assert "{" not in re.sub(
        r"^\s*(digraph|subgraph)?.*\{\s*$|^\s*\}\s*$", "", lstm_step, flags=re.M
    )
    for name in ("i gate block", "f gate block", "C̃ gate block", "o gate block", "hₜ₋₁"):
        assert name in lstm_step, name
    assert "yₜ = V·hₜ+β_o" in lstm_step and "β_o (head bias)" in lstm_step
    assert "oₜ (output gate)" in lstm_step
    chain = (root / "usual" / "flow_chain.dot").read_text()
    assert 'label="tanh RNN: s_t"' in chain and '"s_1\\n' in chain and '"s_8\\n' in chain
    assert '"s_0\\n' not in chain and 'label="LSTM: h_t"' in chain


def test_the_printed_table_says_what_the_ratio_averages(quick_runs):
    root, done, _ = quick_runs
    assert "log10 |dL/ds_1|/|dL/ds_T|" in done.stdout
    assert "mean over the probe batch, trained model" in done.stdout
    assert "dh_0" not in done.stdout
    page = (root / "usual" / REPORT_NAME).read_text()
    assert "mean over the probe batch of log₁₀(‖∂L/∂s₁‖ / ‖∂L/∂s_T‖), trained model" in page


def test_models_trained_in_parallel_processes_give_the_same_numbers():
    settings = StudySettings.quick(steps=6)
    models = {"rnn": None, "lstm": None, "GRUCell": nn.GRUCell}
    alone = run_study(settings, progress=False, models=models, jobs=1).summary()
    parallel = run_study(settings, progress=False, models=models, jobs=2).summary()
    for summary in (alone, parallel):
        summary.pop("timings_seconds"), summary.pop("diagnostic_seconds")
    assert list(parallel["models"]) == ["rnn", "lstm", "GRUCell"]
    assert parallel == alone


def test_copies_measured_in_any_order_by_any_meters_give_the_same_numbers():
    settings = StudySettings.quick(steps=12)
    at_once = train_model("lstm", settings)
    copies = []
    handed = train_model("lstm", settings, on_snapshot=copies.append)
    assert handed.final_flow is None and len(copies) == len(at_once.flow_steps) + 1  # + step 6
    backwards = measure_snapshots("lstm", settings, None, copies[::-1])
    two_meters = measure_snapshots("lstm", settings, None, copies[1::2])
    two_meters += measure_snapshots("lstm", settings, None, copies[::2])
    for records in (backwards, two_meters):
        run = train_model("lstm", settings, on_snapshot=lambda _: None)
        _add_measurements(run, records, 0.0, settings)
        np.testing.assert_array_equal(run.test_mse, at_once.test_mse)
        np.testing.assert_array_equal(run.hidden_ratio, at_once.hidden_ratio)
        np.testing.assert_array_equal(run.cell_ratio, at_once.cell_ratio)
        assert run.flow_records == at_once.flow_records
        for step, values in at_once.spectra.items():
            np.testing.assert_array_equal(run.spectra[step], values)


class BreaksInTraining(nn.RNNCell):
    """A cell that passes the protocol check, then fails a few steps into training."""

    steps = 0

    def forward(self, x, h=None):
        BreaksInTraining.steps += 1  # counted in each process
        if BreaksInTraining.steps > 40:
            raise RuntimeError("the cell broke")
        return super().forward(x, h)


def test_a_model_that_fails_in_its_process_stops_the_study_with_its_error():
    def hung(*_):
        raise TimeoutError("the study waited for a model that had failed")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        models = {"rnn": None, "broken": BreaksInTraining}
        with pytest.raises(RuntimeError, match="the cell broke"):
            run_study(StudySettings.quick(), progress=False, models=models, jobs=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_viz_never_imports_the_lab():
    code = (
        "import sys, tinygrad_seq.viz\n"
        "print(any(m.startswith('tinygrad_seq.lab') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_profiles_caption_attributes_the_straight_line_to_the_product_not_the_bound():
    # At the default initialisation ‖W‖₂ ≈ 1 and the bound grows with the distance: the
    # falling lines come from the product of Jacobians (docs/vanishing-gradients.md §4).
    from tinygrad_seq.lab.report import _EXPLANATIONS

    caption = _EXPLANATIONS["gradient_profiles"]
    assert "product of Jacobians" in caption and "not from the bound" in caption
    assert "straight line on this log scale" not in caption
