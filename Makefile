# Two commands do all the set-up: `make test` and `make demo`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.yolo-ls-installed
# torch is pinned here (the CI and demo environment), never in pyproject.toml: users bring their own.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

.PHONY: test test-fast demo lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

# The pure-function and API tests only (no real trainings, no end-to-end subprocess runs).
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not training and not slow" tests

demo: $(STAMP)
	$(PY) examples/demo.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
