# Two commands do all the set-up on a fresh Debian machine with Python 3.11:
#   make demo   sample media, checked by `retalk check`
#   make test   lint, type check and the whole test suite
# Re-running either is cheap: the set-up is skipped while pyproject.toml is unchanged.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system demo test lint typecheck pytest bench clean

setup: system $(STAMP)

# Debian packages: installed only when a tool is missing, so a re-run costs one `command -v`.
system:
	@missing=""; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "retalk needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	@$(BIN)/python fixtures/demo.py

lint: setup
	$(BIN)/ruff check retalk tests bench fixtures
	$(BIN)/ruff format --check retalk tests bench fixtures

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q -n auto --dist loadgroup

test: lint typecheck pytest

bench: setup
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/transfer.py
	$(BIN)/python bench/hooks.py
	$(BIN)/python bench/cache_speed.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/fix.py
	$(BIN)/python bench/html.py

clean:
	rm -rf $(VENV) build demo-media tests/.media .pytest_cache .mypy_cache .ruff_cache
