# ccoin — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

## run: create (first time) and start a single-validator node in ./$(DATA), in the foreground
run: $(STAMP)
	$(BIN)/ccoin quickstart --data $(DATA)

## test: install what the suite needs and run it
test: $(STAMP)
	$(BIN)/python -m pytest -q

## bench: run the benchmark and write docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/ccoin bench --out docs/benchmarks.md

lint: $(STAMP)
	$(BIN)/ruff check common services tests
	$(BIN)/mypy common services

## clean-data: forget the local chain started by `make run`
clean-data:
	rm -rf $(DATA)
