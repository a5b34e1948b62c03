"""What a student types by habit from PyTorch either does what PyTorch does or says what to write.

``HABITS`` is a table of small programs. Each one runs on ``tinygrad_seq`` and is checked
against a float64 numpy reference (always) and against the same program run on PyTorch (when
torch is installed): the same values, dtypes and structure, and, for differentiable habits,
the same gradients (against central differences of the reference, and against PyTorch's).
A program receives the library as ``lib`` (``tinygrad_seq`` or ``torch``) and its inputs as
that library's tensors, so the one program is both sides of the comparison.

``REFUSALS`` are habits whose PyTorch meaning this project does not give: each must raise an
error whose message names what to write, and where PyTorch has an answer, what the message
suggests must give that answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tinygrad_seq as ts

_rng = np.random.default_rng(12)
X = _rng.permutation(np.linspace(-2.0, 2.0, 6)).reshape(2, 3)  # distinct: no ties in max
Y = _rng.uniform(-2, 2, (2, 3))
X3 = _rng.uniform(-2, 2, (2, 3, 4))
V = _rng.uniform(-2, 2, 3)
W = _rng.uniform(-1, 1, (4, 3))
BIAS = _rng.uniform(-1, 1, 4)
TARGET = np.array([2, 0])
PADDED_TARGET = np.array([2, -100])
MASK = np.array([[True, False, False], [False, True, False]])
INDEX = np.array([[2, 0], [1, 1]])
INTS = np.array([7, -7, 3])


@dataclass(frozen=True)
class Habit:
    """``program(lib, *tensors)`` against ``reference(*arrays)`` (numpy, float64).

    ``grad``: differentiate the first tensor output w.r.t. the floating inputs.
    ``pytorch``: False for a numpy habit, which PyTorch spells otherwise.
    """

    name: str
    program: Callable[..., Any]
    reference: Callable[..., Any]
    inputs: tuple[np.ndarray, ...] = (X,)
    grad: bool = False
    pytorch: bool = True


def _np_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    return np.log(_np_softmax(a, axis))


def _np_nll(log_probs: np.ndarray, target: np.ndarray, reduction: str = "mean") -> Any:
    valid = target != -100
    picked = -log_probs[np.arange(len(target)), np.where(valid, target, 0)] * valid
    return {"none": picked, "sum": picked.sum(), "mean": picked.sum() / valid.sum()}[reduction]


def _np_max_dim(a: np.ndarray, axis: int, keepdims: bool = False) -> tuple:
    return a.max(axis=axis, keepdims=keepdims), a.argmax(axis=axis, keepdims=keepdims)


def _np_min_dim(a: np.ndarray, axis: int) -> tuple:
    return a.min(axis=axis), a.argmin(axis=axis)


def _names(module: Any) -> list[str]:
    return [name for name, _ in module.named_parameters()]


def _with_grad(lib: Any, x: Any) -> Any:
    """x² summed, backpropagated: the leaf's ``.grad``."""
    x.requires_grad_()
    (x * x).sum().backward()
    return x.grad


def _no_grad_result(lib: Any, x: Any) -> bool:
    x.requires_grad_()
    with lib.no_grad():
        y = x * 2
    return y.requires_grad


def _module_list(lib: Any) -> Any:
    nn = lib.nn

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)])
            self.heads = nn.ModuleDict({"tag": nn.Linear(2, 5), "score": nn.Linear(2, 1)})

    return Stack()


def _grown_list(lib: Any) -> tuple:
    layers = lib.nn.ModuleList()
    layers.append(lib.nn.Linear(2, 2))
    layers.extend([lib.nn.Tanh(), lib.nn.Linear(2, 1)])
    return len(layers), len(layers[1:]), [type(m).__name__ for m in layers[:2]]


def _replaced_in_list(lib: Any) -> list[str]:
    layers = lib.nn.ModuleList([lib.nn.Linear(2, 2), lib.nn.Tanh()])
    layers[0] = lib.nn.ReLU()
    return [type(m).__name__ for m in layers]


def _edited_dict(lib: Any) -> tuple:
    heads = lib.nn.ModuleDict({"a": lib.nn.Tanh(), "b": lib.nn.Linear(2, 1)})
    had_a = "a" in heads
    del heads["a"]
    return had_a, "a" in heads, list(heads), len(list(heads.parameters()))


def _lstm_shapes(lib: Any, x: Any) -> tuple:
    out, (h, c) = lib.nn.LSTM(4, 5, num_layers=2, batch_first=True)(x.float())
    return out.shape, h.shape, c.shape


def _gru_shapes(lib: Any, x: Any) -> tuple:
    out, h = lib.nn.GRU(4, 5, bidirectional=True)(x.float())
    return out.shape, h.shape


def _modes(lib: Any) -> tuple:
    model = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Dropout(0.5))
    modes = [model.eval().training, model[1].training, model.train().training]
    return (*modes, model[1].training)


def _zeroed_grad(lib: Any) -> Any:
    layer = lib.nn.Linear(3, 2)
    layer(lib.ones(4, 3)).sum().backward()
    had_grad = layer.weight.grad is not None
    layer.zero_grad()
    return had_grad, layer.weight.grad is None


def _augmented(lib: Any, x: Any) -> tuple:
    y = x * 1
    alias = y
    y += 1.5
    return y, y is alias


def _row_written(lib: Any, x: Any) -> Any:
    y = x * 1
    y[0] = 0.25
    return y


def _lecture_update(lib: Any, x: Any) -> tuple:
    p = x.detach().clone().requires_grad_(True)
    alias = p
    (p * p).sum().backward()
    with lib.no_grad():
        p -= 0.1 * p.grad
    return p.detach(), p is alias


HABITS = [
    # ------------------------------------------------------------- sizes and shapes
    Habit("size()", lambda lib, x: x.size(), lambda a: a.shape),
    Habit("size(0)", lambda lib, x: x.size(0), lambda a: a.shape[0]),
    Habit("size(-1)", lambda lib, x: x.size(-1), lambda a: a.shape[-1]),
    Habit("size is numpy's count", lambda lib, x: x.size, lambda a: a.size, pytorch=False),
    Habit("shape", lambda lib, x: x.shape, lambda a: a.shape),
    Habit("size() of 0-d", lambda lib, x: x.sum().size(), lambda a: ()),
    Habit("numel()", lambda lib, x: x.numel(), lambda a: a.size),
    Habit("dim()", lambda lib, x: x.dim(), lambda a: a.ndim),
    Habit("len(x)", lambda lib, x: len(x), lambda a: len(a)),
    Habit("tolist()", lambda lib, x: x.tolist(), lambda a: a.tolist()),
    Habit("item()", lambda lib, x: x.sum().item(), lambda a: a.sum().item()),
    # ------------------------------------------------------------- reductions with dim
    Habit("sum()", lambda lib, x: x.sum(), lambda a: a.sum(), grad=True),
    Habit("sum(dim=1)", lambda lib, x: x.sum(dim=1), lambda a: a.sum(1), grad=True),
    Habit(
        "sum(1, keepdim)", lambda lib, x: x.sum(1, keepdim=True), lambda a: a.sum(1, keepdims=True)
    ),
    Habit("sum(dim=(0, 1))", lambda lib, x: x.sum(dim=(0, 1)), lambda a: a.sum((0, 1))),
    Habit("lib.sum(x, dim)", lambda lib, x: lib.sum(x, dim=0), lambda a: a.sum(0), grad=True),
    Habit(
        "mean(dim=-1, keepdim)",
        lambda lib, x: x.mean(dim=-1, keepdim=True),
        lambda a: a.mean(-1, keepdims=True),
        grad=True,
    ),
    Habit("lib.mean(x, dim)", lambda lib, x: lib.mean(x, dim=1), lambda a: a.mean(1)),
    Habit("var() unbiased", lambda lib, x: x.var(), lambda a: a.var(ddof=1), grad=True),
    Habit("var(dim=0)", lambda lib, x: x.var(dim=0), lambda a: a.var(0, ddof=1), grad=True),
    Habit("var(correction=0)", lambda lib, x: x.var(dim=1, correction=0), lambda a: a.var(1)),
    Habit(
        "var(dim=1, unbiased=False)",
        lambda lib, x: x.var(dim=1, unbiased=False),
        lambda a: a.var(1),
        grad=True,
    ),
    Habit("std(unbiased=False)", lambda lib, x: x.std(unbiased=False), lambda a: a.std()),
    Habit(
        "lib.var(x, 0, unbiased=True)",
        lambda lib, x: lib.var(x, 0, unbiased=True),
        lambda a: a.var(0, ddof=1),
    ),
    Habit("var(ddof=0) numpy", lambda lib, x: x.var(ddof=0), lambda a: a.var(), pytorch=False),
    Habit("std()", lambda lib, x: x.std(), lambda a: a.std(ddof=1), grad=True),
    Habit(
        "std(dim=1, keepdim)",
        lambda lib, x: x.std(dim=1, keepdim=True),
        lambda a: a.std(1, ddof=1, keepdims=True),
        grad=True,
    ),
    Habit(
        "logsumexp(dim=1)",
        lambda lib, x: x.logsumexp(dim=1),
        lambda a: np.log(np.exp(a).sum(1)),
        grad=True,
    ),
    Habit(
        "lib.logsumexp(x, dim)",
        lambda lib, x: lib.logsumexp(x, dim=0),
        lambda a: np.log(np.exp(a).sum(0)),
    ),
    Habit("max()", lambda lib, x: x.max(), lambda a: a.max(), grad=True),
    Habit("max(dim=1)", lambda lib, x: x.max(dim=1), lambda a: _np_max_dim(a, 1), grad=True),
    Habit(
        "max(dim=0, keepdim)",
        lambda lib, x: x.max(dim=0, keepdim=True),
        lambda a: _np_max_dim(a, 0, True),
        grad=True,
    ),
    Habit(
        "max(dim).values, .indices",
        lambda lib, x: (lambda r: (r.values, r.indices))(x.max(dim=1)),
        lambda a: _np_max_dim(a, 1),
    ),
    Habit(
        "values, indices = max(dim)",
        lambda lib, x: tuple(x.max(dim=-1)),
        lambda a: _np_max_dim(a, -1),
    ),
    Habit(
        "max(dim=1)[0] for the values",
        lambda lib, x: x.max(dim=1)[0],
        lambda a: a.max(1),
        grad=True,
    ),
    Habit("min(dim=0)", lambda lib, x: x.min(dim=0), lambda a: _np_min_dim(a, 0), grad=True),
    Habit("lib.max(x, dim=1)", lambda lib, x: lib.max(x, dim=1), lambda a: _np_max_dim(a, 1)),
    Habit("lib.max(a, b)", lambda lib, x, y: lib.max(x, y), np.maximum, (X, Y), grad=True),
    Habit("lib.min(a, b)", lambda lib, x, y: lib.min(x, y), np.minimum, (X, Y), grad=True),
    Habit(
        "max(axis=1) numpy values", lambda lib, x: x.max(axis=1), lambda a: a.max(1), pytorch=False
    ),
    Habit("amax(dim=1)", lambda lib, x: x.amax(dim=1), lambda a: a.max(1), grad=True),
    Habit("amin(1)", lambda lib, x: x.amin(1), lambda a: a.min(1)),
    Habit("argmax()", lambda lib, x: x.argmax(), lambda a: a.argmax()),
    Habit("argmax(dim=1)", lambda lib, x: x.argmax(dim=1), lambda a: a.argmax(1)),
    Habit(
        "argmin(dim=0, keepdim)",
        lambda lib, x: x.argmin(dim=0, keepdim=True),
        lambda a: a.argmin(0, keepdims=True),
    ),
    Habit("lib.argmax(x, dim)", lambda lib, x: lib.argmax(x, dim=1), lambda a: a.argmax(1)),
    Habit(
        "(x > 0).all(), .any(dim=1)",
        lambda lib, x: ((x > -3).all(), (x > 1).any(dim=1)),
        lambda a: (np.all(a > -3), np.any(a > 1, axis=1)),
    ),
    Habit(
        "if (x > 0).any(): as a condition",
        lambda lib, x: bool((x > 1.9).any()),
        lambda a: bool(np.any(a > 1.9)),
    ),
    Habit("(x > 0).sum() counts", lambda lib, x: (x > 0).sum(), lambda a: (a > 0).sum()),
    Habit(
        "accuracy (x > 0).float().mean()",
        lambda lib, x: (x > 0).float().mean(),
        lambda a: (a > 0).astype(np.float32).mean(dtype=np.float32),
    ),
    # ------------------------------------------------------------- softmax family
    Habit(
        "softmax(dim=1)", lambda lib, x: x.softmax(dim=1), lambda a: _np_softmax(a, 1), grad=True
    ),
    Habit(
        "lib.softmax(x, dim=0)",
        lambda lib, x: lib.softmax(x, dim=0),
        lambda a: _np_softmax(a, 0),
        grad=True,
    ),
    Habit(
        "F.softmax(x, dim=-1)",
        lambda lib, x: lib.nn.functional.softmax(x, dim=-1),
        lambda a: _np_softmax(a, -1),
        grad=True,
    ),
    Habit(
        "F.log_softmax(x, 1)",
        lambda lib, x: lib.nn.functional.log_softmax(x, 1),
        lambda a: _np_log_softmax(a, 1),
        grad=True,
    ),
    Habit(
        "F.softmax on 3-d, dim=2",
        lambda lib, x: lib.nn.functional.softmax(x, dim=2),
        lambda a: _np_softmax(a, 2),
        (X3,),
        grad=True,
    ),
    Habit(
        "nn.Softmax(dim=1)",
        lambda lib, x: lib.nn.Softmax(dim=1)(x),
        lambda a: _np_softmax(a, 1),
        grad=True,
    ),
    Habit(
        "F.softmax of 2-d without dim",
        lambda lib, x: lib.nn.functional.softmax(x),
        lambda a: _np_softmax(a, -1),
        grad=True,
    ),
    Habit(
        "nn.LogSoftmax(dim=0)",
        lambda lib, x: lib.nn.LogSoftmax(dim=0)(x),
        lambda a: _np_log_softmax(a, 0),
        grad=True,
    ),
    # ------------------------------------------------------------- losses
    Habit(
        "F.cross_entropy",
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
        lambda a, t: _np_nll(_np_log_softmax(a, 1), t),
        (X, TARGET),
        grad=True,
    ),
    Habit(
        "F.cross_entropy ignore_index",
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
        lambda a, t: _np_nll(_np_log_softmax(a, 1), t),
        (X, PADDED_TARGET),
        grad=True,
    ),
    Habit(
        "nn.CrossEntropyLoss()",
        lambda lib, x, t: lib.nn.CrossEntropyLoss()(x, t),
        lambda a, t: _np_nll(_np_log_softmax(a, 1), t),
        (X, TARGET),
        grad=True,
    ),
    Habit(
        "nn.CrossEntropyLoss(reduction='sum')",
        lambda lib, x, t: lib.nn.CrossEntropyLoss(reduction="sum")(x, t),
        lambda a, t: _np_nll(_np_log_softmax(a, 1), t, "sum"),
        (X, TARGET),
        grad=True,
    ),
    Habit(
        "F.nll_loss(F.log_softmax)",
        lambda lib, x, t: lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(x, dim=1), t),
        lambda a, t: _np_nll(_np_log_softmax(a, 1), t),
        (X, TARGET),
        grad=True,
    ),
    Habit(
        "nn.NLLLoss(reduction='none')",
        lambda lib, x, t: lib.nn.NLLLoss(reduction="none")(x, t),
        lambda a, t: _np_nll(a, t, "none"),
        (X, TARGET),
        grad=True,
    ),
    Habit(
        "nn.MSELoss()",
        lambda lib, x, y: lib.nn.MSELoss()(x, y),
        lambda a, b: ((a - b) ** 2).mean(),
        (X, Y),
        grad=True,
    ),
    Habit(
        "F.mse_loss(reduction='sum')",
        lambda lib, x, y: lib.nn.functional.mse_loss(x, y, reduction="sum"),
        lambda a, b: ((a - b) ** 2).sum(),
        (X, Y),
        grad=True,
    ),
    # ------------------------------------------------------------- nn modules and functions
    Habit("nn.Tanh()", lambda lib, x: lib.nn.Tanh()(x), np.tanh, grad=True),
    Habit("nn.ReLU()", lambda lib, x: lib.nn.ReLU()(x), lambda a: np.maximum(a, 0), grad=True),
    Habit(
        "nn.Sigmoid()",
        lambda lib, x: lib.nn.Sigmoid()(x),
        lambda a: 1 / (1 + np.exp(-a)),
        grad=True,
    ),
    Habit("nn.Identity()", lambda lib, x: lib.nn.Identity(54, unused=1)(x), lambda a: a, grad=True),
    Habit(
        "nn.Flatten()",
        lambda lib, x: lib.nn.Flatten()(x),
        lambda a: a.reshape(2, 12),
        (X3,),
        grad=True,
    ),
    Habit(
        "nn.Flatten(0, 1)", lambda lib, x: lib.nn.Flatten(0, 1)(x), lambda a: a.reshape(6, 4), (X3,)
    ),
    Habit(
        "F.relu / F.tanh / F.sigmoid",
        lambda lib, x: (
            lib.nn.functional.relu(x) + lib.nn.functional.tanh(x) + lib.nn.functional.sigmoid(x)
        ),
        lambda a: np.maximum(a, 0) + np.tanh(a) + 1 / (1 + np.exp(-a)),
        grad=True,
    ),
    Habit(
        "F.linear(x, w, b)",
        lambda lib, x, w, b: lib.nn.functional.linear(x, w, b),
        lambda a, w, b: a @ w.T + b,
        (X, W, BIAS),
        grad=True,
    ),
    Habit(
        "F.dropout(training=False)",
        lambda lib, x: lib.nn.functional.dropout(x, 0.5, training=False),
        lambda a: a,
    ),
    Habit(
        "F.embedding(idx, w)",
        lambda lib, i, w: lib.nn.functional.embedding(i, w),
        lambda i, w: w[i],
        (INDEX, W),
        grad=True,
    ),
    Habit(
        "ModuleList/ModuleDict names",
        lambda lib: _names(_module_list(lib)),
        lambda: [
            "layers.0.weight",
            "layers.0.bias",
            "layers.2.weight",
            "layers.2.bias",
            "heads.tag.weight",
            "heads.tag.bias",
            "heads.score.weight",
            "heads.score.bias",
        ],
        (),
    ),
    Habit(
        "len(ModuleList), ModuleDict keys",
        lambda lib: (len(_module_list(lib).layers), list(_module_list(lib).heads.keys())),
        lambda: (3, ["tag", "score"]),
        (),
    ),
    Habit(
        "Sequential(Linear, Tanh) names",
        lambda lib: _names(
            lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 1))
        ),
        lambda: ["0.weight", "0.bias", "2.weight", "2.bias"],
        (),
    ),
    Habit(
        "nn.LSTM(num_layers=2) names",
        lambda lib: _names(lib.nn.LSTM(3, 4, num_layers=2, bidirectional=True)),
        lambda: [
            f"{kind}_l{layer}{suffix}"
            for layer in (0, 1)
            for suffix in ("", "_reverse")
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ],
        (),
    ),
    Habit(
        "out, (h, c) = nn.LSTM(batch_first)(x)",
        _lstm_shapes,
        lambda a: ((2, 3, 5), (2, 2, 5), (2, 2, 5)),
        (X3,),
    ),
    Habit(
        "out, h = nn.GRU(bidirectional)(x)", _gru_shapes, lambda a: ((2, 3, 10), (2, 3, 5)), (X3,)
    ),
    Habit(
        "nn.Linear(3, 4) shapes, numel",
        lambda lib: (
            lib.nn.Linear(3, 4).weight.shape,
            sum(p.numel() for p in lib.nn.Linear(3, 4).parameters()),
        ),
        lambda: ((4, 3), 16),
        (),
    ),
    Habit(
        "nn.Embedding(10, 3)(idx).shape",
        lambda lib, i: lib.nn.Embedding(10, 3)(i).shape,
        lambda i: (2, 2, 3),
        (INDEX,),
    ),
    Habit("eval() / train() reach every module", _modes, lambda: (False, False, True, True), ()),
    Habit(
        "Dropout in eval() is the identity",
        lambda lib, x: lib.nn.Dropout(0.5).eval()(x),
        lambda a: a,
        grad=True,
    ),
    Habit("zero_grad() sets grads to None", _zeroed_grad, lambda: (True, True), ()),
    Habit("ModuleList append, extend, slice", _grown_list, lambda: (3, 2, ["Linear", "Tanh"]), ()),
    Habit("ModuleList[i] = module", _replaced_in_list, lambda: ["ReLU", "Tanh"], ()),
    Habit("ModuleDict keys, in, del", _edited_dict, lambda: (True, False, ["b"], 2), ()),
    # ------------------------------------------------------------- joining and splitting
    Habit(
        "lib.cat(dim=1)",
        lambda lib, x, y: lib.cat([x, y], dim=1),
        lambda a, b: np.concatenate([a, b], 1),
        (X, Y),
        grad=True,
    ),
    Habit(
        "lib.stack(dim=1)",
        lambda lib, x, y: lib.stack((x, y), dim=1),
        lambda a, b: np.stack([a, b], 1),
        (X, Y),
        grad=True,
    ),
    Habit("split(2, dim=1)", lambda lib, x: x.split(2, dim=1), lambda a: (a[:, :2], a[:, 2:])),
    Habit(
        "split([1, 2], dim=1)",
        lambda lib, x: x.split([1, 2], dim=1),
        lambda a: (a[:, :1], a[:, 1:]),
    ),
    Habit("chunk(2, dim=0)", lambda lib, x: x.chunk(2, dim=0), lambda a: (a[:1], a[1:])),
    Habit(
        "lib.split(x, 1, dim=0)", lambda lib, x: lib.split(x, 1, dim=0), lambda a: (a[:1], a[1:])
    ),
    Habit(
        "lib.chunk(x, 3, dim=1)",
        lambda lib, x: lib.chunk(x, 3, dim=1),
        lambda a: (a[:, :1], a[:, 1:2], a[:, 2:]),
    ),
    # ------------------------------------------------------------- shape changes
    Habit("unsqueeze(0)", lambda lib, x: x.unsqueeze(0), lambda a: a[None]),
    Habit(
        "unsqueeze(dim=-1)", lambda lib, x: x.unsqueeze(dim=-1), lambda a: a[..., None], grad=True
    ),
    Habit("squeeze()", lambda lib, x: x.unsqueeze(1).squeeze(), lambda a: a),
    Habit("squeeze(dim=0)", lambda lib, x: x[None].squeeze(dim=0), lambda a: a, grad=True),
    Habit("lib.squeeze(x, 1)", lambda lib, x: lib.squeeze(x[:, None], 1), lambda a: a),
    Habit("transpose(0, 1)", lambda lib, x: x.transpose(0, 1), lambda a: a.T, grad=True),
    Habit(
        "transpose(1, 2) of 3-d",
        lambda lib, x: x.transpose(1, 2),
        lambda a: a.swapaxes(1, 2),
        (X3,),
        grad=True,
    ),
    Habit("t()", lambda lib, x: x.t(), lambda a: a.T, grad=True),
    Habit("t() of 1-d", lambda lib, v: v.t(), lambda a: a, (V,)),
    Habit(".T", lambda lib, x: x.T, lambda a: a.T),
    Habit(".T of 3-d reverses every axis", lambda lib, x: x.T, lambda a: a.T, (X3,), grad=True),
    Habit(".mT of 3-d", lambda lib, x: x.mT, lambda a: a.swapaxes(-1, -2), (X3,), grad=True),
    Habit(
        "permute(2, 0, 1)",
        lambda lib, x: x.permute(2, 0, 1),
        lambda a: a.transpose(2, 0, 1),
        (X3,),
        grad=True,
    ),
    Habit("view(-1)", lambda lib, x: x.view(-1), lambda a: a.reshape(-1), grad=True),
    Habit("view(3, -1)", lambda lib, x: x.view(3, -1), lambda a: a.reshape(3, -1)),
    Habit(
        "contiguous().view(-1)",
        lambda lib, x: x.t().contiguous().view(-1),
        lambda a: a.T.reshape(-1),
    ),
    Habit("reshape((3, 2))", lambda lib, x: x.reshape((3, 2)), lambda a: a.reshape(3, 2)),
    Habit("view_as", lambda lib, x, y: x.view_as(y.t()), lambda a, b: a.reshape(b.T.shape), (X, Y)),
    Habit("flatten()", lambda lib, x: x.flatten(), lambda a: a.reshape(-1), (X3,)),
    Habit("flatten(1)", lambda lib, x: x.flatten(1), lambda a: a.reshape(2, -1), (X3,), grad=True),
    Habit("repeat(2, 1)", lambda lib, x: x.repeat(2, 1), lambda a: np.tile(a, (2, 1)), grad=True),
    Habit(
        "repeat(2, 1, 3) adds an axis",
        lambda lib, x: x.repeat(2, 1, 3),
        lambda a: np.tile(a, (2, 1, 3)),
        grad=True,
    ),
    Habit(
        "expand(4, 2, 3)",
        lambda lib, x: x.expand(4, 2, 3),
        lambda a: np.broadcast_to(a, (4, 2, 3)),
        grad=True,
    ),
    Habit(
        "expand_as",
        lambda lib, v, x: v.expand_as(x),
        lambda a, b: np.broadcast_to(a, b.shape),
        (V, X),
        grad=True,
    ),
    # ------------------------------------------------------------- picking and masking
    Habit(
        "gather(1, idx)",
        lambda lib, x, i: x.gather(1, i),
        lambda a, i: np.take_along_axis(a, i, 1),
        (X, INDEX),
        grad=True,
    ),
    Habit(
        "masked_fill(mask, 0.0)",
        lambda lib, x, m: x.masked_fill(m, 0.0),
        lambda a, m: np.where(m, 0.0, a),
        (X, MASK),
        grad=True,
    ),
    Habit(
        "masked_fill(-inf) then softmax",
        lambda lib, x, m: x.masked_fill(m, float("-inf")).softmax(dim=-1),
        lambda a, m: _np_softmax(np.where(m, -np.inf, a), -1),
        (X, MASK),
        grad=True,
    ),
    Habit(
        "lib.where(cond, a, b)",
        lambda lib, x, y: lib.where(x > y, x, y),
        lambda a, b: np.where(a > b, a, b),
        (X, Y),
        grad=True,
    ),
    Habit("clamp(min=0)", lambda lib, x: x.clamp(min=0), lambda a: np.maximum(a, 0), grad=True),
    Habit("clamp(-1, 1)", lambda lib, x: x.clamp(-1, 1), lambda a: np.clip(a, -1, 1), grad=True),
    Habit("x[:, 1]", lambda lib, x: x[:, 1], lambda a: a[:, 1], grad=True),
    Habit(
        "x[idx] repeated rows", lambda lib, w, i: w[i], lambda w, i: w[i], (W, INTS % 4), grad=True
    ),
    # ------------------------------------------------------------- dtypes, devices, factories
    Habit("to(lib.float32)", lambda lib, x: x.to(lib.float32), lambda a: a.astype(np.float32)),
    Habit("to('cpu')", lambda lib, x: x.to("cpu"), lambda a: a, grad=True),
    Habit(
        "to('cpu', float32)",
        lambda lib, x: x.to("cpu", lib.float32),
        lambda a: a.astype(np.float32),
    ),
    Habit("to(other)", lambda lib, i, x: i.to(x), lambda i, a: i.astype(a.dtype), (INTS, X)),
    Habit("to(device=x.device)", lambda lib, x: x.to(device=x.device), lambda a: a),
    Habit("cpu().detach().numpy()", lambda lib, x: x.cpu().detach().numpy(), lambda a: a),
    Habit(
        "float(), double(), long()",
        lambda lib, x: (x.float(), x.float().double(), x.long()),
        lambda a: (
            a.astype(np.float32),
            a.astype(np.float32).astype(np.float64),
            a.astype(np.int64),
        ),
    ),
    Habit("type(lib.float32)", lambda lib, x: x.type(lib.float32), lambda a: a.astype(np.float32)),
    Habit("type_as", lambda lib, i, x: i.type_as(x), lambda i, a: i.astype(a.dtype), (INTS, X)),
    Habit(
        "new_zeros / new_ones",
        lambda lib, x: (x.new_zeros(2, 3), x.new_ones((4,))),
        lambda a: (np.zeros((2, 3)), np.ones(4)),
    ),
    Habit(
        "new_full / new_tensor",
        lambda lib, x: (x.new_full((2,), 7.0), x.new_tensor([1, 2])),
        lambda a: (np.full(2, 7.0), np.array([1.0, 2.0])),
    ),
    Habit(
        "lib.tensor float list is float32",
        lambda lib: lib.tensor([1.0, 2.0]),
        lambda: np.array([1.0, 2.0], np.float32),
        (),
    ),
    Habit("lib.zeros(2, 3)", lambda lib: lib.zeros(2, 3), lambda: np.zeros((2, 3), np.float32), ()),
    Habit(
        "lib.full((2, 3), 7.0)",
        lambda lib: lib.full((2, 3), 7.0),
        lambda: np.full((2, 3), 7.0, np.float32),
        (),
    ),
    Habit(
        "dtype=lib.long targets",
        lambda lib: lib.tensor([2, 0], dtype=lib.long),
        lambda: np.array([2, 0]),
        (),
    ),
    Habit(
        "lib.zeros(2, dtype=lib.bool)",
        lambda lib: lib.zeros(2, dtype=lib.bool),
        lambda: np.zeros(2, bool),
        (),
    ),
    Habit(
        "to(lib.double), to(lib.float), to(lib.int)",
        lambda lib, x: (x.to(lib.double), x.to(lib.float), x.to(lib.int)),
        lambda a: (a, a.astype(np.float32), a.astype(np.int32)),
    ),
    Habit("lib.arange(5)", lambda lib: lib.arange(5), lambda: np.arange(5), ()),
    Habit(
        "lib.zeros_like / ones_like",
        lambda lib, x: (lib.zeros_like(x), lib.ones_like(x)),
        lambda a: (np.zeros_like(a), np.ones_like(a)),
    ),
    # ------------------------------------------------------------- arithmetic
    Habit(
        "add / sub / mul / div / pow",
        lambda lib, x, y: (x.add(y), x.sub(y), x.mul(2.0), x.div(y), x.pow(2)),
        lambda a, b: (a + b, a - b, a * 2, a / b, a**2),
        (X, Y),
        grad=True,
    ),
    Habit(
        "x @ w.T + b",
        lambda lib, x, w, b: x @ w.T + b,
        lambda a, w, b: a @ w.T + b,
        (X, W, BIAS),
        grad=True,
    ),
    Habit(
        "lib.matmul",
        lambda lib, x, w: lib.matmul(x, w.t()),
        lambda a, w: a @ w.T,
        (X, W),
        grad=True,
    ),
    Habit("int // int floors", lambda lib, i: i // 2, lambda i: i // 2, (INTS,)),
    Habit("int // tensor floors", lambda lib, i: 7 // i, lambda i: 7 // i, (INTS,)),
    Habit("float // int floors", lambda lib, x: x // 1, lambda a: np.floor(a)),
    Habit(
        "int / 2 gives float32",
        lambda lib, i: i / 2,
        lambda i: i.astype(np.float32) / np.float32(2),
        (INTS,),
    ),
    Habit(
        "x += y is in place",
        lambda lib, x: _augmented(lib, x),
        lambda a: (a + 1.5, True),
    ),
    Habit(
        "x[0] = v writes a row",
        lambda lib, x: _row_written(lib, x),
        lambda a: np.concatenate([np.full((1,) + a.shape[1:], 0.25), a[1:]]),
    ),
    Habit(
        "no_grad update p -= lr * p.grad",
        lambda lib, x: _lecture_update(lib, x),
        lambda a: (a - 0.1 * 2 * a, True),
    ),
    Habit(
        "int.float() / 2",
        lambda lib, i: i.float() / 2,
        lambda i: i.astype(np.float32) / np.float32(2),
        (INTS,),
    ),
    Habit(
        "lib.exp / tanh / sigmoid",
        lambda lib, x: lib.exp(x) + lib.tanh(x) + lib.sigmoid(x),
        lambda a: np.exp(a) + np.tanh(a) + 1 / (1 + np.exp(-a)),
        grad=True,
    ),
    # ------------------------------------------------------------- autograd habits
    Habit("backward then .grad", _with_grad, lambda a: 2 * a),
    Habit("no_grad()", _no_grad_result, lambda a: False),
    Habit(
        "detach() cuts the graph",
        lambda lib, x: (x.requires_grad_() * 1).detach().requires_grad,
        lambda a: False,
    ),
    Habit(
        "requires_grad_() flows on",
        lambda lib, x: (x.requires_grad_() * 1).requires_grad,
        lambda a: True,
    ),
]

# --------------------------------------------------------------------------- refusals


@dataclass(frozen=True)
class Refusal:
    """``program`` must raise ``error`` whose message contains ``says`` (what to write).

    ``instead``: the spelling the message suggests, which must give what ``program`` gives
    on PyTorch (checked when torch is installed).
    """

    name: str
    program: Callable[..., Any]
    says: str
    inputs: tuple[np.ndarray, ...] = (X,)
    error: type[Exception] = Exception
    instead: Callable[..., Any] | None = None


REFUSALS = [
    Refusal(
        "max(1)",
        lambda lib, x: x.max(1),
        "max(dim=1)",
        error=TypeError,
        instead=lambda lib, x: x.max(dim=1),
    ),
    Refusal(
        "min(0, keepdim)",
        lambda lib, x: x.min(0, keepdim=True),
        "min(dim=0)",
        error=TypeError,
        instead=lambda lib, x: x.min(dim=0, keepdim=True),
    ),
    Refusal(
        "lib.max(x, 1)",
        lambda lib, x: lib.max(x, 1),
        "max(dim=1)",
        error=TypeError,
        instead=lambda lib, x: lib.max(x, dim=1),
    ),
    Refusal(
        "both axis= and dim=", lambda lib, x: x.sum(axis=1, dim=1), "give one", error=TypeError
    ),
    Refusal("to('cuda')", lambda lib, x: x.to("cuda"), "to('cpu')", error=ValueError),
    Refusal("cuda()", lambda lib, x: x.cuda(), ".cpu()", error=ValueError),
    Refusal("type() without dtype", lambda lib, x: x.type(), "x.dtype", error=TypeError),
    Refusal(
        "numpy's transpose(2, 0, 1)",
        lambda lib, x: x.transpose(2, 0, 1),
        "permute(2, 0, 1)",
        (X3,),
        TypeError,
    ),
    Refusal("t() of 3-d", lambda lib, x: x.t(), "transpose(dim0, dim1)", (X3,), ValueError),
    Refusal(
        "F.softmax of 3-d without dim",
        lambda lib, x: lib.nn.functional.softmax(x),
        "dim=-1",
        (X3,),
        ValueError,
    ),
    Refusal(
        "nn.LogSoftmax() of 3-d", lambda lib, x: lib.nn.LogSoftmax()(x), "dim=-1", (X3,), ValueError
    ),
    Refusal(
        "squeeze(0) of a longer axis",
        lambda lib, x: x.squeeze(0),
        "leave out this squeeze",
        error=ValueError,
        instead=lambda lib, x: x,
    ),
    Refusal(
        "CrossEntropyLoss(label_smoothing)",
        lambda lib, x, t: lib.nn.CrossEntropyLoss(label_smoothing=0.1)(x, t),
        "leave it out",
        (X, TARGET),
        NotImplementedError,
    ),
    Refusal(
        "NLLLoss(weight)",
        lambda lib, w: lib.nn.NLLLoss(weight=w),
        "leave it out",
        (V,),
        NotImplementedError,
    ),
    Refusal(
        "masked_fill with a float mask",
        lambda lib, x, y: x.masked_fill(y, 0.0),
        "mask must be bool",
        (X, Y),
        TypeError,
    ),
    Refusal(
        "ModuleDict key with a dot",
        lambda lib: lib.nn.ModuleDict({"a.b": lib.nn.Tanh()}),
        "without '.'",
        (),
        KeyError,
    ),
    Refusal(
        "ModuleList index past the end",
        lambda lib: lib.nn.ModuleList([lib.nn.Tanh()])[1],
        "out of range",
        (),
        IndexError,
    ),
    Refusal("max(dim=(0, 1))", lambda lib, x: x.max(dim=(0, 1)), "amax(dim=", error=TypeError),
    Refusal(
        "var(1, False) positional unbiased",
        lambda lib, x: x.var(1, False),
        "var(1, correction=0)",
        error=TypeError,
        instead=lambda lib, x: x.var(1, correction=0),
    ),
    Refusal(
        "std(0, True) positional unbiased",
        lambda lib, x: x.std(0, True),
        "std(0, keepdim=True)",
        error=TypeError,
        instead=lambda lib, x: x.std(0, correction=1),
    ),
    Refusal(
        "var(unbiased=, correction=)",
        lambda lib, x: x.var(unbiased=False, correction=0),
        "give one",
        error=TypeError,
    ),
    Refusal(
        "gather with a larger index",
        lambda lib, x, i: x.gather(1, i),
        "no larger than",
        (X, np.zeros((3, 1), np.int64)),
        ValueError,
    ),
    Refusal("size(2) of 2-d", lambda lib, x: x.size(2), "out of range", error=IndexError),
]

# --------------------------------------------------------------------------- running


def _tensors(lib: Any, arrays: tuple[np.ndarray, ...], grad: bool) -> list[Any]:
    return [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]


def _plain(value: Any) -> Any:
    """A result as numpy arrays, tuples and Python values, from either library."""
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    if hasattr(value, "detach") and hasattr(value, "shape"):  # a tensor of either library
        return np.asarray(value.detach().numpy())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):  # named tuples and torch.Size too
        return tuple(_plain(v) for v in value)
    return value


def _assert_same(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{where}: got {actual!r}, expected an array"
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        rtol = 1e-12 if expected.dtype == np.float64 else 1e-6  # only rounding may differ
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-12, err_msg=where)
    elif isinstance(expected, tuple | list):
        assert isinstance(actual, tuple | list), f"{where}: got {actual!r}, expected {expected!r}"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{where}[{k}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9), where
    else:
        assert type(actual) is not np.ndarray and actual == expected, f"{where}: {actual!r}"


def _first_tensor(value: Any) -> Any:
    return _first_tensor(value[0]) if isinstance(value, tuple | list) else value


def _upstream(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(3).uniform(0.5, 1.5, shape)


def _run(lib: Any, habit: Habit) -> tuple[Any, list[np.ndarray | None]]:
    """The habit's result and, for a differentiable habit, its inputs' gradients."""
    inputs = _tensors(lib, habit.inputs, habit.grad)
    result = habit.program(lib, *inputs)
    if not habit.grad:
        return _plain(result), []
    out = _first_tensor(result)
    (out * lib.tensor(_upstream(tuple(out.shape)))).sum().backward()
    grads = [_gradient(x, a) for x, a in zip(inputs, habit.inputs, strict=True)]
    return _plain(result), grads


def _gradient(x: Any, array: np.ndarray) -> np.ndarray | None:
    """A floating input's gradient, zeros where no path reached it (None in both libraries)."""
    if array.dtype.kind != "f":
        return None
    return np.zeros(array.shape) if x.grad is None else _plain(x.grad)


def _central_differences(habit: Habit, eps: float = 1e-6) -> list[np.ndarray | None]:
    """∂/∂inputs of Σ v · reference(inputs), from the numpy reference in float64."""
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in habit.inputs]
    v = _upstream(np.shape(_first_tensor(habit.reference(*arrays))))

    def loss(values: list[np.ndarray]) -> float:
        return float(np.sum(v * _first_tensor(habit.reference(*values))))

    grads: list[np.ndarray | None] = []
    for k, array in enumerate(arrays):
        if array.dtype.kind != "f":
            grads.append(None)
            continue
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[k][index] += eps
            up = loss(shifted)
            shifted[k][index] -= 2 * eps
            grad[index] = (up - loss(shifted)) / (2 * eps)
        grads.append(grad)
    return grads


def _assert_grads(actual: list, expected: list, where: str, rtol: float) -> None:
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if e is None:
            assert a is None, f"{where}: input {k} is not floating but got a gradient"
            continue
        np.testing.assert_allclose(a, e, rtol=rtol, atol=1e-7, err_msg=f"{where}: input {k}")


def _ids(items: list) -> list[str]:
    return [item.name for item in items]


def test_the_table_holds_at_least_sixty_habits():
    assert len(HABITS) + len(REFUSALS) >= 60
    assert len({h.name for h in HABITS + REFUSALS}) == len(HABITS) + len(REFUSALS), "names repeat"


@pytest.mark.parametrize("habit", HABITS, ids=_ids(HABITS))
def test_habit_matches_numpy(habit: Habit):
    result, grads = _run(ts, habit)
    reference = _plain(habit.reference(*habit.inputs))
    _assert_same(result, reference, habit.name)
    if habit.grad:
        _assert_grads(grads, _central_differences(habit), habit.name, rtol=1e-5)


# PyTorch warns about its implicit softmax axis and about .T beyond 2-d; the answers are kept.
@pytest.mark.filterwarnings("ignore:Implicit dimension", "ignore:The use of `x.T`")
@pytest.mark.parametrize(
    "habit", [h for h in HABITS if h.pytorch], ids=_ids([h for h in HABITS if h.pytorch])
)
def test_habit_matches_pytorch(habit: Habit):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    result, grads = _run(ts, habit)
    theirs, their_grads = _run(torch, habit)
    _assert_same(result, theirs, f"{habit.name} (PyTorch)")
    if habit.grad:
        _assert_grads(grads, their_grads, f"{habit.name} (PyTorch)", rtol=1e-9)


@pytest.mark.parametrize("refusal", REFUSALS, ids=_ids(REFUSALS))
def test_refusal_names_what_to_write(refusal: Refusal):
    with pytest.raises(refusal.error) as caught:
        refusal.program(ts, *_tensors(ts, refusal.inputs, False))
    assert refusal.says in str(caught.value), str(caught.value)


SUGGESTIONS = [r for r in REFUSALS if r.instead is not None]


@pytest.mark.parametrize("refusal", SUGGESTIONS, ids=_ids(SUGGESTIONS))
def test_what_a_refusal_suggests_is_pytorchs_answer(refusal: Refusal):
    torch = pytest.importorskip("torch")
    ours = _plain(refusal.instead(ts, *_tensors(ts, refusal.inputs, False)))
    theirs = _plain(refusal.program(torch, *_tensors(torch, refusal.inputs, False)))
    _assert_same(ours, theirs, refusal.name)


# --------------------------------------------------------------------------- dim= is axis=

# Every function that takes numpy's axis= also takes PyTorch's dim= (one helper renames it).
REDUCTIONS = {
    "Tensor.sum": lambda x, **k: x.sum(**k),
    "Tensor.mean": lambda x, **k: x.mean(**k),
    "Tensor.var": lambda x, **k: x.var(**k),
    "Tensor.std": lambda x, **k: x.std(**k),
    "Tensor.logsumexp": lambda x, **k: x.logsumexp(**k),
    "Tensor.amax": lambda x, **k: x.amax(**k),
    "Tensor.amin": lambda x, **k: x.amin(**k),
    "Tensor.argmax": lambda x, **k: x.argmax(**k),
    "Tensor.argmin": lambda x, **k: x.argmin(**k),
    "Tensor.all": lambda x, **k: (x > 0).all(**k),
    "Tensor.any": lambda x, **k: (x > 0).any(**k),
    "ts.sum": lambda x, **k: ts.sum(x, **k),
    "ts.mean": lambda x, **k: ts.mean(x, **k),
    "ts.var": lambda x, **k: ts.var(x, **k),
    "ts.logsumexp": lambda x, **k: ts.logsumexp(x, **k),
    "ts.argmax": lambda x, **k: ts.argmax(x, **k),
    "ts.argmin": lambda x, **k: ts.argmin(x, **k),
}
AXIS_FUNCTIONS = {
    **REDUCTIONS,
    "Tensor.softmax": lambda x, **k: x.softmax(**k),
    "Tensor.log_softmax": lambda x, **k: x.log_softmax(**k),
    "Tensor.squeeze": lambda x, **k: x[:, :1].squeeze(**k),
    "Tensor.unsqueeze": lambda x, **k: x.unsqueeze(**k),
    "Tensor.split": lambda x, **k: x.split(2, **k),
    "Tensor.chunk": lambda x, **k: x.chunk(2, **k),
    "ts.softmax": lambda x, **k: ts.softmax(x, **k),
    "ts.log_softmax": lambda x, **k: ts.log_softmax(x, **k),
    "ts.cat": lambda x, **k: ts.cat([x, x], **k),
    "ts.stack": lambda x, **k: ts.stack([x, x], **k),
    "ts.split": lambda x, **k: ts.split(x, [1, 2], **k),
    "ts.chunk": lambda x, **k: ts.chunk(x, 3, **k),
    "ts.squeeze": lambda x, **k: ts.squeeze(x[:, :1], **k),
    "ts.unsqueeze": lambda x, **k: ts.unsqueeze(x, **k),
}


@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_dim_means_axis_and_giving_both_is_an_error(name):
    call, x = AXIS_FUNCTIONS[name], ts.tensor(X3)
    _assert_same(_plain(call(x, dim=1)), _plain(call(x, axis=1)), name)
    if name in REDUCTIONS:
        kept = _plain(call(x, dim=1, keepdim=True))
        _assert_same(kept, _plain(call(x, axis=1, keepdims=True)), name)
        assert kept.shape == (2, 1, 4)
    with pytest.raises(TypeError, match="got both axis= and dim=; give one"):
        call(x, axis=1, dim=1)


def test_size_is_an_int_that_survives_pickle_and_copy():
    import copy
    import json
    import pickle

    size = ts.zeros(2, 3).size
    assert isinstance(size, int) and size + 1 == 7 and json.dumps(size) == "6"
    for again in (pickle.loads(pickle.dumps(size)), copy.deepcopy(size)):
        assert again == 6 and again() == (2, 3) and again(-1) == 3
