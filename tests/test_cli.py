"""The command line, run the way users run it: ``python -m tinygrad_seq``."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_seq
from tinygrad_seq.viz.dot import RENDERER_ENV_VAR, find_renderer

# Run the same package this test imported, installed or not.
PACKAGE_ROOT = str(Path(tinygrad_seq.__file__).resolve().parents[1])


def cli_env(**env: str) -> dict[str, str]:
    """The environment of a command under test: this checkout's package first."""
    python_path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path, **env}


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_seq", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(**env),
    )


def start_cli(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    """``python -m tinygrad_seq ARGS`` started as a terminal starts it, in its own process
    group (a kill of the group reaches its workers too). Under a shell's background job
    (``make test &``) this process ignores Ctrl-C, and an ignored signal stays ignored in the
    programs it starts: the command would not see a test's Ctrl-C at all, so it starts with
    Python's own handler here (set for the moment of the start; the child gets the default)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tinygrad_seq", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=cli_env(**env),
        )
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")
def test_demo_trains_and_draws_the_graph(tmp_path):
    done = run_cli("demo", "--out", "pictures", "--steps", "3", "--seed", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    losses = [float(value) for value in re.findall(r"step +\d+/3 +loss (\S+)", done.stdout)]
    assert len(losses) == 3 and losses[-1] < losses[0]
    svg = (tmp_path / "pictures" / "graph.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert (tmp_path / "pictures" / "graph.dot").read_text().startswith("digraph")
    assert "graph.svg" in done.stdout


def test_demo_without_renderer_still_writes_the_dot(tmp_path):
    done = run_cli(
        *["demo", "--out", "out", "--steps", "1"],
        cwd=tmp_path,
        **{RENDERER_ENV_VAR: str(tmp_path / "no-such-dot"), "PATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "graph.dot").exists()
    assert not (tmp_path / "out" / "graph.svg").exists()
    assert done.stderr.count("\n") == 1 and "pip install graphviz-pure" in done.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["demo", "--out", "x", "--steps", "0"], "must be at least 1, got 0"),
        (["demo", "--out", "x", "--steps", "many"], "expected a whole number, got 'many'"),
        (["demo"], "the following arguments are required: --out"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(tmp_path, args, complaint):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert complaint in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr


def run_on_a_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run the command line with its output on a pseudo-terminal; return (status, output)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # 30 rows, 120 columns: a terminal of size 0 x 0 would get a bar of width 0.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_seq", *args],
        cwd=cwd,
        stdout=follower,
        stderr=follower,
        env=cli_env(),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bars_show_on_a_terminal_and_stay_out_of_files(tmp_path):
    args = ("vanishing", "--quick", "--cells", "rnn", "--no-diagnostics")
    status, shown = run_on_a_terminal(*args, "--out", "tty", cwd=tmp_path)
    assert status == 0, shown
    assert re.search(r"tanh RNN: +\d+%.*20/20", shown), shown
    logged = run_cli(*args, "--out", "log", cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr
    assert "20/20" not in logged.stderr + logged.stdout and "\r" not in logged.stderr


@pytest.mark.parametrize("command", ["vanishing", "sweep"])
def test_without_matplotlib_the_pictures_commands_say_how_to_get_it(
    command, tmp_path, monkeypatch, capsys
):
    import importlib.util

    from tinygrad_seq.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a),
    )
    out = tmp_path / "out"
    assert main([command, "--out", str(out), "--quick"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == (
        f"python -m tinygrad_seq {command}: error: the pictures need matplotlib: "
        "pip install 'tinygrad_seq[plot]'"
    )
    assert not out.exists()
