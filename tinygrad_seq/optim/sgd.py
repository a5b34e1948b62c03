"""SGD: gradient descent with momentum, dampening, Nesterov and L2 weight decay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamGroup, check_number


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening, Nesterov and L2.

    With μ the momentum and τ the dampening, for each parameter at step t:

        g ← g_t + λ·θ_{t−1}
        b_t = g                            (first step)
        b_t = μ·b_{t−1} + (1 − τ)·g        (later steps)
        g ← g + μ·b_t   if nesterov,   else   g ← b_t          (when μ ≠ 0)
        θ_t = θ_{t−1} − η·g

    The state of a parameter is its ``momentum_buffer`` b (only when μ ≠ 0).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _state_keys(self, group: ParamGroup) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _check_options(self, group: ParamGroup) -> None:
        for option in ("lr", "momentum", "weight_decay"):
            check_number("SGD", option, group[option])
        check_number("SGD", "dampening", group["dampening"], low=-math.inf)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # A new array (np.array copies): the buffer is updated in place later and must
                # not alias the grad, nor be a numpy scalar, which 0-d arithmetic returns.
                buf = state["momentum_buffer"] = np.array(grad)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad
