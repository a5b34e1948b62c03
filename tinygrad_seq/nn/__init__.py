"""Neural-network building blocks: modules, layers, recurrent cells, the course's patterns."""

from . import init, utils
from .cells import Cell, GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, Linear, Sequential
from .module import Module, Parameter
from .patterns import ManyToMany, ManyToOne, OneToMany, Seq2Seq, sample
from .recurrent import GRU, LSTM, RNN, Recurrent
from .truncated import TruncatedResult, detach_state, truncated_bptt

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
    "ManyToMany",
    "ManyToOne",
    "OneToMany",
    "Seq2Seq",
    "TruncatedResult",
    "detach_state",
    "init",
    "sample",
    "truncated_bptt",
    "utils",
]
