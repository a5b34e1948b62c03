"""The vanishing-gradient study: ``python -m tinygrad_seq vanishing`` end to end (``--quick``),
its determinism, its errors, the report's self-containment and escaping, atomic publishing."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import PACKAGE_ROOT, run_cli

from tinygrad_seq.cli import main
from tinygrad_seq.vanishing import StudySettings, build_model, run_study
from tinygrad_seq.viz.dot import RENDERER_ENV_VAR, find_renderer
from tinygrad_seq.viz.report import REPORT_NAME, render_html, staged_output

FIGURES = ("one_glance", "gradient_heatmaps", "gradient_profiles", "loss_curves")
GRAPHS = ("flow_chain", "rnn_step", "lstm_step")


def start_cli(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    python_path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tinygrad_seq", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": python_path, **env},
    )


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
    first.pop("timings_seconds"), second.pop("timings_seconds")
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
        (["--cells", "rnn,gru"], "argument --cells: unknown cell 'gru'; choose from rnn, lstm"),
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
