"""Learning-rate schedulers as in PyTorch: StepLR, ExponentialLR, CosineAnnealingLR, LambdaLR.

A scheduler changes ``group['lr']`` in each of an optimizer's parameter groups. Creating it
records each group's starting rate as ``group['initial_lr']`` (kept in the optimizer's state
dict) and counts ``last_epoch`` from 0; each ``step()`` adds one to ``last_epoch`` and sets
the new rates. Call it after ``optimizer.step()``, usually once per epoch::

    sched = StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train_one_epoch(model, opt)
        sched.step()
    sched.get_last_lr()     # [rate of group 0, rate of group 1, ...]

As in PyTorch, StepLR, ExponentialLR and CosineAnnealingLR are *chainable*: each step
multiplies or moves the group's current rate, so another scheduler (or a manual change of
``group['lr']``) composes with them; LambdaLR recomputes from ``initial_lr`` each time.
Stepping the scheduler before the optimizer has ever stepped warns, as PyTorch does,
because it skips the first rate of the schedule.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .optimizer import Optimizer

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "StepLR"]

# Keys of PyTorch's scheduler state dicts that only steer its warnings; ignored on loading.
_TORCH_ONLY_STATE = frozenset({"_get_lr_called_within_step"})


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``last_epoch``, ``base_lrs`` and state dicts.

    Subclasses implement ``get_lr()``: the groups' rates at ``last_epoch``, computed from
    their current rates (chainable) or from ``base_lrs``. ``last_epoch=-1`` starts a new
    schedule; another value resumes one and needs ``initial_lr`` in every group (load the
    optimizer's state dict first).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int ≥ -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for k, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{k}] when "
                        f"resuming with last_epoch={last_epoch}; load the optimizer's state "
                        "dict (which holds it) before creating the scheduler, or pass "
                        "last_epoch=-1 to start a new schedule"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        # The first step sets the rates of epoch 0 (or of the resumed epoch); as in PyTorch,
        # it is done here and does not count as the user's.
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """Each group's rate at ``last_epoch`` (called by ``step``; read ``get_last_lr()``)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance ``last_epoch`` by one and set every group's ``lr`` for it.

        ``epoch`` (deprecated in PyTorch, and warned about likewise) jumps to that epoch,
        using the closed form where the scheduler has one.
        """
        if self._step_count == 1 and not self.optimizer._stepped:
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`: call them in "
                "the opposite order, otherwise the first value of the learning-rate schedule "
                "is skipped",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn(
                "The epoch argument of `scheduler.step(epoch)` is deprecated (as in PyTorch); "
                "call `scheduler.step()` once per epoch instead",
                UserWarning,
                stacklevel=2,
            )
            self.last_epoch = epoch
            values = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer, as PyTorch's (lists copied)."""
        return {
            key: list(value) if isinstance(value, list) else value
            for key, value in self.__dict__.items()
            if key != "optimizer"
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`, ours or a PyTorch scheduler's.

        All or nothing: a key this scheduler does not have is a ValueError and nothing changes.
        """
        own = set(self.state_dict())
        unexpected = sorted(set(state_dict) - own - _TORCH_ONLY_STATE)
        if unexpected:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unexpected key(s) {unexpected} "
                f"(expected {sorted(own)}); nothing changed"
            )
        for key, value in state_dict.items():
            if key in own:
                setattr(self, key, list(value) if isinstance(value, list) else value)


def _check_number(scheduler: str, option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{scheduler}: {option} must be a number, got {value!r}")


def _check_count(scheduler: str, option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{scheduler}: {option} must be a whole number ≥ 1, got {value!r}")


class StepLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` every ``step_size`` epochs.

    lr at epoch t = initial_lr · gamma^⌊t / step_size⌋ (computed by multiplying the current
    rate at every multiple of ``step_size``, as PyTorch does).
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _check_count("StepLR", "step_size", step_size)
        _check_number("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` every epoch: lr at epoch t = initial_lr · gammaᵗ."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_number("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal each rate along a half cosine from ``initial_lr`` to ``eta_min`` in ``T_max`` epochs.

    The rate follows η_t = η_min + (η₀ − η_min)·(1 + cos(π·t/T_max))/2, rising again after
    T_max (a period of 2·T_max). Like PyTorch, each step computes it *recursively* from the
    current rate, η_t = η_min + (η_{t−1} − η_min)·(1 + cos(πt/T))/(1 + cos(π(t−1)/T)), with
    PyTorch's special case at the trough (t − 1 − T a multiple of 2T), so a rate changed by
    hand or by another scheduler is annealed from where it is; the numbers equal PyTorch's.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _check_count("CosineAnnealingLR", "T_max", T_max)
        _check_number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # PyTorch's closed form for a first step at t > 0
            return self._closed_form_lr()
        if (t - 1 - period) % (2 * period) == 0:
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / period)) / 2
                for base, lr in zip(self.base_lrs, self._current_lrs(), strict=True)
            ]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        return [
            eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2
            for base in self.base_lrs
        ]


class LambdaLR(LRScheduler):
    """Set each group's rate to ``initial_lr · lr_lambda(epoch)``.

    ``lr_lambda`` is one function of the epoch for every group, or a list with one per group.
    The state dict holds the functions' attributes only when they are callable objects (a
    plain function or lambda cannot be saved), as PyTorch's.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != groups:
                raise ValueError(
                    f"LambdaLR: expected {groups} lr_lambdas (one per parameter group), "
                    f"but got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for k, fn in enumerate(self.lr_lambdas):
            if not callable(fn):
                raise TypeError(
                    f"LambdaLR: lr_lambda {k} is a {type(fn).__name__}, not a function of the "
                    "epoch (e.g. lambda epoch: 0.95 ** epoch)"
                )
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            base * fn(self.last_epoch)
            for fn, base in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if len(saved) != len(self.lr_lambdas):
            raise ValueError(
                f"LambdaLR.load_state_dict: {len(saved)} lr_lambdas saved, this scheduler has "
                f"{len(self.lr_lambdas)}; nothing changed"
            )
        state["lr_lambdas"] = self.lr_lambdas  # the functions themselves stay
        super().load_state_dict(state)
        for fn, attributes in zip(self.lr_lambdas, saved, strict=True):
            if attributes is not None:
                fn.__dict__.update(attributes)
