"""``import tinygrad_seq.nn.functional as F``: PyTorch's spelling of :mod:`tinygrad_seq.functional`.

The very same functions, re-exported (``F.softmax is tinygrad_seq.functional.softmax``).
"""

from ..functional import *  # noqa: F403
from ..functional import __all__  # noqa: F401
