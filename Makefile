# Two commands do all the set-up: `make test` and `make demo`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.yolo-ls-installed
# torch is pinned here (the CI and demo environment), never in pyproject.toml: users bring their own.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

# yolo-ls's own environment keeps an Ultralytics settings folder of its own, with the integrations that the dev
# extras install (MLflow, Ray Tune) off, so a run prints nothing from integrations nobody asked for. A YOLO_CONFIG_DIR
# already set in the environment wins.
export YOLO_CONFIG_DIR ?= $(CURDIR)/$(VENV)/ultralytics-settings
QUIET := $(YOLO_CONFIG_DIR)/.yolo-ls-quiet

.PHONY: test test-fast test-compat demo gpu-check lint venv clean

venv: $(STAMP) $(QUIET)

$(QUIET): $(STAMP)
	mkdir -p "$(YOLO_CONFIG_DIR)"
	$(PY) -c "from ultralytics.utils import SETTINGS; SETTINGS.update(mlflow=False, raytune=False, sync=False)"
	touch $(QUIET)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Every test: -m "" replaces the `-m "not training and not slow"` that pyproject.toml gives plain `pytest`.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "" tests

# The pure-function and API tests only (no real trainings, no end-to-end subprocess runs): what plain `pytest` runs.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not training and not slow" tests

# The supported Ultralytics range (pyproject.toml, yolo_ls/engine/compat.py) at both ends: each release is installed with
# --no-deps under .venv/compat/<version> and put on PYTHONPATH after the repo, before site-packages (the venv's own
# ultralytics is left as it is);
# per release: the fast tests plus one tiny training per task family (tests/test_compat_training.py).
# They took 214 s (8.3.210) and 364 s (8.4.190) on the 2-core machine under load from other jobs (load average 3-8).
# COMPAT_SKIP_VENV=1 skips the release the venv itself has (make test has just run every test against it): CI
# (.ci/run) runs `make test` and then `make test-compat COMPAT_SKIP_VENV=1`, i.e. adds the 8.3.210 leg only.
COMPAT_VERSIONS ?= 8.3.210 8.4.190
COMPAT_DIR      ?= $(VENV)/compat
COMPAT_SKIP_VENV ?=

test-compat: $(STAMP)
	@set -e; venv_v=$$($(PY) -c "import ultralytics; print(ultralytics.__version__)"); \
	for v in $(COMPAT_VERSIONS); do \
	  if [ -n "$(COMPAT_SKIP_VENV)" ] && [ "$$v" = "$$venv_v" ]; then \
	    echo "test-compat: skipping ultralytics $$v, the venv's own release (make test runs every test against it)"; \
	    continue; fi; \
	  d="$(abspath $(COMPAT_DIR))/$$v"; \
	  test -f "$$d/ultralytics/__init__.py" || $(PY) -m pip install --quiet --no-deps --target "$$d" "ultralytics==$$v"; \
	  mkdir -p "$$d/config"; \
	  export PYTHONPATH="$(CURDIR):$$d" YOLO_CONFIG_DIR="$$d/config" YOLO_OFFLINE=1 MPLBACKEND=Agg; \
	  $(PY) -c "import sys, ultralytics as u; ok = u.__version__ == sys.argv[1] and u.__file__.startswith(sys.argv[2]); \
	print('test-compat: ultralytics', u.__version__, 'from', u.__file__); sys.exit(0 if ok else 'wrong ultralytics')" \
	    "$$v" "$$d/"; \
	  $(PY) -m pytest -q -p no:cacheprovider -m "not training and not slow" tests; \
	  $(PY) -m pytest -q -p no:cacheprovider -m "" tests/test_compat_training.py; \
	done

demo: $(STAMP) $(QUIET)
	$(PY) examples/demo.py

# The CUDA checks and timings of bench/gpu_check.py (about 8 minutes on one GPU); writes runs/gpu_check/gpu_check.json
# and summary.txt. Without a GPU: make gpu-check GPU_CHECK_ARGS="--device cpu" (the quick dry run).
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf runs .pytest_cache .ruff_cache
