"""Neural-network building blocks: modules, layers, recurrent cells, the course's patterns."""

from . import functional, init, utils
from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .cells import Cell, GRUCell, LSTMCell, RNNCell
from .container import ModuleDict, ModuleList
from .layers import Dropout, Embedding, Linear, Sequential
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter
from .patterns import ManyToMany, ManyToOne, OneToMany, Seq2Seq, sample
from .recurrent import GRU, LSTM, RNN, Recurrent
from .shaping import Flatten, Identity
from .truncated import TruncatedResult, detach_state, truncated_bptt

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Cell",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "RNNCell",
    "ReLU",
    "Recurrent",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "ManyToMany",
    "ManyToOne",
    "OneToMany",
    "Seq2Seq",
    "TruncatedResult",
    "detach_state",
    "functional",
    "init",
    "sample",
    "truncated_bptt",
    "utils",
]
