"""The course's notebooks, written from one source per notebook in both languages.

``source/NN_name.md`` holds a notebook as blocks, each opened by a line ``%% kind``:

- ``%% en`` then ``%% ko``: one markdown cell, in English and in Korean;
- ``%% code``: a code cell, the same in both languages;
- ``%% graph``: a code cell whose output is a drawing (the tests require inline SVG);
- ``%% exercise NAME``: the student's cell, left blank (solutions/NN_name.py has the answer
  in its section ``# %% NAME``);
- ``%% check NAME | MESSAGE``: the cell that grades it; left blank, its ``check_…`` prints
  ``✗ NAME: MESSAGE``.

    python docs/notebooks/build.py            # write en/ and ko/ (stored without outputs)
    python docs/notebooks/build.py --check    # exit 1 if en/ or ko/ is not what source/ gives
    python docs/notebooks/build.py --html     # execute all into _build/{en,ko}/*.html

Executing needs the ``dev`` extra (nbclient, ipykernel, nbconvert).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE, SOLUTIONS, BUILD = HERE / "source", HERE / "solutions", HERE / "_build"
LANGUAGES = ("en", "ko")
MARKER = re.compile(r"^%% (en|ko|code|graph|exercise|check)(?: (\S+))?(?: \| (.*))?$")
SOLUTION_MARKER = re.compile(r"^# %% (\S+)$", re.MULTILINE)
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


@dataclass(frozen=True)
class Block:
    """One cell of the source: ``text`` per language for markdown, the same code otherwise."""

    kind: str
    text: dict[str, str]
    name: str | None = None
    message: str | None = None


def parse(source: str, origin: str = "source") -> list[Block]:
    """The blocks of one source file, in order (an ``en`` block must be followed by ``ko``)."""
    chunks: list[tuple[str, str | None, str | None, list[str]]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = MARKER.match(line)
        if match:
            chunks.append((*match.groups(), []))
        elif chunks:
            chunks[-1][3].append(line)
        elif line.strip():
            raise ValueError(f"{origin}:{number}: text before the first %% marker")
    blocks: list[Block] = []
    for index, (kind, name, message, lines) in enumerate(chunks):
        text = "\n".join(lines).strip("\n")
        if kind == "ko":
            if index == 0 or chunks[index - 1][0] != "en":
                raise ValueError(f"{origin}: a %% ko block must follow a %% en block")
            blocks[-1].text["ko"] = text
            continue
        if kind == "en":
            blocks.append(Block("markdown", {"en": text}))
        else:
            blocks.append(Block(kind, {"code": text}, name, message))
    missing = [b.text["en"][:40] for b in blocks if b.kind == "markdown" and "ko" not in b.text]
    if missing:
        raise ValueError(f"{origin}: English text without a Korean one: {missing}")
    return blocks


def notebook(blocks: list[Block], language: str) -> nbformat.NotebookNode:
    """The notebook of ``blocks`` in ``language``, without outputs, with stable cell ids."""
    cells = []
    for index, block in enumerate(blocks):
        cell_id = f"cell-{index:02d}"
        if block.kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(block.text[language], id=cell_id))
            continue
        metadata = {"course": {"role": block.kind}} if block.kind != "code" else {}
        if block.name:
            metadata["course"]["exercise"] = block.name
        if block.message:
            metadata["course"]["blank_message"] = block.message
        cells.append(nbformat.v4.new_code_cell(block.text["code"], id=cell_id, metadata=metadata))
    return nbformat.v4.new_notebook(
        cells=cells, metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}}
    )


def code_differences(english: dict, korean: dict) -> list[str]:
    """Where the code cells of two notebooks (as JSON dicts) differ; empty when identical."""

    def code(notebook: dict) -> list[str]:
        return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]

    en, ko = code(english), code(korean)
    if len(en) != len(ko):
        return [f"{len(en)} code cells in English, {len(ko)} in Korean"]
    return [f"code cell {i} differs" for i, (a, b) in enumerate(zip(en, ko, strict=True)) if a != b]


def sources() -> list[Path]:
    return sorted(SOURCE.glob("[0-9][0-9]_*.md"))


def rendered() -> dict[Path, str]:
    """Every notebook file as the source gives it: path → JSON text."""
    files = {}
    for path in sources():
        blocks = parse(path.read_text(encoding="utf-8"), str(path))
        for language in LANGUAGES:
            target = HERE / language / f"{path.stem}.ipynb"
            files[target] = nbformat.writes(notebook(blocks, language)) + "\n"
    return files


def solutions(stem: str) -> dict[str, str]:
    """The sections of ``solutions/<stem>.py``: exercise name → code."""
    text = (SOLUTIONS / f"{stem}.py").read_text(encoding="utf-8")
    parts = SOLUTION_MARKER.split(text)[1:]
    return {name: code.strip("\n") for name, code in zip(parts[::2], parts[1::2], strict=True)}


def solved(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with every exercise cell replaced by its solution."""
    answers = solutions(stem)
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        role = cell.metadata.get("course", {})
        if role.get("role") == "exercise":
            cell.source = answers[role["exercise"]]
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 120) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh Python kernel; any error raises."""
    from nbclient import NotebookClient

    # One BLAS thread: the notebooks' small products only lose to thread hand-offs, badly so
    # on a busy machine (the study's reason, see threadpoolctl in pyproject.toml).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)
    return nb


# nbconvert shows an SVG output (our graphs) as an <img>, which the lab template's CSS leaves
# at its natural size: a graph wider than the page would hide behind a scroll bar.
FIT_PICTURES = "<style>.jp-RenderedSVG img { max-width: 100%; height: auto; }</style>\n"


def to_html(nb: nbformat.NotebookNode) -> str:
    """An executed notebook as one HTML page; graphs wider than the page shrink to fit it."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return html.replace("</head>", FIT_PICTURES + "</head>", 1)


def write_html() -> None:
    """Execute every notebook (exercises blank, as a student meets them) into _build/."""
    for path in sorted(rendered()):
        language = path.parent.name
        out = BUILD / language
        out.mkdir(parents=True, exist_ok=True)
        nb = execute(nbformat.read(path, as_version=4), cwd=out)
        (out / f"{path.stem}.html").write_text(to_html(nb), encoding="utf-8")
        print(f"wrote {out / path.stem}.html")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if en/ or ko/ is stale")
    parser.add_argument("--html", action="store_true", help="execute into _build/ as HTML")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        stale = [str(p) for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            print("out of date (run python docs/notebooks/build.py):", *stale, sep="\n  ")
        differ = [
            f"{path.stem}: {difference}"
            for path in sources()
            for difference in code_differences(
                *(
                    json.loads((HERE / lang / f"{path.stem}.ipynb").read_text())
                    for lang in LANGUAGES
                )
            )
        ]
        if differ:
            print("the code cells of en/ and ko/ differ:", *differ, sep="\n  ")
        return 1 if stale or differ else 0
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if args.html:
        write_html()
    return 0


if __name__ == "__main__":
    sys.exit(main())
