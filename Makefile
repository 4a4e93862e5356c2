# The two commands that matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format crawl serve list daemon status clean

# A virtual environment with the pinned dependencies (re-run when pyproject.toml changes).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Serve the bundled demo site on 127.0.0.1, crawl it into data/news.db, print a summary.
demo: $(STAMP)
	$(BIN)/python -m demo.run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# One source by hand: make crawl SOURCE=bbc_world
crawl: $(STAMP)
	$(BIN)/python scheduler.py crawl $(SOURCE)

list: $(STAMP)
	$(BIN)/python scheduler.py list

# The daemon: every source on its schedule, until Ctrl-C or SIGTERM. `make status` asks how it is doing.
daemon: $(STAMP)
	$(BIN)/python scheduler.py run

status: $(STAMP)
	$(BIN)/python scheduler.py status

# Browse the archive read-only at http://127.0.0.1:8001 (safe while crawls write): make serve [DB=...] [PORT=...]
serve: DB ?= data/news.db
serve: PORT ?= 8001
serve: $(STAMP)
	@test -f $(DB) || { echo "error: no archive at $(DB) yet: run make demo (or make crawl SOURCE=...) first"; exit 1; }
	$(BIN)/datasette serve $(DB) --host 127.0.0.1 --port $(PORT) -m metadata.yml --plugins-dir plugins --template-dir templates

clean:
	rm -rf $(VENV) data/*.db data/*.db-* data/logs
