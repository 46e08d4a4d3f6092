# Two commands on a fresh machine:
#   make serve   install into .venv and serve the API on the embedded SQLite default
#   make test    lint, type-check and run the whole suite (SQLite and PostgreSQL)
VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint install clean

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]' -e sdk/
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/nentang serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy app
	$(VENV)/bin/mypy sdk/src sdk/examples
	$(VENV)/bin/python scripts/check_sharding.py --markdown > /dev/null

# Node packages of the OpenID Connect provider that the tests run (tests/oidc).
OIDC_MODULES := tests/oidc/node_modules/.package-lock.json

$(OIDC_MODULES): tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund
	touch $@

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used),
# with DejaVu fonts so Vietnamese text renders. Installed once, as root, when missing.
CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core)

# The Helm chart's tests render it with a small Go program on Go's own text/template
# (tests/helm_render), as Helm does: Debian's Go, installed once, as root, when missing.
GO ?= /usr/bin/go

$(GO):
	apt-get install -y --no-install-recommends golang-go \
	  || (apt-get update && apt-get install -y --no-install-recommends golang-go)

test: lint $(OIDC_MODULES) $(CHROMIUM) $(GO)
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) var artifacts .pytest_cache .mypy_cache .ruff_cache tests/oidc/node_modules
