"""Module and Parameter: the containers models are built from, as in PyTorch.

A Module registers every Parameter and sub-Module assigned to it as an attribute, in the
order they are assigned, so ``named_parameters()`` yields dotted names (``"cell.weight_ih"``)
in definition order and ``state_dict()`` / ``load_state_dict()`` can copy weights by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..safety import replace_array, writing
from ..tensor import DEFAULT_DTYPE, Tensor, _to_array, check_device

__all__ = ["Module", "Parameter", "to_numpy"]


def to_numpy(value: Any) -> np.ndarray:
    """The ndarray behind one value of a state dict, whoever made it.

    A Tensor gives its ``data``; an object with ``detach``, ``cpu`` and ``numpy`` methods (a
    PyTorch tensor, read without importing torch) gives ``value.detach().cpu().numpy()``;
    anything else goes through ``np.asarray``. The result may share memory with ``value``.
    """
    if isinstance(value, Tensor):
        return value.data
    if all(callable(getattr(value, method, None)) for method in ("detach", "cpu", "numpy")):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


class Parameter(Tensor):
    """A Tensor that is a model's weight: it always requires grad and a Module registers it."""

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = True) -> None:
        array = _to_array(data, dtype, copy=True)
        if dtype is None and array.dtype.kind != "f":
            array = array.astype(DEFAULT_DTYPE)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclasses define ``__init__`` and ``forward``.

    Calling a module calls ``forward``. ``training`` is True until ``eval()``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------- registration

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        # Replacing a parameter (or sub-module) keeps its place in the definition order.
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        elif value is not None and name in params:
            # PyTorch's error: a plain Tensor here would silently leave parameters().
            raise TypeError(
                f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                "(Parameter or None expected); wrap the value: nn.Parameter(value)"
            )
        elif value is not None and name in modules:
            raise TypeError(
                f"cannot assign '{type(value).__name__}' as child module '{name}' "
                "(Module or None expected)"
            )
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` records an absent optional weight)."""
        if param is None:
            object.__setattr__(self, name, None)
            self._parameters.pop(name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # ----------------------------------------------------------------- traversal

    def named_parameters(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, in definition order.

        A parameter shared by several modules (tied weights) comes once, under its first
        name, unless ``remove_duplicate=False`` (as ``state_dict`` uses: every name).
        """
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix, remove_duplicate):
            for name, param in module._parameters.items():
                if not remove_duplicate or id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names (a shared one
        once, unless ``remove_duplicate=False``)."""
        stack: list[tuple[str, Module]] = [(prefix, self)]
        seen: set[int] = set()
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    # ----------------------------------------------------------------- training state

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) on this module and all sub-modules."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the gradients of all parameters (set them to None)."""
        for param in self.parameters():
            param.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """Convert every parameter (in place, keeping the Parameter objects) to ``dtype``:
        ``to(dtype)``, ``to('cpu')`` or ``to('cpu', dtype)`` as in PyTorch (the only device
        is the CPU)."""
        for arg in args:
            if isinstance(arg, str) or type(arg).__name__ == "device":
                device = arg
            else:
                dtype = arg
        check_device("to", device)
        if dtype is None:
            return self
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: parameters must stay floating point, got dtype {dtype}")
        params = list(self.parameters())
        for param in params:
            replace_array(param, param.data.astype(dtype), f"to({dtype})")
            if param.grad is not None:
                param.grad = Tensor(param.grad.data.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict[str, np.ndarray]:
        """Name → a copy of each parameter's array, in definition order."""
        named = self.named_parameters(remove_duplicate=False)  # tied weights under every name
        return {name: param.data.copy() for name, param in named}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters of the same name, cast to each one's dtype.

        Values may be arrays, Tensors, or the tensors of a PyTorch module's ``state_dict()``
        (read with ``.detach().cpu().numpy()``; torch is not imported), so weights trained
        in PyTorch load directly into the layer with the same parameter names.

        All or nothing, as PyTorch's error says: any mis-shaped or non-numeric entry (or,
        when ``strict``, any missing or unexpected key) raises a RuntimeError naming every
        offending key with the expected and found shapes, and no parameter is changed.
        """
        own = dict(self.named_parameters(remove_duplicate=False))
        problems: list[str] = []
        if strict:
            problems += [
                f"missing key {name!r} (expected shape {own[name].shape})"
                for name in own
                if name not in state
            ]
            problems += [f"unexpected key {name!r}" for name in state if name not in own]
        updates: dict[str, np.ndarray] = {}
        for name, value in state.items():
            if name not in own:
                continue
            array = to_numpy(value)
            if array.shape != own[name].shape:
                problems.append(
                    f"key {name!r}: expected shape {own[name].shape}, found {array.shape}"
                )
                continue
            if array.dtype.kind not in "biuf":
                problems.append(f"key {name!r}: dtype {array.dtype} is not a number type")
                continue
            updates[name] = array.astype(own[name].dtype, copy=True)
        if problems:
            raise RuntimeError(
                f"load_state_dict: error(s) loading {type(self).__name__}, nothing changed: "
                + "; ".join(problems)
            )
        for name, array in updates.items():
            with writing(own[name], f"load_state_dict ({name!r})") as target:
                target[...] = array

    # ----------------------------------------------------------------- calling, printing

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_lines = repr(child).splitlines()
            lines.append(f"  ({name}): " + child_lines[0])
            lines += ["  " + line for line in child_lines[1:]]
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"
