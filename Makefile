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
# The suite runs on two workers (pytest-xdist); PYTEST_WORKERS= runs it in one process.
PYTEST_WORKERS ?= -n 2
# The bundled Node.js simulator's packages (its tests and the grid-world example need them).
GRIDWORLD := simulators/gridworld
NODE_STAMP := $(GRIDWORLD)/node_modules/.installed

.PHONY: install demo test lint typecheck check clean proto

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PIP_ARGS) "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,ray,vizdoom,miniworld]"
	touch $(STAMP)

$(NODE_STAMP): $(GRIDWORLD)/package.json $(GRIDWORLD)/package-lock.json
	npm ci --prefix $(GRIDWORLD) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

# The main job: a local CartPole simulator served over gRPC, the seed's actor-critic
# (16 agents) trained against it until the mean of 100 games reaches 195, its curve.
demo: $(STAMP)
	rm -f runs/demo/games.csv
	$(PY) examples/ac_remote_example.py --num-games $(DEMO_GAMES) --stop-at-return 195 \
		--log-dir runs/demo --model-dir runs/demo
	$(VENV)/bin/flare plot runs/demo --threshold 195

# Regenerate the committed Python stubs, docs/wire-reference.md and docs/learner-reference.md
# from protos/ (tests fail when any is stale).
proto: $(STAMP)
	$(PY) scripts/run_codegen.py
	$(PY) scripts/proto_reference.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check flare tests scripts benchmarks

# The type gate: zero mypy errors in flare/ (its settings are in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Every check: lint, types, then the whole test suite (Python, and the Node simulator's own).
test: lint typecheck $(NODE_STAMP)
	node --test $(GRIDWORLD)/test/
	$(PY) -m pytest $(PYTEST_WORKERS)

check: test

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# The quick tier: every test but those marked slow (learning runs on real games, example
# command lines, long process tests), and the Node simulator's own; `make test` runs all.
.PHONY: test-fast
test-fast: $(STAMP) $(NODE_STAMP)
	node --test $(GRIDWORLD)/test/
	$(PY) -m pytest $(PYTEST_WORKERS) -m "not slow"
