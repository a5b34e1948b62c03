"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamGroup, check_number, lerp_


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), with PyTorch's options and exact update rule.

    With α = ``alpha``, ε = ``eps`` and μ = ``momentum``, for each parameter at step t:

        g ← g_t + λ·θ_{t−1}
        v_t = α·v_{t−1} + (1 − α)·g²                   (v₀ = 0)
        ḡ_t = α·ḡ_{t−1} + (1 − α)·g                     (centered only; ḡ₀ = 0)
        d = √(v_t − ḡ_t²) + ε   if centered,   else   √v_t + ε
        b_t = μ·b_{t−1} + g/d,   θ_t = θ_{t−1} − η·b_t   (μ > 0; b₀ = 0)
        θ_t = θ_{t−1} − η·g/d                             (μ = 0)

    ``centered`` divides by an estimate of the gradient's variance instead of its raw second
    moment. ε is added outside the square root, as in PyTorch (TensorFlow adds it inside).
    The state of a parameter is ``step``, ``square_avg`` (v), and ``momentum_buffer`` (b)
    when μ > 0 and ``grad_avg`` (ḡ) when centered.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _state_keys(self, group: ParamGroup) -> tuple[str, ...]:
        keys = ("step", "square_avg")
        keys += ("momentum_buffer",) if group["momentum"] > 0 else ()
        return keys + (("grad_avg",) if group["centered"] else ())

    def _check_options(self, group: ParamGroup) -> None:
        for option in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            check_number("RMSprop", option, group[option])

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state.update({key: np.zeros_like(param) for key in self._state_keys(group)}, step=0)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / denom
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * (grad / denom)
