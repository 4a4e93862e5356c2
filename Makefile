# The two commands that matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the tests use: the browser test drives Debian's Chromium (never a browser that
# Playwright downloads) and the shared-crawl tests start their own redis-server on a free port.
SYSTEM_PACKAGES := chromium redis-server
UV_VERSION := 0.13.9

.PHONY: install system-packages lock lock-check demo test lint format crawl serve list daemon status clean

# A virtual environment holding exactly what requirements.lock pins, every transitive dependency
# with its hashes. The lock is checked against pyproject.toml first, so an edit there without
# `make lock` stops here with the names that disagree.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@$(PYTHON) -m tools.lockcheck
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	touch $(STAMP)

install: $(STAMP) system-packages

# As root, install the missing Debian packages; otherwise stop at once with the command to run.
system-packages:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do command -v $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "error: the tests need Debian packages:$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi; \
		command -v apt-get >/dev/null 2>&1 || { echo "error: the tests need$$missing and this machine has no apt-get: install them with its package manager"; exit 1; }; \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Re-resolve requirements.lock after an edit of pyproject.toml (keeps every pin it can; needs the
# package index). `make lock-check` resolves again and fails if the lock would change.
.venv-uv/bin/uv:
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --universal: one lock for every platform, with markers (pysqlite3-binary is for Linux x86-64 only).
LOCK_FLAGS = pyproject.toml --extra dev --generate-hashes --python-version 3.11 --universal --no-header --quiet

lock: .venv-uv/bin/uv
	.venv-uv/bin/uv pip compile $(LOCK_FLAGS) -o requirements.lock

lock-check: .venv-uv/bin/uv
	@$(PYTHON) -m tools.lockcheck
	@# uv keeps the versions an output file already pins: compiled over a copy of the lock, an
	@# unchanged pyproject.toml gives the same file (not the registry's newest releases).
	@cp requirements.lock .venv-uv/lock-check.txt
	@.venv-uv/bin/uv pip compile $(LOCK_FLAGS) -o .venv-uv/lock-check.txt
	@diff -q .venv-uv/lock-check.txt requirements.lock >/dev/null \
		|| { echo "error: requirements.lock is not what pyproject.toml resolves to: run make lock"; exit 1; }

# Serve the bundled demo site on 127.0.0.1, crawl it into data/news.db, print a summary: make demo [PORT=8765]
demo: $(STAMP)
	$(BIN)/python -m demo.run $(if $(PORT),--port $(PORT))

test: install lint
	$(BIN)/python -m pytest

# Style, types and the layer contracts of docs/architecture.md (tests/test_architecture.py checks them too).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

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
	$(BIN)/datasette serve $(DB) --host 127.0.0.1 --port $(PORT) -m metadata.yml --plugins-dir plugins --template-dir templates --setting suggest_facets off --setting max_returned_rows 10000

clean:
	rm -rf $(VENV) .venv-uv data/*.db data/*.db-* data/logs data/warc
