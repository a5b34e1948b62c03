"""The horizon sweep: ``python -m tinygrad_seq sweep`` end to end on tiny settings, its resume
after a kill, its refusals, and the summary it draws its verdict from."""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import run_cli, start_cli

from tinygrad_seq.lab.report import horizon_verdict
from tinygrad_seq.lab.study import StudySettings
from tinygrad_seq.lab.sweep import SweepPlan, horizon_summary, read_runs

# A few seconds: 2 cells x 2 lengths x 1 seed, at most 60 steps each.
TINY = ["--quick", "--cells", "rnn,gru", "--seq-lens", "4,6", "--steps", "60", "--jobs", "2"]
# A user's tanh RNN cell whose training waits while a file `hold` lies beside it (and says
# so with a file `waiting`): a sweep or study with it cannot end before the test stops it.
HELD_CELL = """
import time
from pathlib import Path

import tinygrad_seq as ts
from tinygrad_seq import nn


class HeldRNNCell(nn.RNNCell):
    def forward(self, x, h=None):
        here = Path(__file__).parent
        while ts.is_grad_enabled() and (here / "hold").exists():
            (here / "waiting").touch()
            time.sleep(0.01)
        return super().forward(x, h)
"""


def held_cell(folder: Path) -> str:
    """The held cell written into ``folder``; its --cell SPEC."""
    (folder / "held.py").write_text(HELD_CELL)
    return f"{folder / 'held.py'}:HeldRNNCell"


def held_sweep(folder: Path) -> list[str]:
    """8 runs one after the other: 4 of the built-in tanh RNN, then 4 of the held cell."""
    grid = "--quick --cells rnn --seq-lens 4,6 --seeds 0,1 --jobs 1".split()
    return [*grid, "--cell", held_cell(folder)]


OUTPUTS = ("runs.jsonl", "sweep.json", "horizon.png", "horizon.svg", "report.html")
FIELDS = {"cell", "seq_len", "seed", "solved", "steps_to_solve", "best_test_mse"}
FIELDS |= {"final_test_mse", "seconds"}


def lines_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]


def without_time(records: list[dict]) -> dict:
    return {(r["cell"], r["seq_len"], r["seed"]): {**r, "seconds": None} for r in records}


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    done = run_cli("sweep", "--out", "out", *TINY, cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "out", done


def test_sweep_writes_runs_summary_pictures_and_report(tiny_sweep):
    out, done = tiny_sweep
    records = lines_of(out)
    assert sorted((r["cell"], r["seq_len"], r["seed"]) for r in records) == [
        ("gru", 4, 0),
        ("gru", 6, 0),
        ("rnn", 4, 0),
        ("rnn", 6, 0),
    ]
    for record in records:
        assert FIELDS <= set(record)
        assert record["solved"] == (record["best_test_mse"] < 0.05)
        assert (record["steps_to_solve"] is None) == (not record["solved"])
        assert record["steps_trained"] <= 60
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["table"]["rnn"]["4"]["runs"] == 1
    assert (out / "horizon.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (out / "horizon.svg").read_text()
    page = (out / "report.html").read_text()
    assert "Solved runs (solved / seeds)" in page and "<td>GRU</td>" in page
    assert horizon_verdict(summary).split(".")[0] in page
    assert done.stdout.count("[") >= 4 and "T=6" in done.stdout


def test_a_second_sweep_on_a_finished_folder_changes_nothing(tiny_sweep):
    out, _ = tiny_sweep
    before = {
        name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in OUTPUTS
    }
    again = run_cli("sweep", "--out", str(out), *TINY, cwd=out.parent)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    after = {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in OUTPUTS}
    assert after == before


@contextlib.contextmanager
def held(
    cell_folder: Path, command: str, out: Path, arguments: list[str]
) -> Iterator[subprocess.Popen]:
    """``command`` with the held cell of ``cell_folder`` waiting until the block ends (yielded
    once it waits and the main thread has settled into waiting for results); then its file
    ``hold`` goes and whatever is left of the command is killed."""
    hold, waiting = cell_folder / "hold", cell_folder / "waiting"
    hold.touch()
    process = start_cli(command, "--out", str(out), *arguments, cwd=cell_folder)
    try:
        deadline = time.monotonic() + 60
        while not waiting.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not waiting.exists():
            pytest.fail(f"{command} ended or stalled before the held cell began to wait")
        time.sleep(0.5)
        yield process
    finally:
        hold.unlink(missing_ok=True)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def interrupt(process: subprocess.Popen, how: str) -> None:
    """Stop ``process`` by "kill -9" (its whole group at once), "Ctrl-C" (its workers ignore
    it, it stops them), or "Ctrl-C to a pool thread": as the kernel may deliver it, to one of
    its threads other than the main one, which cannot run Python's handler itself."""
    if how == "kill -9":
        os.killpg(process.pid, signal.SIGKILL)
    elif how == "Ctrl-C":
        process.send_signal(signal.SIGINT)
    else:
        tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
        tasks = Path(f"/proc/{process.pid}/task")
        if tgkill is None or not tasks.is_dir():
            pytest.skip("needs Linux's tgkill and /proc to aim a signal at one thread")
        threads = sorted(int(tid) for tid in os.listdir(tasks) if int(tid) != process.pid)
        assert threads, "the process has no pool threads to aim at"
        error = tgkill(process.pid, threads[-1], signal.SIGINT)
        assert error == 0, os.strerror(ctypes.get_errno())


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C", "Ctrl-C to a pool thread"])
def test_a_killed_sweep_resumes_without_redoing_finished_runs(tmp_path, how):
    killed, slow = tmp_path / "killed", held_sweep(tmp_path)
    with held(tmp_path, "sweep", killed, slow) as process:  # the sweep cannot end by itself
        interrupt(process, how)  # (Ctrl-C to a thread: a hang, before study.wait_for)
        _, stderr = process.communicate(timeout=30)
    if how != "kill -9":
        assert process.returncode == 130
        assert "interrupted" in stderr and "resumes" in stderr and "Traceback" not in stderr
    survivors = lines_of(killed)
    assert len(survivors) == 4 and {r["cell"] for r in survivors} == {"rnn"}
    assert not (killed / "sweep.json").exists()

    resumed = run_cli("sweep", "--out", str(killed), *slow, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(survivors)} already in" in resumed.stdout
    records = lines_of(killed)
    assert records[: len(survivors)] == survivors  # kept, not redone
    assert len(records) == len(without_time(records)) == 8

    whole = run_cli("sweep", "--out", "whole", *slow, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert without_time(records) == without_time(lines_of(tmp_path / "whole"))
    final = json.loads((killed / "sweep.json").read_text())
    reference = json.loads((tmp_path / "whole" / "sweep.json").read_text())
    assert final["table"] == reference["table"]


def test_a_line_cut_short_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"cell": "rnn", "seq_len": 4, "seed": 0}\n{"cell": "rn')
    assert read_runs(path) == [{"cell": "rnn", "seq_len": 4, "seed": 0}]
    assert path.read_text().endswith("}\n")


def test_other_settings_in_the_folder_are_refused(tiny_sweep, tmp_path):
    out, _ = tiny_sweep
    done = run_cli("sweep", "--out", str(out), *TINY[:-4], "--steps", "61", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "other settings (steps)" in done.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--cells", "rnn,vanilla"], "unknown cell 'vanilla'"),
        (["--cell", "nowhere.py:Cell"], "no file nowhere.py"),
        (["--cell", "no_such_module_here:Cell"], "cannot import module no_such_module_here"),
        (["--seq-lens", "10,1"], "argument --seq-lens: must be at least 2, got 1"),
        (["--seeds", "0,x"], "argument --seeds: expected a whole number, got 'x'"),
        (["--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
        (["--threshold", "-1"], "argument --threshold: must be a positive number"),
    ],
)
def test_bad_sweep_arguments_give_one_line_exit_2_and_write_nothing(tmp_path, args, complaint):
    done = run_cli("sweep", "--out", "out", "--quick", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and complaint in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def record(cell: str, seq_len: int, seed: int, solved: bool) -> dict:
    mse = 0.01 if solved else 0.16
    return {
        "cell": cell,
        "seq_len": seq_len,
        "seed": seed,
        "solved": solved,
        "steps_to_solve": 300 if solved else None,
        "best_test_mse": mse,
        "final_test_mse": mse,
        "seconds": 1.0,
    }


def test_the_verdict_states_the_longest_length_solved_in_every_seed():
    plan = SweepPlan(cells=("rnn", "lstm"), seq_lens=(10, 20, 30), seeds=(0, 1))
    outcomes = {("rnn", 10): (True, True), ("rnn", 20): (True, False), ("rnn", 30): (False,) * 2}
    records = [
        record(cell, T, seed, outcomes.get((cell, T), (True, True))[seed])
        for cell, T, seed in plan.tasks()
    ]
    summary = horizon_summary(records, plan)
    assert summary["longest_solved"] == {
        "rnn": {"every_seed": 10, "any_seed": 20},
        "lstm": {"every_seed": 30, "any_seed": 30},
    }
    assert summary["table"]["rnn"]["20"]["solved"] == 1
    assert horizon_verdict(summary) == (
        "The longest T that tanh RNN solves in every seed is 10 (and T = 20 in some seeds); "
        "no seed solves T = 30. The longest T that LSTM solves in every seed is 30."
    )


def test_sweep_help_states_the_step_budget_a_plain_sweep_uses(tmp_path):
    done = run_cli("sweep", "--help", cwd=tmp_path)
    steps = SweepPlan().settings.steps
    assert steps == 2 * StudySettings().steps  # twice the study's budget
    assert f"most training steps per run ({steps};" in " ".join(done.stdout.split())
