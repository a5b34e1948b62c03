"""Every example runs in --quick mode, prints its result, draws its picture, and is seeded.

Each example is run twice as a student would run it (``python examples/NAME.py --quick``,
in a fresh working directory, pictures into a temporary --out folder); the two runs must
print exactly the same numbers. Progress bars go to stderr and are not compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# name → the picture it writes (None: it prints only)
PICTURES = {
    "one_to_one": "one_to_one.png",
    "one_to_many_captions": "one_to_many_captions.png",
    "many_to_one_sentiment": "many_to_one_sentiment.png",
    "many_to_many_translation": None,
    "many_to_many_tagging": "many_to_many_tagging.png",
    "char_rnn_names": None,
    "adding_problem": "adding_problem_flow.png",
    "custom_cell": "custom_cell_flow.png",
    "property_tests_for_your_op": None,
}


def _start(name: str, workdir: Path) -> subprocess.Popen:
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick"]
    if PICTURES[name]:
        command += ["--out", str(workdir / "out")]
    # One BLAS thread each: two runs share the two cores instead of fighting over them.
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each example run twice in its own directory (shared by the tests below)."""
    cache: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in cache:
            # Two runs at once, each in its own directory (the machine has two cores).
            first_dir, second_dir = tmp_path_factory.mktemp(name), tmp_path_factory.mktemp(name)
            first, second = _start(name, first_dir), _start(name, second_dir)
            cache[name] = (first_dir, _finish(first), _finish(second), second_dir)
        return cache[name]

    return get


def test_every_example_file_is_listed_here_and_in_the_readme():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if p.stem != "conftest"}
    assert scripts == set(PICTURES)
    readme = (EXAMPLES / "README.md").read_text()
    for name in PICTURES:
        assert f"{name}.py" in readme, f"examples/README.md does not mention {name}.py"


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_example_runs_quick_prints_its_result_and_draws(name, runs):
    workdir, first, *_ = runs(name)
    assert first.returncode == 0, f"{name} failed:\n{first.stdout}\n{first.stderr[-3000:]}"
    assert any(line.startswith("result: ") for line in first.stdout.splitlines()), first.stdout
    if PICTURES[name]:
        picture = workdir / "out" / PICTURES[name]
        assert picture.is_file() and picture.stat().st_size > 1000, f"{picture} not written"


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_example_keeps_progress_bars_out_of_files(name, runs):
    """Output to a pipe (a log, a file) gets no bar: tqdm's disable=None shows it on a
    terminal only."""
    _, first, *_ = runs(name)
    assert "\r" not in first.stderr and "it/s]" not in first.stderr, first.stderr[-500:]


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_example_prints_the_same_numbers_with_the_same_seed(name, runs):
    first_dir, first, second, second_dir = runs(name)
    assert first.returncode == second.returncode == 0
    # The runs wrote into different folders; everything else must be identical.
    assert first.stdout.replace(str(first_dir), "<dir>") == second.stdout.replace(
        str(second_dir), "<dir>"
    )


def test_example_docstrings_state_a_target_and_a_measured_figure():
    for name in PICTURES:
        text = (EXAMPLES / f"{name}.py").read_text()
        docstring = text.split('"""')[1]
        assert "Target:" in docstring, name
        assert "Measured" in docstring and "MEASURED" not in docstring, name


def test_property_example_is_collected_by_pytest():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(EXAMPLES / "property_tests_for_your_op.py"),
        ],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout


def test_example_output_folder_is_git_ignored():
    ignored = (EXAMPLES.parent / ".gitignore").read_text().split()
    assert "examples/out/" in ignored
