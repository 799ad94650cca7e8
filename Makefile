# Two commands are the contract (README Quick start): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make run` serves CONFIG, else what MOA_CONFIG names, else the demo config shipped in the package.
CONFIG ?=

.PHONY: run test lint docs bench clean clients edge test-edge

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when pyproject.toml changes. `make run` needs the runtime alone (~95 MB); `make test`
# adds the dev extras (linters, test clients, browsers' driver: ~540 MB) to the same venv.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/moa-gateway serve $(if $(CONFIG),--config $(CONFIG),$(if $(MOA_CONFIG),,--demo))

lint: $(VENV)/.installed
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The playground's browser tests drive Debian's Chromium through Playwright, which downloads no browser
# of its own; installed from Debian when missing (as root, else with sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The Redis response store is tested against a real redis-server (Debian's), which the tests start
# themselves on a free port; installed from Debian when missing.
REDIS_SERVER := /usr/bin/redis-server
$(REDIS_SERVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

# The gateway is tested behind a real nginx (Debian's; tests/e2e/edge/test_nginx.py), which the tests
# start themselves in the foreground on a free port; installed from Debian when missing.
NGINX := /usr/sbin/nginx
$(NGINX):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx

# The client suites (tests/e2e/clients) drive real clients: LlamaIndex from its own venv (its OpenAI LLM
# pins openai<3, the dev extras need openai>=3), the AI SDK and Codex from npm (package-lock.json).
CLIENTS := tests/e2e/clients
$(CLIENTS)/.venv/.installed: $(CLIENTS)/llamaindex-requirements.txt
	$(PYTHON) -m venv $(CLIENTS)/.venv
	$(CLIENTS)/.venv/bin/pip install --quiet -r $<
	touch $@

$(CLIENTS)/node_modules/.package-lock.json: $(CLIENTS)/package-lock.json
	cd $(CLIENTS) && npm ci --no-audit --no-fund --loglevel=error

clients: $(CLIENTS)/.venv/.installed $(CLIENTS)/node_modules/.package-lock.json

# The gateway is tested behind the LiteLLM proxy (tests/e2e/edge/test_litellm.py), from a venv of its own:
# its proxy extras pin a web stack of their own. About 750 MB, installed once.
EDGE := tests/e2e/edge
$(EDGE)/.litellm-venv/.installed: $(EDGE)/litellm-requirements.txt
	$(PYTHON) -m venv $(EDGE)/.litellm-venv
	$(EDGE)/.litellm-venv/bin/pip install --quiet -r $<
	touch $@

edge: $(EDGE)/.litellm-venv/.installed

test: lint $(CHROMIUM) $(REDIS_SERVER) clients
	$(BIN)/pytest

# The heavier integration checks, run by CI after `make test`: the gateway behind a real nginx and behind
# the LiteLLM proxy (tests/e2e/edge, marked `edge`; LiteLLM's venv is about 750 MB, installed once).
test-edge: $(VENV)/.installed $(NGINX) edge
	$(BIN)/pytest -m edge tests/e2e/edge

# The docs site (mkdocs.yml, pages under docs/): the generated reference pages must be current
# (`$(BIN)/python -m scripts.gen_reference` rewrites them), then mkdocs builds the site into site/ with
# --strict, so a broken link or anchor fails. The docs tools are the `docs` extra.
docs: $(VENV)/.docs-installed
	$(BIN)/python -m scripts.gen_reference --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

# The benchmark suite (needs wrk; installs it from Debian when run as root). About 9 minutes (the open-loop runs of bench/open_loop.py take 3 of them),
# 2 more for the passthrough beside LiteLLM (bench/side_by_side.py) when `make edge` has installed it; skipped with a note otherwise.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) site $(CLIENTS)/.venv $(CLIENTS)/node_modules $(EDGE)/.litellm-venv .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
