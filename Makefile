# One place for set-up and checks. `make demo` and `make test` install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch; the package itself only constrains torch to <2.14 so pip never
# swaps it for a newer CUDA build. Elsewhere, add e.g.
#   TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DEMO_GAMES ?= 400

.PHONY: install demo test lint check clean proto

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PIP_ARGS) "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: a local CartPole simulator served over gRPC, the seed's actor-critic
# (16 agents) trained against it until the mean of 100 games reaches 195, its curve.
demo: $(STAMP)
	rm -f runs/demo/games.csv
	$(PY) examples/ac_remote_example.py --num-games $(DEMO_GAMES) --stop-at-return 195 \
		--log-dir runs/demo --model-dir runs/demo
	$(VENV)/bin/flare plot runs/demo --threshold 195

# Regenerate the committed Python stubs from protos/ (a test fails when they are stale).
proto: $(STAMP)
	$(PY) scripts/run_codegen.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check flare tests scripts benchmarks

# Every check: lint, then the whole test suite.
test: lint
	$(PY) -m pytest

check: test

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
