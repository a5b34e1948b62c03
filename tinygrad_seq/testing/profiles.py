"""Hypothesis settings profiles for gradient tests: ``ci``, ``dev`` and ``thorough``.

Gradient checks are slow per example (two forward passes per input element), so every
profile turns the per-example deadline off: a deadline only measures the machine, and
Hypothesis would otherwise spend minutes shrinking a harmless overrun
(HypothesisWorks/hypothesis#1792). Choose a profile with the environment variable
``TINYGRAD_SEQ_HYPOTHESIS_PROFILE`` (``ci`` when unset), as a ``conftest.py`` does::

    from tinygrad_seq.testing import load_profile

    load_profile()

Requires ``hypothesis`` (``pip install tinygrad_seq[testing]``); importing this module does not.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "PROFILES", "load_profile", "register_profiles"]

ENV_VAR = "TINYGRAD_SEQ_HYPOTHESIS_PROFILE"
PROFILES = ("ci", "dev", "thorough")


def register_profiles() -> None:
    """Register the ``ci``, ``dev`` and ``thorough`` profiles with Hypothesis.

    - ``ci``: 30 examples, derandomized (the same examples on every run, so CI never flakes),
      no example database (CI starts from a fresh clone anyway), ``print_blob=True`` so a
      failure prints a ``@reproduce_failure`` line.
    - ``dev``: 20 examples, random, for a fast edit-test loop.
    - ``thorough``: 1000 examples, random, for a bug hunt before a release.

    Calling it again re-registers the same settings.
    """
    from hypothesis import HealthCheck, settings

    slow_is_fine = [HealthCheck.too_slow]
    settings.register_profile(
        "ci",
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=slow_is_fine,
    )
    settings.register_profile("dev", max_examples=20, deadline=None)
    settings.register_profile(
        "thorough", max_examples=1000, deadline=None, suppress_health_check=slow_is_fine
    )


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (default: ``$TINYGRAD_SEQ_HYPOTHESIS_PROFILE``
    or ``"ci"``); returns the name loaded.

    A profile registered by the caller under another name loads too.
    """
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    register_profiles()
    if name is None:
        name = os.environ.get(ENV_VAR) or "ci"
    try:
        settings.load_profile(name)
    except InvalidArgument:
        raise ValueError(
            f"load_profile: no Hypothesis profile named {name!r}; the built-in ones are "
            f"{', '.join(PROFILES)} (set {ENV_VAR} to one of them)"
        ) from None
    return name
