"""Weight initialisers, in place, as ``torch.nn.init``; each takes an optional ``rng``.

Without ``rng`` they draw from the generator seeded by ``ts.manual_seed``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..safety import writing
from ..tensor import Tensor, default_generator

__all__ = [
    "constant_",
    "eye_",
    "normal_",
    "ones_",
    "orthogonal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else default_generator()


def _fill(tensor: Tensor, values: Any) -> Tensor:
    with writing(tensor, "init") as array:
        array[...] = values
    return tensor


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(tensor, _rng(rng).uniform(a, b, tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Fill with N(mean, std²)."""
    return _fill(tensor, _rng(rng).normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, as ``torch.eye``).

    With a rectangular shape the extra rows or columns are zero. The IRNN of Le, Jaitly &
    Hinton (2015) starts its recurrent weights W from the identity: s_t = relu(U·x_t + s_{t−1})
    copies the state forward unchanged until learning moves W.
    """
    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-D tensor, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def _fans(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out need at least 2 dimensions, got shape {tensor.shape}"
        )
    receptive = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Glorot: U(−a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Glorot: N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def orthogonal_(
    tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain``: all singular values equal ``gain``.

    Useful for recurrent weights: ‖W h‖ = ‖h‖, so the signal neither grows nor shrinks.
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape {tensor.shape}")
    rows, cols = tensor.shape[0], int(np.prod(tensor.shape[1:]))
    flat = _rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the distribution uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
