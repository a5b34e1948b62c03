"""A shipped list of 5,163 first names, for character-level language models.

The names come from the 1990 US Census first-name lists (``dist.male.first`` and
``dist.female.first``), which are public domain; they were taken from the PyPI package
``names`` 0.3.0, whose README says so. They are stored lower-cased, deduplicated and sorted
in ``names.txt`` beside this module.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["names"]


def names() -> list[str]:
    """The first names, lower-case a–z only, in alphabetical order (5,163 of them)."""
    text = resources.files(__package__).joinpath("names.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]
