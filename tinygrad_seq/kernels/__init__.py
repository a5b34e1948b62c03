"""Fused recurrent kernels: one layer, one direction, the whole sequence as ONE Function.

``rnn``, ``lstm`` and ``gru`` compute exactly what ``Recurrent`` computes with the matching
cell (the composed cells stay the teaching path and the oracle), with the input projection
of all steps as one matrix product, a few preallocated numpy calls per step, and a
hand-derived backward through time whose weight gradients are single products over all
steps. The layers ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` use them unless ``fused=False``.
Their gradient cannot be differentiated again: use ``fused=False`` for that.
"""

from .gru import gru
from .lstm import lstm
from .rnn import rnn

__all__ = ["gru", "lstm", "rnn"]
