"""tinygrad_seq: a small deep-learning framework on numpy for learning how recurrent nets learn.

The public names live here; see DESIGN in the docs for the contract.
"""

from numpy import bool_, float32, float64, int32, int64

from . import functional, nn, ops, optim
from .autograd import (
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .functional import (
    abs,
    argmax,
    argmin,
    cat,
    chunk,
    clip,
    exp,
    flatten,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    relu,
    reshape,
    sigmoid,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .safety import AnomalyError, SavedTensorModifiedError
from .serialization import load, save
from .tensor import (
    Tensor,
    arange,
    default_generator,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

# PyTorch's dtype names (numpy's dtypes underneath): ``dtype=ts.long`` for class targets.
# They stay out of ``__all__``: a star import must not hide Python's own float, int and bool.
float = float32
double = float64
long = int64
int = int32
bool = bool_

# Imported on first use (``ts.viz.draw_graph``), so that importing the core loads no
# renderer, plotting or test library.
_LAZY = ("data", "kernels", "testing", "viz")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "nn",
    "AnomalyError",
    "SavedTensorModifiedError",
    "detect_anomaly",
    "Function",
    "Tensor",
    "abs",
    "arange",
    "argmax",
    "argmin",
    "cat",
    "chunk",
    "clip",
    "default_generator",
    "enable_grad",
    "exp",
    "flatten",
    "float32",
    "float64",
    "int32",
    "int64",
    "from_numpy",
    "full",
    "functional",
    "grad",
    "is_grad_enabled",
    "load",
    "log",
    "log_softmax",
    "logsumexp",
    "manual_seed",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "no_grad",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "permute",
    "rand",
    "randn",
    "relu",
    "reshape",
    "save",
    "set_grad_enabled",
    "sigmoid",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
