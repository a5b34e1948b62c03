"""docs/lecture-map.md quotes code lines; each must still stand in the file it names."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUOTE = re.compile(r"^```text\nfile: (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_quoted_line_exists_in_its_file():
    page = (ROOT / "docs" / "lecture-map.md").read_text(encoding="utf-8")
    quotes = QUOTE.findall(page)
    assert len(quotes) >= 6
    missing = []
    for path, block in quotes:
        source_lines = {line.strip() for line in (ROOT / path).read_text().splitlines()}
        missing += [
            f"{path}: {line.strip()}"
            for line in block.splitlines()
            if line.strip() and line.strip() not in source_lines
        ]
    assert not missing, "lecture-map.md quotes lines that are gone:\n" + "\n".join(missing)


def test_the_glossary_has_the_course_terms():
    page = (ROOT / "docs" / "lecture-map.md").read_text(encoding="utf-8")
    for term in (
        "은닉 상태",
        "망각 게이트",
        "입력 게이트",
        "셀 상태",
        "출력 게이트",
        "장기 의존성 문제",
        "기울기 소실",
    ):
        assert term in page
