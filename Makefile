# Two commands do everything on a fresh Debian machine with Python 3.11 (see README):
#   make book   # venv + offline data + MathJax, execute notebooks with papermill, build the book
#   make test   # venv (+ the Ray extra) + offline data, then the whole test suite (unit tests, Ray sweeps,
#               # notebook smoke runs)
# Both are idempotent: a second run reuses the venv, the data and the assets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
STAMP := $(VENV)/.phn-installed
FASHION_DEB := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
MATHJAX := book/_assets/mathjax/tex-chtml.js
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
EXECUTED := $(patsubst notebooks/%.ipynb,book/executed/%.ipynb,$(NOTEBOOKS))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The sizes of every chapter (phn/profiles.py): smoke, cpu (the offline default), gpu or paper.
PROFILE ?= cpu
# Notebooks that take the profile (the ledger and performance pages have no sizes of their own).
PROFILED := quickstart freeze noise benchmarks ablations cosine convergence
PROFILE_STAMP := book/executed/.profile-$(PROFILE)

# A second seed set of the section chapters (the ledger page compares its verdicts with the book's).
SEEDS ?= [3, 4, 5]
SECOND := runs/second-seeds
SECTIONS := freeze noise benchmarks ablations cosine
# The ledger page compares the book with this machine's second seed set or, without one, with a second
# set recorded in benchmarks/results/ (`make record-second-seeds`): a seed set of every chapter takes
# hours, so the two may come from different sessions.
RECORDED_SECOND := benchmarks/results/ledger-$(PROFILE)-seeds-$(shell echo '$(SEEDS)' | tr -cs '0-9' '-' | sed 's/^-//;s/-$$//')
COMPARE = $(or $(if $(wildcard $(SECOND)/*.claims.json),$(SECOND)),$(if $(wildcard $(RECORDED_SECOND)/*.claims.json),$(RECORDED_SECOND)))

.PHONY: help venv data assets notebooks book test clean second-seeds record-ledger record-second-seeds

help:
	@echo "make book   build the book (book/_build/html) on the offline default configuration"
	@echo "            (PROFILE=smoke|cpu|gpu|paper chooses every chapter's sizes; default cpu)"
	@echo "make test   run the test suite, notebook smoke runs included"
	@echo "make second-seeds   the section chapters again on SEEDS (default [3, 4, 5]) for the ledger's comparison"
	@echo "make record-ledger, make record-second-seeds   keep a build's ledger in benchmarks/results/ for later sessions"

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo 'make: could not create $(VENV); on Debian: apt-get install python3-venv' >&2; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

# The optional Ray extra (phn.sweep): the tests run the sweeps on local Ray, so `make test` installs it.
SWEEP_STAMP := $(VENV)/.phn-sweep-installed
$(SWEEP_STAMP): requirements-sweep.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-sweep.txt
	touch $@

# FashionMNIST, the offline default, from the Debian package (real files, installed read-only).
data:
	@if [ -f $(FASHION_DEB) ] || [ -d data/FashionMNIST ] || [ -n "$${PHN_DATA:-}" -a -d "$${PHN_DATA:-/nonexistent}/FashionMNIST" ]; then \
	  echo "FashionMNIST: found"; \
	else \
	  echo "FashionMNIST: installing the Debian package dataset-fashion-mnist"; \
	  $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	fi

# MathJax 3 served from the book itself, so formulas render offline.
$(MATHJAX): package.json package-lock.json
	command -v npm >/dev/null || { echo 'make: npm is needed for MathJax; on Debian: apt-get install npm' >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf book/_assets/mathjax && mkdir -p book/_assets
	cp -r node_modules/mathjax/es5 book/_assets/mathjax
	touch $@

assets: $(MATHJAX)

# papermill is the only thing that executes notebooks for the book (through `python -m phn notebook`,
# which refuses unknown parameters and renames the output only when the run succeeded); the book
# renders the executed copies as they are. Runs are cached under runs/, so a rebuild retrains nothing.
book/executed/%.ipynb: notebooks/%.ipynb $(STAMP) $(PROFILE_STAMP) $(shell find phn -name '*.py')
	@mkdir -p book/executed
	$(PY) -m phn notebook --cwd notebooks $< $@ $(if $(filter $*,$(PROFILED)),-p profile $(PROFILE)) \
	  $(if $(and $(filter ledger,$*),$(COMPARE)),-p compare_dir $(abspath $(COMPARE)))

# Executed notebooks of another profile are out of date: the stamp names the profile they ran at.
$(PROFILE_STAMP):
	@mkdir -p book/executed
	rm -f book/executed/.profile-*
	touch $@

# The ablations and cosine notebooks vary the benchmark's runs (results cache): the benchmark trains them first.
book/executed/ablations.ipynb book/executed/cosine.ipynb: book/executed/benchmarks.ipynb

# The ledger joins the claims every other notebook recorded in this build (book/executed/*.claims.json,
# written beside each executed notebook): it runs last.
book/executed/ledger.ipynb: $(filter-out book/executed/ledger.ipynb,$(EXECUTED))

# The section chapters again on SEEDS, executed into runs/second-seeds (not rendered); rebuild the
# book afterwards (`rm book/executed/ledger.ipynb && make book`) and the ledger compares both.
# SECTIONS='benchmarks ablations' runs some of them (a session too short for all: record each part).
second-seeds: venv data
	@mkdir -p $(SECOND)
	for nb in $(SECTIONS); do \
	  $(PY) -m phn notebook --cwd notebooks notebooks/$$nb.ipynb $(SECOND)/$$nb.ipynb -p profile $(PROFILE) -p seeds '$(SEEDS)'; \
	done

# Keep a build's ledger for later sessions (benchmarks/record_ledger.py writes benchmarks/results/
# ledger-PROFILE-seeds-...): the book's seeds after `make book`, the second set after `make second-seeds`.
record-ledger: venv
	$(PY) benchmarks/record_ledger.py --profile $(PROFILE) --claims book/executed --command 'make book PROFILE=$(PROFILE)'

# ADD=1 adds this session's chapters to a seed set recorded in part by an earlier session; OVERWRITE=1
# replaces a recorded set. The book's own seeds, chapter by chapter, in a folder of their own (so that the
# ledger never compares the book with itself): SEEDS='[0, 1, 2]' SECOND=runs/first-seeds on both targets.
record-second-seeds: venv
	$(PY) benchmarks/record_ledger.py --profile $(PROFILE) --claims $(SECOND) --seeds '$(SEEDS)' \
	  --command "make second-seeds PROFILE=$(PROFILE) SEEDS='$(SEEDS)' SECTIONS='$(SECTIONS)'$(if $(filter-out runs/second-seeds,$(SECOND)), SECOND=$(SECOND))" \
	  --out $(RECORDED_SECOND) --notebooks $(SECTIONS) $(if $(ADD),--add) $(if $(OVERWRITE),--overwrite)

notebooks: $(EXECUTED)

book: venv data assets notebooks
	$(VENV)/bin/jupyter-book build book/
	@echo "The book: $(abspath book/_build/html/index.html)"

test: venv $(SWEEP_STAMP) data
	$(PY) -m pytest --nbval

clean:
	rm -rf book/_build book/executed
