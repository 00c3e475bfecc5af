# flowmatrix — every target has a "## help" line; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Debian packages driven as real parts, as command:package. The demo needs the exporters;
# the tests also the BGP speaker, captures, nfdump and the browser for the dashboard.
DEB_DEMO  := softflowd:softflowd pmacctd:pmacct
DEB_TOOLS := $(DEB_DEMO) gobgpd:gobgpd tcpdump:tcpdump nfcapd:nfdump chromium:chromium \
             chromedriver:chromium-driver
PYTEST_ARGS ?=

.PHONY: help install deb-demo deb-tools demo test check lint types unit bench docs clean

# install the packages of $(1) (command:package pairs) whose command is missing
define apt_missing
	@missing=""; for pair in $(1); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
endef

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create the venv and install flowmatrix with its dependencies

deb-demo: ## install the exporters the demo drives (softflowd, pmacct) when missing
	$(call apt_missing,$(DEB_DEMO))

deb-tools: ## install every Debian package the tests drive (+ gobgpd, tcpdump, nfdump, chromium) when missing
	$(call apt_missing,$(DEB_TOOLS))

demo: install deb-demo ## run the whole system on loopback, print a traffic matrix, serve the dashboard (Ctrl-C ends)
	$(VENV)/bin/flowmatrix demo --out demo-out

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

types: install ## mypy --strict on the package
	$(VENV)/bin/mypy

unit: install ## the test suite only (pytest exits non-zero when no test ran)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

check: lint types ## lint and types

test: install deb-tools lint types unit ## install test dependencies, then lint, types and the whole suite

bench: install deb-tools ## run every benchmark under bench/ and print its figures
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done

docs: install ## regenerate docs/cli.md (every --help), docs/api.md and docs/openapi.json (the MG's API)
	$(PY) -m flowmatrix.docgen cli > docs/cli.md
	$(PY) -m flowmatrix.docgen api > docs/api.md
	$(PY) -m flowmatrix.docgen openapi > docs/openapi.json

clean: ## remove the venv, caches and demo output
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis demo-out build src/*.egg-info
