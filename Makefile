# Set-up and everyday commands. `make test` and `make demo` each do the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint docs demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint,docs]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check kmerdb tests tools docs
	$(VENV)/bin/mypy

# The documentation site, offline, into site/: fails on any warning (broken link, bad docstring).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

demo: $(STAMP)
	rm -rf demo && mkdir -p demo
	$(VENV)/bin/kmerdb build demo/fixtures.kmerdb fixtures/genome_a.fa fixtures/genome_b.fa.gz fixtures/genome_c.fq --k 21 --counts --quiet
	$(VENV)/bin/kmerdb query demo/fixtures.kmerdb fixtures/reads.fa
	$(VENV)/bin/kmerdb info demo/fixtures.kmerdb

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) tools/bench.py

clean:
	rm -rf $(VENV) demo build site *.egg-info
