"""Tiny data sets, generated from a seed or shipped inside the package: nothing is downloaded."""

from .names import names
from .synthetic import CharVocab, adding_problem, tiny_text
from .toys import (
    CAPTION_VOCAB,
    DATE_FORMATS,
    SENTIMENT_VOCAB,
    WordVocab,
    bracket_depth,
    date_pairs,
    running_parity,
    sentiment,
    shape_captions,
    two_moons,
)

__all__ = [
    "CAPTION_VOCAB",
    "DATE_FORMATS",
    "SENTIMENT_VOCAB",
    "CharVocab",
    "WordVocab",
    "adding_problem",
    "bracket_depth",
    "date_pairs",
    "names",
    "running_parity",
    "sentiment",
    "shape_captions",
    "tiny_text",
    "two_moons",
]
