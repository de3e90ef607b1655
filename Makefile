# Two entry points, both self-installing: `make lab` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test processes (pytest-xdist), one test module each at a time (module fixtures run once);
# each runs torch on one thread.
TEST_WORKERS ?= auto

# `make lab` opens working copies of the notebooks under $(LAB_DIR) (gitignored), so running
# them never dirties the tracked notebooks (which stay stripped of outputs).
LAB_DIR ?= lab
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
# Jupyter refuses to start as root (the default user in containers) without --allow-root.
LAB_UID ?= $(shell id -u)
LAB_ARGS = $(strip --ServerApp.root_dir=. $(if $(filter 0,$(LAB_UID)),--allow-root) notebooks/quickstart.ipynb)

.PHONY: lab lab-workspace test lint format bench docs install browser-deps postgres-deps ndif-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, from the pinned CPU wheel, so nothing later pulls a CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser suite; never `playwright install` (it downloads a browser).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "the browser suite needs Debian's chromium: sudo apt-get install -y chromium"; exit 1; \
	  fi; \
	fi

# Copies each notebook once (your edits in $(LAB_DIR) survive; delete a copy to get the
# latest), and installs JupyterLab settings overrides in the venv (no news pop-up).
# `make lab` serves all of $(LAB_DIR) (root_dir=.: given a file, Jupyter would serve only
# its folder, hiding tutorials/) and opens the quickstart.
lab-workspace:
	@mkdir -p $(LAB_DIR)/notebooks $(LAB_DIR)/tutorials $(LAB_SETTINGS)
	@for f in notebooks/*.ipynb tutorials/*.ipynb; do \
	  if [ ! -e "$(LAB_DIR)/$$f" ]; then cp "$$f" "$(LAB_DIR)/$$f"; \
	  elif [ "$$f" -nt "$(LAB_DIR)/$$f" ]; then echo "note: $$f changed since $(LAB_DIR)/$$f was copied (delete the copy to refresh)"; fi; \
	done
	@cp jupyter/overrides.json $(LAB_SETTINGS)/overrides.json

# Debian's PostgreSQL server binaries: the store's tests start a throwaway server with them
# (initdb + pg_ctl into a temporary folder, on 127.0.0.1; tests/postgres_server.py).
postgres-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else \
	    echo "the store's PostgreSQL tests need Debian's postgresql: sudo apt-get install -y postgresql"; exit 1; \
	  fi; \
	fi

# The local NDIF server for tests/models/test_ndif_local.py (scripts/ndif_local.sh): Debian's
# redis-server, and a venv in the checkout (gitignored) that reuses the project venv's
# site-packages (torch, nnsight) and adds ndif 0.1.2, Ray and moto, pinned in
# scripts/ndif_local/constraints.txt; rebuilt only when the pins or the project venv change.
NDIF_VENV_DIR := .ndif-venv
NDIF_STAMP := $(NDIF_VENV_DIR)/.ndif-installed

$(NDIF_STAMP): $(STAMP) constraints.txt scripts/ndif_local/constraints.txt
	NDIF_VENV=$(abspath $(NDIF_VENV_DIR)) NDIF_PROJECT_VENV=$(abspath $(VENV)) bash scripts/ndif_local.sh install

ndif-deps: $(NDIF_STAMP)
	@if ! command -v redis-server >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else \
	    echo "the local NDIF server test needs Debian's redis-server: sudo apt-get install -y redis-server"; exit 1; \
	  fi; \
	fi

lab: $(STAMP) lab-workspace
	cd $(LAB_DIR) && $(abspath $(BIN))/jupyter lab $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) browser-deps postgres-deps ndif-deps lint
	$(BIN)/python -m pytest -ra --durations=30 -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The documentation site, built offline into site/: the tutorials executed (cached in build/
# while unchanged), widgets as static snapshots, the API from docstrings, links checked
# (mkdocs --strict). DOCS_ARGS=--fast runs the tutorials in their small CI setting.
DOCS_ARGS ?=
docs: $(STAMP)
	$(BIN)/python scripts/build_docs.py $(DOCS_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks --threads 1 --markdown docs/benchmarks.md --readme README.md

clean:
	rm -rf $(VENV) $(NDIF_VENV_DIR) test-artifacts .pytest_cache build site  # $(LAB_DIR) holds your work: remove it yourself
