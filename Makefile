# Two commands on a fresh machine (Python >= 3.10):
#   make book   -- build the rendered book into _build/html
#   make test   -- run every test: the library tests and every notebook under nbval
# Each makes the virtual environment in .venv first if it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Quiet, deterministic test runs: no progress bars, no GUI backend, fixed hashing.
TEST_ENV := CI=1 MPLBACKEND=Agg PYTHONHASHSEED=0 PYDEVD_DISABLE_FILE_VALIDATION=1

.PHONY: book test test-lib test-notebooks venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -p no:cacheprovider -n 2 --dist loadfile --nbval tests book

test-lib: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -p no:cacheprovider tests

test-notebooks: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -p no:cacheprovider -n 2 --dist loadfile --nbval book

clean:
	rm -rf _build .pytest_cache
