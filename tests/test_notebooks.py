"""The course's notebooks (docs/notebooks/): one source, two languages, executed for real.

Every notebook runs top to bottom in a Jupyter kernel twice: the English one with its
exercises blank, as a student meets it — each ``check_…`` must print its ✗ line with the
intended message — and the Korean one with the solutions filled in — each must print ✓.
The code cells of the two languages are identical (checked below), so together the two runs
execute every notebook in both languages and every exercise both ways.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "docs" / "notebooks"
spec = importlib.util.spec_from_file_location("course_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = build  # dataclasses look their module up there
spec.loader.exec_module(build)

STEMS = [path.stem for path in build.sources()]


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


def execute(language: str, stem: str, tmp_path: Path, solve: bool) -> dict:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOKS / language / f"{stem}.ipynb", as_version=4)
    if solve:
        notebook = build.solved(notebook, stem)
    return build.execute(notebook, cwd=tmp_path)  # raises on any error in any cell


def check_drawings(notebook: dict, stem: str) -> None:
    for cell in notebook.cells:
        if course(cell).get("role") == "graph":
            kinds = {kind for o in cell.outputs for kind in o.get("data", {})}
            assert "image/svg+xml" in kinds, f"{stem}: a graph cell drew no SVG: {cell.source!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_blank_exercises_fail_with_their_message(stem, tmp_path):
    notebook = execute("en", stem, tmp_path, solve=False)
    check_drawings(notebook, stem)
    checks = [c for c in notebook.cells if course(c).get("role") == "check"]
    assert checks
    for cell in checks:
        name, message = course(cell)["exercise"], course(cell)["blank_message"]
        assert printed(cell) == f"✗ {name}: {message}\n", f"{stem}: {printed(cell)!r}"


@pytest.mark.parametrize("stem", STEMS)
def test_solved_exercises_pass(stem, tmp_path):
    notebook = execute("ko", stem, tmp_path, solve=True)
    check_drawings(notebook, stem)
    checks = [c for c in notebook.cells if course(c).get("role") == "check"]
    for cell in checks:
        assert printed(cell).startswith(f"✓ {course(cell)['exercise']}: "), printed(cell)
        assert printed(cell).count("\n") == 1, f"{stem}: more than one line: {printed(cell)!r}"
