"""The Optimizer base class: parameter groups, the training-loop contract and state dicts.

An optimizer holds the parameters (grouped, each group with its own hyperparameters) and,
per parameter, the state its rule needs (a momentum buffer, running moments, ...). A
training step is::

    opt.zero_grad()          # every p.grad = None
    loss = loss_fn(model(x), y)
    loss.backward()          # fills p.grad
    opt.step()               # p ← p − (an update computed from p.grad and the state)

``step`` changes each parameter's array in place, so the Parameter objects a model holds
stay the same; a parameter whose ``grad`` is None is skipped. The gradient arrays are never
written to: a user (or a gradient-clipping helper) may hold another reference to them.

In the update rules of the subclasses g_t is the gradient at step t, θ the parameter, λ the
weight decay, η the learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..autograd import enable_grad, no_grad
from ..nn.module import to_numpy
from ..safety import writing
from ..tensor import Tensor

__all__ = ["Optimizer"]

ParamGroup = dict[str, Any]


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``.

    ``params`` is an iterable of Parameters (one group using ``defaults``), or an iterable of
    dicts, each ``{'params': [...], <option>: value, ...}``: options a group leaves out come
    from ``defaults``. A parameter may belong to one group only.

    Subclasses implement ``_state_keys(group)`` (the entries of a parameter's state under
    the group's options), ``_check_options(group)`` (raise ValueError on an invalid
    hyperparameter) and ``_update(param, grad, state, group)`` (one parameter's update, in
    place on ``param``: the only place a step writes to a parameter). ``added_options``
    holds options newer than some saved state dicts, with the value that reproduces the
    older behaviour: a state dict without them loads with that value, as in PyTorch.
    """

    added_options: Mapping[str, Any] = {}

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        # Keyed by the Parameter itself, as PyTorch's ``optimizer.state[p]``.
        self.state: dict[Tensor, dict[str, Any]] = {}
        # Whether step() ever ran: a scheduler stepped before it warns, as PyTorch's does.
        self._stepped = False
        name = type(self).__name__
        if isinstance(params, Tensor) or isinstance(params, set | frozenset | dict):
            raise TypeError(
                f"{name}: params must be an ordered iterable of Parameters or of parameter-group "
                f"dicts (e.g. model.parameters() or a list), got a {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list; nothing to optimize")
        if not all(isinstance(g, Mapping) for g in groups):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group ``{'params': [...], <option>: value}``; missing options use the defaults."""
        name = type(self).__name__
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        unknown = sorted(set(group) - set(self.defaults) - {"params", "initial_lr"})
        if unknown:
            raise TypeError(
                f"{name}: unknown option(s) {unknown} in a parameter group; "
                f"the options are {sorted(self.defaults)}"
            )
        params = group["params"]
        if isinstance(params, set | frozenset):
            raise TypeError(f"{name}: a group's params must be ordered (a list), not a set")
        params = [params] if isinstance(params, Tensor) else list(params)
        for k, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: group {len(self.param_groups)} item {k} is a "
                    f"{type(p).__name__}, not a Parameter"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: group {len(self.param_groups)} item {k} (shape {p.shape}) is not "
                    "a leaf tensor (it was computed by an op); only leaves can be optimized"
                )
            if p.dtype.kind != "f":
                raise TypeError(
                    f"{name}: group {len(self.param_groups)} item {k} has dtype {p.dtype}; "
                    "only floating-point parameters can be optimized"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(
                f"{name}: a parameter appears twice (in one group or in two groups); "
                "each parameter must be given once"
            )
        new_group = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check_options(new_group)
        new_group["params"] = params
        self.param_groups.append(new_group)

    # ----------------------------------------------------------------- training loop

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``p.grad = None`` (or new zeros if not set_to_none).

        Gradients accumulate over ``backward`` calls, so call this before each one.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    # A new array, not zero_() in place: someone may still hold the old one.
                    p.grad = Tensor(np.zeros_like(p.grad.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given.

        ``closure`` re-evaluates the model and returns the loss (it runs with grad enabled).
        """
        loss = None
        self._stepped = True
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad.data
                    if grad.shape != p.shape:
                        raise ValueError(
                            f"{type(self).__name__}.step: a parameter of shape {p.shape} has a "
                            f"gradient of shape {grad.shape}"
                        )
                    # Compute in the parameter's dtype so float32 stays float32.
                    grad = grad.astype(p.dtype, copy=False)
                    state = self.state.setdefault(p, {})
                    _follow_dtype(state, p.dtype)
                    with writing(p, f"{type(self).__name__}.step") as array:
                        self._update(array, grad, state, group)
        return loss

    def _state_keys(self, group: ParamGroup) -> tuple[str, ...]:
        raise NotImplementedError

    def _check_options(self, group: ParamGroup) -> None:
        raise NotImplementedError

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimizer's state, laid out as PyTorch's.

        ``{'state': {index: {key: array or int}}, 'param_groups': [{option: value, ...,
        'params': [index, ...]}]}``, where parameters are numbered 0, 1, … across the groups
        in order. Parameters without state (never stepped) have no entry. The arrays are
        copies: later steps do not change a state dict already taken.
        """
        index = self._param_index()
        state = {
            index[id(p)]: {key: _copy(value) for key, value in s.items()}
            for p, s in self.state.items()
            if s and id(p) in index
        }
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (hyperparameters included).

        A PyTorch optimizer's ``state_dict()`` loads too, without importing torch: its
        tensors are read with ``.detach().cpu().numpy()``, and the options that only choose
        PyTorch's implementation (``foreach``, ``fused``, ``capturable``, ``differentiable``)
        are dropped; ``maximize=True`` is refused. A scheduler's ``initial_lr`` is kept.

        All or nothing: the groups must match in number and sizes, every state entry must
        have this optimizer's keys and its parameter's shape; otherwise a ValueError lists
        every problem and nothing changes. Arrays are copied and cast to each parameter's dtype.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else None
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with keys 'param_groups' and 'state' "
                f"(from state_dict()), got {type(state_dict).__name__} with keys {keys}"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                f"group(s), this optimizer has {len(self.param_groups)}; nothing changed"
            )
        problems: list[str] = []
        new_groups: list[ParamGroup] = []
        by_index: dict[Any, tuple[Tensor, ParamGroup]] = {}
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            saved_params = list(saved.get("params", []))
            if len(saved_params) != len(group["params"]):
                problems.append(
                    f"group {k} has {len(saved_params)} parameter(s) in the state dict but "
                    f"{len(group['params'])} here"
                )
                continue
            options = _own_options(saved)
            if isinstance(options, str):
                problems.append(f"group {k}: {options}")
                continue
            options = {**self.added_options, **options}
            missing = sorted(set(self.defaults) - set(options))
            unexpected = sorted(set(options) - set(self.defaults) - {"initial_lr"})
            if missing or unexpected:
                problems.append(
                    f"group {k}: missing option(s) {missing}, unexpected option(s) {unexpected}"
                )
                continue
            try:
                self._check_options(options)
            except ValueError as error:
                problems.append(f"group {k}: {error}")
                continue
            new_groups.append({**options, "params": group["params"]})
            for index, param in zip(saved_params, group["params"], strict=True):
                by_index[index] = (param, options)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, saved_state in dict(state_dict["state"]).items():
            if index not in by_index:
                problems.append(f"state for parameter {index!r}, which no group lists")
                continue
            param, options = by_index[index]
            entry = _load_entry(saved_state, param, self._state_keys(options))
            if isinstance(entry, str):
                problems.append(f"state of parameter {index!r}: {entry}")
            else:
                new_state[param] = entry
        if problems:
            raise ValueError(
                f"{name}.load_state_dict: nothing changed, because: " + "; ".join(problems)
            )
        for group, new_group in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(new_group)
        self.state = new_state

    def _param_index(self) -> dict[int, int]:
        params = [p for group in self.param_groups for p in group["params"]]
        return {id(p): i for i, p in enumerate(params)}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            options = ", ".join(f"{key}={v!r}" for key, v in group.items() if key != "params")
            lines.append(f"  group {k}: {len(group['params'])} parameter(s), {options}")
        return "\n".join(lines) + "\n)"


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _follow_dtype(state: dict[str, Any], dtype: np.dtype) -> None:
    """Cast state arrays to the parameter's dtype (after ``model.double()``, say)."""
    for key, value in state.items():
        if isinstance(value, np.ndarray) and value.dtype != dtype:
            state[key] = value.astype(dtype)


# Options of PyTorch's optimizers that choose how, not what, it computes; dropped on loading.
_TORCH_IMPLEMENTATION_OPTIONS = frozenset({"foreach", "fused", "capturable", "differentiable"})


def _own_options(saved: Mapping[str, Any]) -> ParamGroup | str:
    """A saved group's options without 'params' and PyTorch's implementation choices."""
    if saved.get("maximize", False):
        return (
            "maximize=True (PyTorch's gradient ascent) is not supported; minimize the "
            "negated objective instead"
        )
    dropped = _TORCH_IMPLEMENTATION_OPTIONS | {"params", "param_names", "maximize"}
    return {key: value for key, value in saved.items() if key not in dropped}


def _load_entry(saved: Any, param: Tensor, keys: tuple[str, ...]) -> dict[str, Any] | str:
    """A parameter's state checked and copied from a state dict, or what is wrong with it."""
    if not isinstance(saved, Mapping):
        return f"expected a dict, got a {type(saved).__name__}"
    if set(saved) != set(keys):
        return f"expected keys {sorted(keys)}, found {sorted(map(str, saved))}"
    entry: dict[str, Any] = {}
    for key, value in saved.items():
        if key == "step":
            step = value if isinstance(value, int | float) else to_numpy(value)
            step = step.item() if isinstance(step, np.ndarray | np.generic) else step
            if isinstance(step, bool) or not isinstance(step, int | float) or step != int(step):
                return f"'step' must be a whole number, found {value!r}"
            if step < 0:
                return f"'step' must be ≥ 0, found {step}"
            entry[key] = int(step)
            continue
        array = to_numpy(value)
        if array.shape != param.shape:
            return f"{key!r} has shape {array.shape}, the parameter has shape {param.shape}"
        if array.dtype.kind not in "biuf":
            return f"{key!r} has dtype {array.dtype}, expected a number array"
        entry[key] = array.astype(param.dtype, copy=True)
    return entry


def check_number(optimizer: str, option: str, value: Any, low: float = 0.0) -> None:
    """ValueError unless ``value`` is a real number ≥ ``low`` (NaN fails, as in PyTorch)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{optimizer}: {option} must be a number, got {value!r}")
    if not low <= value:
        raise ValueError(f"{optimizer}: invalid {option} {value!r}; it must be ≥ {low}")


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start ← start + weight·(end − start)`` in place, rounded as PyTorch's ``lerp_``.

    PyTorch computes ``end − (end − start)·(1 − weight)`` when weight ≥ 0.5, which is exact
    at weight = 1; following it keeps running averages bit-identical to PyTorch's.
    """
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
