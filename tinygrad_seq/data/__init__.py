"""Tiny data sets, generated from a seed or shipped inside the package: nothing is downloaded."""

from .synthetic import CharVocab, adding_problem, tiny_text

__all__ = ["CharVocab", "adding_problem", "tiny_text"]
