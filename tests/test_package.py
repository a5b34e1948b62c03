"""The package's import contract: the core loads no renderer, plotting or test library."""

import subprocess
import sys


def test_importing_the_core_loads_no_optional_library_and_submodules_load_on_use():
    script = (
        "import sys, tinygrad_seq as ts\n"
        "heavy = ['tinygrad_seq.viz', 'matplotlib', 'hypothesis', 'tqdm', 'graphviz']\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "print(ts.nn.LSTM.__name__, ts.viz.draw_graph.__name__, ts.testing.gradcheck.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded, names = result.stdout.splitlines()
    assert loaded == "[]"
    assert names == "LSTM draw_graph gradcheck"


def test_an_unknown_attribute_is_a_clear_attribute_error():
    import pytest

    import tinygrad_seq as ts

    with pytest.raises(AttributeError, match="has no attribute 'not_there'"):
        ts.not_there  # noqa: B018
