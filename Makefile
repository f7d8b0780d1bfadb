# mlopsify developer tasks. `make demo` and `make test` set up everything they need.
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
BENCH_ARGS ?=
DEMO_DIR ?= build/demo
PY_DIRS := $(wildcard src runtime tests scripts benchmarks migrations)

.PHONY: bootstrap demo test test-fast bench bench-size bench-serving lint format typecheck template-release check-template clean

bootstrap:  ## install the dev environment and the checkers the tests use
	bash scripts/bootstrap.sh

demo: bootstrap  ## create a sample project and run its pipeline on the embedded defaults
	rm -rf $(DEMO_DIR)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mlopsify new $(DEMO_DIR) --defaults
	PATH="$(CURDIR)/$(BIN):$$PATH" $(MAKE) -C $(DEMO_DIR) setup pipeline

# Whole modules go to one worker: their module fixtures (an image build, a project environment)
# are then made once, not once per worker that received one of their tests. The modules go out
# in the order tests/conftest.py gives them (slow ones first); without --no-loadscope-reorder
# pytest-xdist hands them out by their number of tests instead, which leaves a module of a few
# slow tests to the end, run by one worker while the other has finished.
PYTEST := $(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder
TEST_PATH := $(CURDIR)/$(BIN):$(CURDIR)/.cache/checkov/bin:$(CURDIR)/.cache/node/node_modules/.bin

test: bootstrap  ## lint, type-check, then run every test
	$(MAKE) lint typecheck check-template
	PATH="$(TEST_PATH):$$PATH" $(PYTEST) $(PYTEST_ARGS)

test-fast: bootstrap  ## lint, type-check and the tests that build no environment and run no heavy checker
	$(MAKE) lint typecheck
	PATH="$(TEST_PATH):$$PATH" $(PYTEST) -m "not slow and not checkers" $(PYTEST_ARGS)

bench: bootstrap  ## time mlopsify against its peers; rewrites docs/benchmarks.md (< 10 min)
	$(BIN)/python benchmarks/generator.py $(BENCH_ARGS)

lint:
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/yamllint -s .

format:
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/ruff format $(PY_DIRS)

typecheck:
	$(BIN)/mypy

bench-size: bootstrap  ## files and lines of a default project for every release and for ccds, into docs/benchmarks.md
	$(BIN)/python benchmarks/project_size.py

bench-serving: bootstrap  ## the generated service against BentoML, `mlflow models serve` and a bare endpoint (wrk, 127.0.0.1), into docs/
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/serving.py

template-release:  ## record template/ as the current version in the shipped bundle
	$(BIN)/python scripts/release_template.py

check-template:  ## fail when template/ differs from the newest shipped release
	$(BIN)/python scripts/release_template.py --check

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
