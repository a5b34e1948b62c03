# One-command set-up: every target builds .venv from nothing if it is missing, so a clean
# clone on a new machine needs only Python.
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python

.PHONY: test demo lint notebooks

# A stamp per extras set: pip runs again only when pyproject.toml is newer than the stamp.
$(VENV)/.installed-%: pyproject.toml
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet -e ".[$*]"
	touch $@

test: $(VENV)/.installed-dev
	$(VENV_PYTHON) -m pytest -q

# The main job: the vanishing-gradient study (it keeps BLAS on one thread itself).
demo: $(VENV)/.installed-plot,progress
	$(VENV_PYTHON) -m tinygrad_seq vanishing --out pictures/ --force

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

# The course: every notebook executed (exercises blank) into docs/notebooks/_build/ as HTML.
notebooks: $(VENV)/.installed-dev
	$(VENV_PYTHON) docs/notebooks/build.py --html
