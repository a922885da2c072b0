# Every target sets up .venv/ first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench eval lint format audit reliability clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU build; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/triage demo

test: $(STAMP)
	$(BIN)/pytest

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

# Known vulnerabilities of the installed pinned dependencies (pip-audit); exit 0 with a plain
# "nothing was checked" when the vulnerability database cannot be reached.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

# Runs the fault, fuzz and nasty-input tests and rewrites RELIABILITY.md from their results
# (PostgreSQL rows need TRIAGE_TEST_POSTGRES_URL, the restart row TRIAGE_TEST_RESTART_POSTGRES=1).
reliability: $(STAMP)
	$(BIN)/python tests/support/reliability_report.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache
