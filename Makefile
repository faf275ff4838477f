# Two commands matter: `make demo` (the main job: QWR-LSE vs AWR on BitFlip-32) and `make test` (the whole suite).
# Both create or reuse .venv and install what they need. On a machine without an NVIDIA GPU
# the CPU build torch==2.13.0 is installed (no multi-GB CUDA wheels); any torch >= 2.6 already
# in the venv is kept.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qwr_fast-installed

.PHONY: demo test lint format bench aot docs clean gpu-check

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -c "import sys, torch; v = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 6))" 2>/dev/null; then \
		echo "keeping installed torch"; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PY) -m pip install "torch>=2.6"; \
	else \
		$(PY) -m pip install torch==2.13.0; \
	fi
	$(PY) -m pip install -e ".[dev,mujoco,atari,minatar,hanabi,docs,wandb,video]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m qwr_fast.cli demo --run-root runs/demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest tests -q
	TRITON_INTERPRET=1 $(PY) -m pytest tests/kernels -q -m kernel
	$(PY) -m qwr_fast.kernels.aot
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) -m pytest bench -q --benchmark-columns=median,iqr,rounds --benchmark-sort=name

# the first command to run on an NVIDIA GPU: kernel tests on the device, op benchmarks, eager vs
# --compile training speed; writes docs/bench/gpu-<device>-<date>.md (exits 2 without CUDA)
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py

aot: $(STAMP)
	$(PY) -m qwr_fast.kernels.aot

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix . && $(PY) -m ruff format .

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .benchmarks
