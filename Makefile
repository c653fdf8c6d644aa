# ccoin — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-scale lint clean-data browser haproxy

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

## run: create (first time) and start a single-validator node in ./$(DATA), in the foreground;
## `make run API_PORT=8100 P2P_PORT=30400` puts its API and p2p socket on other ports (the
## first time, or to move them; defaults 8000 and 30333)
API_PORT ?=
P2P_PORT ?=
run: $(STAMP)
	$(BIN)/ccoin quickstart --data $(DATA)$(if $(API_PORT), --port $(API_PORT))$(if $(P2P_PORT), --p2p-port $(P2P_PORT))

## test: install what the suite needs and run it, in TEST_WORKERS processes (pytest-xdist;
## one test file per worker at a time, so a module's shared node stays in one process; files
## in collection order, the long functional ones first, not reordered by their test count)
TEST_WORKERS ?= 2
test: $(STAMP) browser haproxy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --durations=10

## browser: Debian's Chromium for the dashboard's browser tests (installed when root; without
## it those tests skip and say why). Playwright drives it; its own browser download is not used.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: /usr/bin/chromium is missing and we are not root: the browser tests will skip"; fi

## haproxy: Debian's HAProxy for the multi-host test's proxy in front of two gateways (its
## config is deploy/multihost/haproxy.cfg); installed when root, else that test skips.
haproxy:
	@if command -v haproxy >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's haproxy for the multi-host test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy; \
	else echo "note: haproxy is missing and we are not root: the multi-host proxy test will skip"; fi

## bench: run the benchmark and write docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/ccoin bench --out docs/benchmarks.md

## bench-scale: build chains of 10k, 100k and 1M accounts in-process, measure a node on each
## (and a fresh node syncing it); writes docs/scale.md and docs/scale.png (about 10 minutes)
bench-scale: $(STAMP)
	$(BIN)/ccoin bench --scale --scale-sync --out docs/scale.md --plot docs/scale.png

lint: $(STAMP)
	$(BIN)/ruff check common runtime client services tools tests
	$(BIN)/mypy common runtime client services tools tests

## clean-data: forget the local chain started by `make run`
clean-data:
	rm -rf $(DATA)
