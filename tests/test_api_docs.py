"""The API reference in docs/api/ is generated from the docstrings and must be up to date."""

import importlib.util
from pathlib import Path

GENERATOR = Path(__file__).resolve().parent.parent / "docs" / "api" / "generate.py"


def test_api_pages_match_the_docstrings():
    spec = importlib.util.spec_from_file_location("generate_api_docs", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stale = [
        path.name
        for path, text in generator.pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run python docs/api/generate.py"
