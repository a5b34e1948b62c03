"""Gradient clipping: keep one exploding step of backpropagation through time from wrecking
the weights (the exploding-gradient half of the vanishing/exploding story).

Both functions act on ``p.grad`` after ``backward`` and before ``optimizer.step()``. They
give each clipped parameter a new gradient Tensor instead of writing into the old array,
which another reference (a gradient-flow recorder, a user's variable) may share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor, from_numpy

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm treats every gradient as one long vector,

        ‖g‖_p = (Σ_params ‖g_param‖_p^p)^(1/p),   ‖g‖_∞ = max_params ‖g_param‖_∞,

    and every gradient is multiplied by c = max_norm / (‖g‖ + 10⁻⁶) when c < 1 (the 10⁻⁶
    guards against dividing by zero). The direction of the update is kept; only its length
    is limited.

    Returns the total norm *before* clipping, as a 0-d Tensor (``.item()`` or ``float()``
    gives the number), 0.0 when no parameter has a gradient. As in PyTorch, a non-finite
    total norm is not an error unless ``error_if_nonfinite``: the gradients are then
    multiplied by c = max_norm / ∞ = 0 (an infinite entry becomes NaN) or by NaN.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not norm_type > 0:
        raise ValueError(
            f"clip_grad_norm_: norm_type must be a positive number or inf, got {norm_type}"
        )
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be ≥ 0, got {max_norm}")
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    norms = [_vector_norm(p.grad.data, norm_type) for p in grads]
    total = _vector_norm(np.stack(norms), norm_type)
    total_value = float(total)
    if error_if_nonfinite and not math.isfinite(total_value):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{total_value}, so they cannot be clipped; pass error_if_nonfinite=False to "
            "scale them anyway (as PyTorch does by default)"
        )
    coefficient = max_norm / (total_value + 1e-6)
    if coefficient < 1 or not math.isfinite(total_value):
        # ∞·0 = NaN is the documented outcome for an infinite norm, not worth a warning.
        with np.errstate(invalid="ignore"):
            for p in grads:
                p.grad = _new_grad(p.grad.data * p.grad.data.dtype.type(coefficient))
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient entry to [−clip_value, clip_value] (elementwise, unlike the norm).

    Each entry becomes min(max(g, −clip_value), clip_value); a NaN entry stays NaN.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be ≥ 0, got {clip_value}")
    for p in params:
        if p.grad is not None:
            p.grad = _new_grad(np.clip(p.grad.data, -clip_value, clip_value))


def _new_grad(values: np.ndarray | np.generic) -> Tensor:
    # np.asarray: arithmetic on a 0-d array gives a numpy scalar, and a grad holds an array.
    return from_numpy(np.asarray(values))


def _vector_norm(array: np.ndarray, norm_type: float) -> np.ndarray:
    """‖array‖_p over all entries as a 0-d array of the array's dtype (0 when it is empty)."""
    magnitudes = np.abs(array)
    if magnitudes.size == 0:
        return np.zeros((), dtype=magnitudes.dtype)
    if norm_type == math.inf:
        return magnitudes.max()
    if norm_type == 2:
        return np.sqrt(np.sum(magnitudes * magnitudes))
    return np.sum(magnitudes**norm_type) ** (1 / norm_type)
