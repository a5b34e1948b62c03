"""pytest on examples/ uses the project's Hypothesis profile (derandomized, no deadline)."""

from tinygrad_seq.testing import load_profile

load_profile()
