"""Shared test set-up: the Hypothesis profile.

``ci`` by default (derandomized, no deadline); choose another with
``TINYGRAD_SEQ_HYPOTHESIS_PROFILE=dev`` or ``=thorough``.
"""

from tinygrad_seq.testing import load_profile

load_profile()
