"""Loss functions as modules, with PyTorch's arguments: ``nn.CrossEntropyLoss()(logits, y)``.

Each one calls its function in :mod:`tinygrad_seq.functional`. PyTorch's options that have no
counterpart here (class ``weight``, ``label_smoothing``) are refused when set, never ignored.
"""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "NLLLoss"]


class NLLLoss(Module):
    """−log p[target] from log-probabilities; ``ignore_index`` targets count for nothing."""

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if weight is not None:
            raise NotImplementedError(
                f"{type(self).__name__}: weight= (a weight per class) is not supported; leave "
                "it out, every class weighs the same"
            )
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.reduction, self.ignore_index)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class CrossEntropyLoss(NLLLoss):
    """Cross-entropy of logits against integer class targets: NLLLoss of log_softmax."""

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        if label_smoothing:
            raise NotImplementedError(
                f"CrossEntropyLoss: label_smoothing={label_smoothing} is not supported; leave "
                "it out"
            )
        super().__init__(weight, ignore_index, reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.reduction, self.ignore_index)


class MSELoss(Module):
    """Mean squared error (input − target)²; the shapes must match."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
