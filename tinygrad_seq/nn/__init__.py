"""Neural-network building blocks: modules, layers, recurrent cells, initialisers."""

from . import init
from .cells import Cell, GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, Linear, Sequential
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, Recurrent

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Cell",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "Module",
    "Parameter",
    "RNNCell",
    "Recurrent",
    "Sequential",
    "init",
]
