# kimi-lsp — `make run` and `make test` are the whole quick start on a fresh Debian/Ubuntu.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint docs check-docs system-deps bench clean

# One idempotent set-up step: the venv, the package (editable) and the test tools.
install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kimi-lsp needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: installing python3-venv"; scripts/apt-install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

run: install
	exec $(VENV)/bin/kimi-lsp serve --stdio

# What the tests need from Debian, installed only when missing.
system-deps:
	@command -v redis-server >/dev/null || scripts/apt-install redis-server
	@emacs --batch --eval "(progn (package-activate-all) (require 'eglot))" >/dev/null 2>&1 \
	  || scripts/apt-install emacs-nox elpa-eglot

lint: install
	$(VENV)/bin/ruff check kimi_lsp tests bench scripts
	$(VENV)/bin/ruff format --check kimi_lsp tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

docs: install
	$(PY) scripts/gen_config_docs.py > docs/configuration.md

check-docs: install
	@$(PY) scripts/gen_config_docs.py | diff -u docs/configuration.md - \
	  || { echo "docs/configuration.md is stale: run 'make docs'"; exit 1; }

test: install system-deps lint check-docs test-vscode
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/.work

# --- VS Code extension (clients/vscode) and its UI test in a real VS Code (tests/editors) ---
VSCODE := clients/vscode
.PHONY: vscode-deps vsix test-vscode

# Node packages (pinned by the committed package-lock.json files), code-server, Chromium:
# installed once, then a no-op.
vscode-deps:
	scripts/vscode-deps

vsix: vscode-deps
	# vsce runs `vscode:prepublish`: esbuild bundles src/ and vscode-languageclient into
	# dist/extension.js, the only code in the .vsix (.vscodeignore), so no node_modules.
	cd $(VSCODE) && npx tsc -p . --noEmit && npx vsce package --no-dependencies --allow-missing-repository --skip-license -o kimi-lsp.vsix

# Type-check and lint the TypeScript, build the .vsix, drive it in code-server + Chromium.
test-vscode: install vscode-deps
	cd $(VSCODE) && npx tsc -p . --noEmit && npx eslint src
	$(MAKE) --no-print-directory vsix
	KIMI_VSCODE_UI=1 $(PY) -m pytest -q -p no:cacheprovider -rs tests/editors/test_vscode.py
