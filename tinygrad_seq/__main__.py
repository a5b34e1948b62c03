"""``python -m tinygrad_seq``: see :mod:`tinygrad_seq.cli`."""

import sys

from tinygrad_seq.cli import main

sys.exit(main())
