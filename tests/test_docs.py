"""The docs tell the truth: every ```python block in README.md and docs/ runs.

Blocks of one file run in order in one namespace, as a reader would type them. Fragments
that are not meant to run on their own are marked ```py instead.
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)  # pictures the examples write land in a scratch folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{page.name} block {number}", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 - report which block failed
            pytest.fail(f"{page.name}, python block {number} failed: {error!r}\n{code}")
    assert os.getcwd() == str(tmp_path)


TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+\*?))?`|`::(\w+\*?)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_tests_exist(page):
    """Pages that cite tests (docs/reliability.md) cite tests that exist."""
    missing = []
    current_file = None
    for match in TEST_REFERENCE.finditer(page.read_text(encoding="utf-8")):
        path, name, bare = match.groups()
        if path:
            current_file = path
            if not (ROOT / path).exists():
                missing.append(path)
                continue
        name = name or bare
        if not name:
            continue
        source = (ROOT / current_file).read_text(encoding="utf-8")
        pattern = rf"^def {name.rstrip('*')}" + ("" if name.endswith("*") else r"\(")
        if not re.search(pattern, source, re.MULTILINE):
            missing.append(f"{current_file}::{name}")
    assert not missing, f"{page.name} cites tests that do not exist: {missing}"
