"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamGroup, check_number


class Adagrad(Optimizer):
    r"""Adagrad: each coordinate's step shrinks with the sum of its squared gradients.

    With δ = ``lr_decay`` and ε = ``eps``, for each parameter at step t = 1, 2, …:

        g ← g_t + λ·θ_{t−1}
        η_t = η / (1 + (t − 1)·δ)
        s_t = s_{t−1} + g²                       (s₀ = initial_accumulator_value)
        θ_t = θ_{t−1} − η_t · g / (√s_t + ε)

    The state of a parameter is ``step`` (t) and ``sum`` (s).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _state_keys(self, group: ParamGroup) -> tuple[str, ...]:
        return ("step", "sum")

    def _check_options(self, group: ParamGroup) -> None:
        for option in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_number("Adagrad", option, group[option])

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        if not state:
            state.update(step=0, sum=np.full_like(param, group["initial_accumulator_value"]))
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        param -= clr * (grad / (np.sqrt(state["sum"]) + group["eps"]))
