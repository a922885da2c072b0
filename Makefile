# Every target sets up .venv/ first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock

.PHONY: install lock demo test screenshots bench eval lint format audit reliability clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# Every dependency (the dev and bench extras too) at the version and SHA-256 in the lock file,
	# torch's CPU build included (torch==2.13.0+cpu: no CUDA packages), then the project alone.
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	# Fails, naming it, on a dependency added to pyproject.toml without `make lock`.
	$(BIN)/pip check
	touch $(STAMP)

# Regenerates requirements.lock from pyproject.toml after a dependency changed there: pins that
# still fit are kept (delete the file first to re-resolve everything). pip-tools runs in a venv of
# its own, made and removed here; it resolves as pip install does on this machine (its find-links
# and indexes, where torch's CPU wheel is), and records none of their locations in the file.
lock:
	tool=$$(mktemp -d) && $(PYTHON) -m venv $$tool \
	  && $$tool/bin/pip install --quiet pip-tools==7.7.0 \
	  && $$tool/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	       --no-emit-index-url --no-emit-find-links --extra dev --extra bench \
	       --output-file $(LOCK) pyproject.toml; \
	  status=$$?; rm -rf $$tool; exit $$status

# axe-core, pinned, from npm: the web app's browser test runs it on every page and fails on
# serious or critical violations. Without npm it warns here, and the test says so (CI fails).
AXE_VERSION := 4.14.1
AXE_STAMP   := $(VENV)/axe/axe-core-$(AXE_VERSION).stamp

$(AXE_STAMP): | $(STAMP)
	npm install --prefix $(VENV)/axe --no-save --no-audit --no-fund --no-package-lock \
	  axe-core@$(AXE_VERSION) >/dev/null && touch $@ \
	  || echo "warning: could not install axe-core $(AXE_VERSION) from npm" >&2

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/triage demo

test: $(STAMP) $(AXE_STAMP)
	$(BIN)/pytest

# The README's pictures of the web app: the browser test saves each page it visits (PNG).
screenshots: $(STAMP) $(AXE_STAMP)
	TRIAGE_UI_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -rs tests/api/test_ui_browser.py
	@ls docs/screenshots/*.png >/dev/null  # the test skips without chromium: say so by failing

bench: $(STAMP)
	$(BIN)/python -m bench

# Quality from outside (issue 13): feedback-dev leave-one-product-out and fixtures held out
# through the user path, title quality, clustering at every size; bench/eval-results.{json,md}.
eval: $(STAMP)
	$(BIN)/python -m bench.eval

# Style, then dead code (vulture) and types (mypy) in triage/ and api/; both are configured in
# pyproject.toml, vulture's allow-list is vulture_allowlist.py.
lint: $(STAMP)
	$(BIN)/ruff check triage api tests bench fixtures
	$(BIN)/ruff format --check triage api tests bench fixtures
	$(BIN)/vulture
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix triage api tests bench fixtures
	$(BIN)/ruff format triage api tests bench fixtures

# Known vulnerabilities of every release in requirements.lock (pip-audit); exit 0 with a plain
# "nothing was checked" when the vulnerability database cannot be reached.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

# Runs the fault, fuzz and nasty-input tests and rewrites RELIABILITY.md from their results
# (PostgreSQL rows need TRIAGE_TEST_POSTGRES_URL, the restart row TRIAGE_TEST_RESTART_POSTGRES=1).
reliability: $(STAMP)
	$(BIN)/python tests/support/reliability_report.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache
