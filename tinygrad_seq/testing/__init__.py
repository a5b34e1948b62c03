"""Tools to prove gradients right: gradient checks and Hypothesis strategies.

``gradcheck`` / ``gradgradcheck`` compare an op's backward with central differences and
check the rest of its contract (see :mod:`tinygrad_seq.testing.gradcheck`);
``tinygrad_seq.testing.strategies`` generates inputs for property-based tests, and
``load_profile`` selects Hypothesis settings for them.

Only ``strategies`` and the profile functions need ``hypothesis``; it is imported when they
are used, so the gradient checks work without it.

A property-based test of your own op, kept off relu's kink at 0::

    from hypothesis import given
    from tinygrad_seq.testing import gradcheck, strategies as tst

    @given(tst.tensors(tst.shapes(), elements=tst.away_from(0.0)))
    def test_my_relu(x):
        assert gradcheck(MyRelu.apply, [x])
"""

from __future__ import annotations

import importlib
from typing import Any

from .gradcheck import (
    GradcheckError,
    assert_grads_close,
    gradcheck,
    gradgradcheck,
    numerical_grad,
)
from .profiles import load_profile, register_profiles

__all__ = [
    "GradcheckError",
    "assert_grads_close",
    "gradcheck",
    "gradgradcheck",
    "load_profile",
    "numerical_grad",
    "register_profiles",
    "strategies",
]


def __getattr__(name: str) -> Any:
    # ``tinygrad_seq.testing.strategies`` without an explicit submodule import, loaded (and
    # hypothesis with it) only when first used.
    if name == "strategies":
        try:
            # import_module, not ``from . import``: that would look the attribute up on
            # this package first and land back here.
            return importlib.import_module(f"{__name__}.strategies")
        except ModuleNotFoundError as error:
            if error.name != "hypothesis":
                raise
            raise ModuleNotFoundError(
                "tinygrad_seq.testing.strategies needs hypothesis: pip install "
                "'tinygrad_seq[testing]' (or pip install hypothesis)",
                name="hypothesis",
            ) from error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
