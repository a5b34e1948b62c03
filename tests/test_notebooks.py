"""The course's notebooks (docs/notebooks/): one source, two languages, executed for real.

Every notebook runs top to bottom in a Jupyter kernel twice: the English one with its
exercises blank, as a student meets it — each ``check_…`` must print its ✗ line with the
intended message — and the Korean one with the solutions filled in — each must print ✓.
The code cells of the two languages are identical (checked below), so together the two runs
execute every notebook in both languages and every exercise both ways. The kernels run two
at a time (see ``executed``).
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "docs" / "notebooks"
spec = importlib.util.spec_from_file_location("course_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = build  # dataclasses look their module up there
spec.loader.exec_module(build)

STEMS = [path.stem for path in build.sources()]
SLOWEST = ("03_four_patterns", "05_vanishing_gradients", "06_property_tests")


def read(language: str, stem: str) -> dict:
    return json.loads((NOTEBOOKS / language / f"{stem}.ipynb").read_text(encoding="utf-8"))


def course(cell: dict) -> dict:
    return cell.get("metadata", {}).get("course", {})


def printed(cell: dict) -> str:
    return "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream")


def test_the_course_has_six_notebooks_in_both_languages():
    assert len(STEMS) == 6
    for language in build.LANGUAGES:
        names = sorted(p.stem for p in (NOTEBOOKS / language).glob("*.ipynb"))
        assert names == STEMS, f"docs/notebooks/{language}/ holds {names}, the source {STEMS}"


@pytest.mark.parametrize("stem", STEMS)
def test_the_code_cells_of_ko_and_en_are_identical(stem):
    assert build.code_differences(read("en", stem), read("ko", stem)) == []


def test_the_comparison_catches_a_code_cell_that_differs():
    english = read("en", STEMS[0])
    korean = json.loads(json.dumps(english))
    code = [c for c in korean["cells"] if c["cell_type"] == "code"]
    code[2]["source"] = "".join(code[2]["source"]) + "\nprint('only in Korean')"
    assert build.code_differences(english, korean) == ["code cell 2 differs"]
    korean["cells"].remove(code[0])
    assert build.code_differences(english, korean) == [
        f"{len(code)} code cells in English, {len(code) - 1} in Korean"
    ]


def test_the_notebooks_are_what_the_source_gives():
    assert build.main(["--check"]) == 0, "run python docs/notebooks/build.py"


def test_the_notebooks_are_stored_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*/*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path


def test_the_parser_refuses_a_sentence_without_its_translation():
    with pytest.raises(ValueError, match="must follow a %% en block"):
        build.parse("%% code\nx = 1\n%% ko\n번역")
    with pytest.raises(ValueError, match="English text without a Korean one"):
        build.parse("%% en\nHello\n%% code\nx = 1")


@pytest.mark.parametrize("stem", STEMS)
def test_every_exercise_has_a_check_and_a_solution(stem):
    cells = build.parse((build.SOURCE / f"{stem}.md").read_text(encoding="utf-8"))
    exercises = [c.name for c in cells if c.kind == "exercise"]
    checks = [c.name for c in cells if c.kind == "check"]
    assert exercises, f"{stem} has no exercise"
    assert exercises == checks, f"{stem}: exercises {exercises}, checks {checks}"
    assert all(c.message for c in cells if c.kind == "check"), "a check without its message"
    assert sorted(build.solutions(stem)) == sorted(exercises)


# test name → (language, with the solutions filled in)
RUNS = {
    "test_blank_exercises_fail_with_their_message": ("en", False),
    "test_solved_exercises_pass": ("ko", True),
}


def run(job: tuple[str, str, bool], cwd: str) -> str:
    """Execute one notebook (in a worker process); its executed JSON, or the error raised."""
    language, stem, solve = job
    notebook = nbformat.read(NOTEBOOKS / language / f"{stem}.ipynb", as_version=4)
    if solve:
        notebook = build.solved(notebook, stem)
    try:
        return nbformat.writes(build.execute(notebook, cwd=Path(cwd)))
    except Exception as error:  # reported by the test that asked for this notebook
        return f"ERROR {type(error).__name__}: {error}"


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory):
    """Every notebook the selected tests need, executed two at a time.

    Each kernel runs numpy on one thread, so on two cores two kernels take half the time of
    one after the other (measured: 46 s against 96 s for all twelve on a busy machine).
    """
    jobs = set()
    for item in request.session.items:
        if item.originalname in RUNS and item.module.__name__ == __name__:
            language, solve = RUNS[item.originalname]
            jobs.add((language, item.callspec.params["stem"], solve))
    jobs = sorted(jobs, key=lambda job: (job[1] not in SLOWEST, job))  # the long ones first
    folders = [str(tmp_path_factory.mktemp(f"{stem}-{language}")) for language, stem, _ in jobs]
    if "fork" not in multiprocessing.get_all_start_methods():  # the workers inherit `run`
        return {job: run(job, folder) for job, folder in zip(jobs, folders, strict=True)}
    workers = max(1, min(2, os.cpu_count() or 1, len(jobs)))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return dict(zip(jobs, pool.map(run, jobs, folders), strict=True))


def execution(executed: dict, test: str, stem: str) -> nbformat.NotebookNode:
    text = executed[(RUNS[test][0], stem, RUNS[test][1])]
    if text.startswith("ERROR "):
        pytest.fail(f"{stem} ({RUNS[test][0]}): {text}")
    return nbformat.reads(text, as_version=4)


def check_drawings(notebook: dict, stem: str) -> None:
    for cell in notebook.cells:
        if course(cell).get("role") == "graph":
            kinds = {kind for o in cell.outputs for kind in o.get("data", {})}
            assert "image/svg+xml" in kinds, f"{stem}: a graph cell drew no SVG: {cell.source!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_blank_exercises_fail_with_their_message(stem, executed):
    notebook = execution(executed, "test_blank_exercises_fail_with_their_message", stem)
    check_drawings(notebook, stem)
    checks = [c for c in notebook.cells if course(c).get("role") == "check"]
    assert checks
    for cell in checks:
        name, message = course(cell)["exercise"], course(cell)["blank_message"]
        assert printed(cell) == f"✗ {name}: {message}\n", f"{stem}: {printed(cell)!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_solved_exercises_pass(stem, executed):
    notebook = execution(executed, "test_solved_exercises_pass", stem)
    check_drawings(notebook, stem)
    checks = [c for c in notebook.cells if course(c).get("role") == "check"]
    for cell in checks:
        assert printed(cell).startswith(f"✓ {course(cell)['exercise']}: "), printed(cell)
        assert printed(cell).count("\n") == 1, f"{stem}: more than one line: {printed(cell)!r}"


def test_the_html_of_a_notebook_fits_a_wide_graph_to_the_page():
    # make notebooks: nbconvert shows SVG output as an <img>, which the lab template leaves
    # at its natural width (a wide graph behind a scroll bar); the page gets a rule for it.
    from tinygrad_seq import nn, viz

    svg = viz.draw_cell_step(nn.LSTMCell(2, 3))._repr_mimebundle_().get("image/svg+xml")
    if svg is None:
        pytest.skip("no Graphviz renderer")
    nb = nbformat.v4.new_notebook()
    output = nbformat.v4.new_output("display_data", data={"image/svg+xml": svg})
    nb.cells.append(nbformat.v4.new_code_cell("draw()", outputs=[output]))
    html = build.to_html(nb)
    head, body = html.split("</head>", 1)
    assert ".jp-RenderedSVG img { max-width: 100%; height: auto; }" in head
    assert 'class="jp-RenderedSVG' in body and "<img" in body.split('class="jp-RenderedSVG', 1)[1]
