"""Neural-network building blocks: modules, layers, recurrent cells, initialisers."""

from . import init
from .layers import Dropout, Embedding, Linear, Sequential
from .module import Module, Parameter

__all__ = ["Dropout", "Embedding", "Linear", "Module", "Parameter", "Sequential", "init"]
