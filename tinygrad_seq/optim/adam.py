"""Adam and AdamW: one update rule, with the weight decay in the gradient or decoupled from it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, ParamGroup, check_number, lerp_


class Adam(Optimizer):
    r"""Adam: steps scaled by running estimates of the gradient's first and second moments.

    With β₁, β₂ = ``betas`` and ε = ``eps``, for each parameter at step t = 1, 2, …:

        θ ← θ_{t−1}·(1 − η·λ)   if decoupled_weight_decay   (AdamW)
        g ← g_t + λ·θ_{t−1}     otherwise                   (L2 in the gradient)
        m_t = β₁·m_{t−1} + (1 − β₁)·g            (m₀ = 0)
        v_t = β₂·v_{t−1} + (1 − β₂)·g²           (v₀ = 0)
        v̂_t = max(v̂_{t−1}, v_t) if amsgrad, else v_t   (v̂₀ = 0)
        θ_t = θ − η/(1 − β₁ᵗ) · m_t / (√v̂_t / √(1 − β₂ᵗ) + ε)

    The bias corrections 1 − βᵗ undo the pull of m₀ = v₀ = 0 towards zero in early steps;
    ε is added after the correction, exactly as PyTorch does. ``amsgrad`` (Reddi et al.,
    2018) divides by the largest second moment so far, so a coordinate's step never grows
    because its gradients became smaller. The state of a parameter is ``step`` (t),
    ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq`` (v̂).
    ``decoupled_weight_decay=True`` is :class:`AdamW`, as in PyTorch.
    """

    added_options = {"amsgrad": False, "decoupled_weight_decay": False}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _state_keys(self, group: ParamGroup) -> tuple[str, ...]:
        keys = ("step", "exp_avg", "exp_avg_sq")
        return (*keys, "max_exp_avg_sq") if group["amsgrad"] else keys

    def _check_options(self, group: ParamGroup) -> None:
        name = type(self).__name__
        for option in ("lr", "eps", "weight_decay"):
            check_number(name, option, group[option])
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (β₁, β₂), got {betas!r}")
        for k, beta in enumerate(betas):
            check_number(name, f"betas[{k}]", beta)
            if not beta < 1:
                raise ValueError(f"{name}: invalid betas[{k}] {beta!r}; it must be in [0, 1)")
        group["betas"] = tuple(betas)

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        lr, weight_decay, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(second_moment) / (1 - beta2**step) ** 0.5 + group["eps"]
        param -= step_size * (exp_avg / denom)


class AdamW(Adam):
    r"""AdamW (Loshchilov and Hutter, 2019): Adam with the weight decay decoupled from the gradient.

    Each step first shrinks the parameter, θ ← θ·(1 − η·λ), then takes Adam's step without
    λ in g, so the decay is not rescaled by the second moment: every weight decays at the
    same rate. The rule is :class:`Adam`'s with ``decoupled_weight_decay=True`` (PyTorch's
    AdamW is the same subclass); the default λ is 0.01, as in PyTorch.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)

    def _check_options(self, group: ParamGroup) -> None:
        super()._check_options(group)
        # As PyTorch's AdamW: the decay stays decoupled, whatever a loaded state dict says.
        group["decoupled_weight_decay"] = True
