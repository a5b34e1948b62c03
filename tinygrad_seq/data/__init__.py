"""Batching (``Dataset``, ``TensorDataset``, ``DataLoader``, ``pad_sequence``) and tiny data
sets, generated from a seed or shipped inside the package: nothing is downloaded."""

from .loader import DataLoader, Dataset, TensorDataset, default_collate
from .names import names
from .padding import lengths_of, pad_collate, pad_sequence
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
    "DataLoader",
    "Dataset",
    "TensorDataset",
    "WordVocab",
    "adding_problem",
    "bracket_depth",
    "date_pairs",
    "default_collate",
    "lengths_of",
    "names",
    "pad_collate",
    "pad_sequence",
    "running_parity",
    "sentiment",
    "shape_captions",
    "tiny_text",
    "two_moons",
]
