# Two commands on a fresh machine with python3 (>= 3.10) and pip:
#   make lab    set up .venv with vizlab and JupyterLab only (the `lab` extra) and open the
#               tutorials on the built-in backend
#   make test   add the test tools (the `dev` extra) and run the whole suite (unit, doctests,
#               notebooks, browser)
#   make check  the fast lane: mypy, the doctests and the tests not marked slow (about a minute)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LAB_STAMP := $(VENV)/.lab-stamp
# JupyterLab reads settings overrides from <prefix>/share/jupyter/lab/settings/overrides.json.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
# Uploads bigger than Jupyter's default websocket limit (about 10 MB) are dropped silently; raise it.
WS_LIMIT := 104857600
NB_TIMEOUT ?= 600
# pytest's own per-test timeout (pyproject: 300 s) must never cut a cell the cell timeout allows.
NB_ITEM_TIMEOUT = $(shell expr $(NB_TIMEOUT) + 120)
# Jupyter refuses to run as root unless told; containers and workshop VMs often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test check unit typecheck notebooks browser bench clean

# The runtime and JupyterLab only: what an attendee needs to open the tutorials.
$(LAB_STAMP): pyproject.toml notebooks/jupyter_nbconvert_config.json notebooks/jupyterlab-overrides.json
	$(PYTHON) -c 'import sys; sys.exit("vizlab needs Python >= 3.10, this is " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vizlab)" >/dev/null
	# Executed notebooks keep no widget state: nbconvert and GitHub then show each panel's static
	# snapshot (its text/html) instead of a widget view that needs a CDN.
	mkdir -p $(VENV)/etc/jupyter && cp notebooks/jupyter_nbconvert_config.json $(VENV)/etc/jupyter/
	# No "fetch Jupyter news?" toast over the notebook on the first visit (and no update check).
	mkdir -p $(LAB_SETTINGS) && cp notebooks/jupyterlab-overrides.json $(LAB_SETTINGS)/overrides.json
	touch $(LAB_STAMP)

# Plus the test tools (pytest, nbval, mypy, Playwright...).
$(STAMP): $(LAB_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The npm openai SDK for tests/test_js_sdk.py (skipped with its reason where npm is absent).
JS_STAMP := tests/js/node_modules/.installed-stamp
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/js && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed-stamp; \
	else echo "setup: npm not found; tests/test_js_sdk.py will be skipped"; fi

setup: $(STAMP) $(JS_STAMP)

# `make lab PORT=8890` picks the port (default: Jupyter's 8888, or the next free one).
PORT ?= 8888
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab notebooks/ $(ALLOW_ROOT) --ServerApp.port=$(PORT) --ServerApp.tornado_settings="{'websocket_max_message_size': $(WS_LIMIT)}" --LabApp.news_url=

typecheck: $(STAMP)
	$(BIN)/mypy

# Docstring examples run beside the tests (the __main__ modules are entry points, not examples).
DOCTESTS := vizlab/ --doctest-modules --ignore-glob='*/__main__.py'

unit: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest tests/ $(DOCTESTS)

check: typecheck
	$(BIN)/python -m pytest -q -m "not slow and not browser" tests/ $(DOCTESTS)

# The committed outputs come from the built-in backend, so that is what nbval re-runs them on,
# whatever service the shell or .env points at.
# Each notebook's kernel runs its own built-in backend (VIZLAB_BACKEND=inprocess): what a notebook
# shows of the backend's state (the prompt cache, stored responses) is then the same on every run.
# Users get the shared backend process (the default), whose cache outlives one notebook.
NB_ENV := env -u AZURE_OPENAI_ENDPOINT -u AZURE_OPENAI_API_KEY -u OPENAI_API_KEY -u OPENAI_BASE_URL VIZLAB_BACKEND=inprocess

notebooks: $(STAMP)
	$(NB_ENV) $(BIN)/python -m pytest --nbval notebooks/ -p no:python --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=$(NB_TIMEOUT) --timeout=$(NB_ITEM_TIMEOUT)

test: typecheck unit notebooks

browser: $(STAMP)
	$(BIN)/python -m pytest tests/test_browser.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .hypothesis
