# precontentieux — the two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench lint install clean-data

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found (Python 3.11 required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null
	$(PIP) install -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start the whole embedded stack (Temporal dev server + UI, LRE simulator, API, worker, demo data).
run: $(STAMP)
	$(VENV)/bin/precontentieux dev

## Run the test suite (time-skipping server, real dev server, real HTTP, real PDFs).
test: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15 ; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-data:
	rm -rf .data
