"""Activation functions as modules: ``nn.Tanh()``, ``nn.ReLU()``, ``nn.Softmax(dim)``, …

Each one calls its function in :mod:`tinygrad_seq.functional`, with PyTorch's arguments.
"""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]


class Tanh(Module):
    """tanh(x), the Elman RNN's squashing function."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^(−x)), the LSTM's gate function."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Softmax(Module):
    """exp(x) / Σ exp(x) along ``dim``; leave ``dim`` out only for up to 2 dimensions."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log softmax(x) along ``dim``, finite for logits of ±1e4."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)
