# Synsight: `make demo` sets up and serves the app; `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Test processes (pytest-xdist): one per core by default; PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= auto
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Where `make demo` serves the app (and sends its simulated crowd): `make demo DEMO_PORT=8102` when 8000 is taken.
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
DEMO_URL := http://$(DEMO_HOST):$(DEMO_PORT)
# Chart.js from the npm registry (package-lock.json pins it), copied where Django serves static files, with its
# source map: the script names it (sourceMappingURL), and production's collectstatic fails on a missing one. The
# target is the map, so a checkout whose vendor folder predates it gets it too.
VENDOR := frontend/static/vendor/chart.umd.min.js.map

.PHONY: demo setup install test lint browser-deps vendor

# The living demo: the app, plus (unless SYNSIGHT_DEMO_CROWD=0) a simulated crowd labelling the demo campaign
# through the REST API at a human pace in the background; it stops with the server (Ctrl-C). Its log is
# data/demo_crowd.log.
demo: setup
	@echo "Serving Synsight on $(DEMO_URL)/ (Ctrl-C to stop)"
	@if [ "$${SYNSIGHT_DEMO_CROWD:-1}" != 0 ] && [ -s data/demo_campaign ]; then \
	  echo "A simulated crowd labels campaign $$(cat data/demo_campaign) in the background (SYNSIGHT_DEMO_CROWD=0: none)."; \
	  (sleep 4; exec $(BIN)/python manage.py simulate_crowd --campaign "$$(cat data/demo_campaign)" \
	     --base-url $(DEMO_URL) --slow --workers 60 --arrivals-over 2400 --concurrency 4 --prefix demo-crowd \
	     > data/demo_crowd.log 2>&1) & \
	fi; \
	exec $(BIN)/python manage.py runserver $(DEMO_HOST):$(DEMO_PORT)

setup: $(STAMP) $(VENDOR)
	$(BIN)/python manage.py ensure_wordnet
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py setup_demo --url $(DEMO_URL)/

# What a deployment needs from the checkout: the virtualenv and the browser libraries, no demo data or accounts.
install: $(STAMP) $(VENDOR)

# --dist load hands the tests out in collection order, where pytest-django puts every database test before the
# transactional ones, whose teardown empties the database (WordNet included). worksteal let a worker steal
# database tests after its transactional ones had run: 40 security tests then found no synsets (SQLite run).
test: $(STAMP) browser-deps $(VENDOR)
	$(BIN)/python manage.py ensure_wordnet
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load --durations=15 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The virtualenv with the app and test dependencies; redone when pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Synsight needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "Browser tests need Chromium at /usr/bin/chromium: run 'sudo apt-get install chromium'." >&2; exit 1; \
	  fi; }

# Front-end libraries: `npm ci` from the committed lock file, then the built file into the static folder
# (not committed; redone when package-lock.json changes).
vendor: $(VENDOR)
$(VENDOR): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	  else \
	    echo "The dashboard's charts need npm: run 'sudo apt-get install npm'." >&2; exit 1; \
	  fi; }
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p frontend/static/vendor
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map \
	   node_modules/chart.js/LICENSE.md frontend/static/vendor/
	touch $@
