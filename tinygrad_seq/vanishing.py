"""The vanishing-gradient study, kept importable under its first name.

It lives in :mod:`tinygrad_seq.lab.study`; this module re-exports its public names.
"""

from .lab.study import *  # noqa: F403
from .lab.study import __all__  # noqa: F401
