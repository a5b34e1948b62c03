"""Basic layers: Linear, Embedding, Dropout, Sequential (PyTorch's names and initialisation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import DEFAULT_DTYPE, Tensor, default_generator
from . import init
from .module import Module, Parameter

__all__ = ["Dropout", "Embedding", "Linear", "Sequential"]


class Linear(Module):
    """y = x Wᵀ + b, with ``weight`` (out, in) and ``bias`` (out,).

    Initialised as PyTorch does: every entry from U(−1/√in, 1/√in).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        dtype = dtype or DEFAULT_DTYPE
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        init.uniform_(self.weight, -bound, bound, rng)
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear: input of shape {x.shape} does not end in in_features={self.in_features}"
            )
        return F.linear(x, self.weight, self.bias)  # x·Wᵀ + b

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Embedding(Module):
    """A lookup table: row i of ``weight`` (num_embeddings, embedding_dim) for index i.

    Rows picked several times accumulate their gradients. The row ``padding_idx`` starts
    at zero and never receives a gradient (as in PyTorch, its stored values are returned).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} embeddings"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(
            np.empty((num_embeddings, embedding_dim), dtype=dtype or DEFAULT_DTYPE)
        )
        init.normal_(self.weight, 0.0, 1.0, rng)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, indices: Any) -> Tensor:
        out = F.embedding(indices, self.weight)
        if self.padding_idx is None:
            return out
        index = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        # The padding row's values come through (as in PyTorch); only its gradient stops.
        return F.where((index != self.padding_idx)[..., None], out, out.detach())

    def extra_repr(self) -> str:
        extra = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"


class Dropout(Module):
    """Zero each element with probability ``p`` while training (inverted dropout).

    ``rng`` makes the masks reproducible; otherwise the generator seeded by
    ``ts.manual_seed`` is used. The identity in ``eval()`` mode.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be between 0 and 1, got {p}")
        self.p = p
        self.rng = rng

    def forward(self, x: Tensor) -> Tensor:
        rng = self.rng if self.rng is not None else default_generator()
        return F.dropout(x, self.p, self.training, rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied one after another; ``seq[i]`` and ``len(seq)`` work."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
            self.add_module(str(i), layer)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
