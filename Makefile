# Every target sets up .venv/ first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint format audit clean

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

lint: $(STAMP)
	$(BIN)/ruff check triage api tests bench fixtures
	$(BIN)/ruff format --check triage api tests bench fixtures

format: $(STAMP)
	$(BIN)/ruff check --fix triage api tests bench fixtures
	$(BIN)/ruff format triage api tests bench fixtures

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
