# Two commands on a fresh machine (Python >= 3.10):
#   make book   -- build the rendered book into _build/html
#   make test   -- run every test: the library tests, every notebook under nbval (strict),
#                  the rendered pages in headless Chromium, and every chapter in a
#                  Colab-like runtime
# Each makes what it needs first (.venv, and for the tests chromium, a local MathJax and
# .venv-colab) when it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
COLAB  := .venv-colab
COLAB_STAMP := $(COLAB)/.installed
MATHJAX := .cache/mathjax/es5/tex-mml-chtml.js
MATHJAX_VERSION := 3.2.2

# Quiet, deterministic test runs: no progress bars, fixed hashing. No MPLBACKEND: the notebook
# kernels must draw with Jupyter's inline backend, as when the notebooks were stored.
TEST_ENV := CI=1 PYTHONHASHSEED=0 PYDEVD_DISABLE_FILE_VALIDATION=1
PYTEST   := $(TEST_ENV) $(PY) -m pytest -p no:cacheprovider

.PHONY: book test test-lib test-notebooks test-book colab-env browser-deps venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# Everything, in one pytest run spread over both cores.
test: book browser-deps colab-env
	$(PYTEST) -n 2 --dist loadfile --durations=30 --nbval tests book

test-lib: $(STAMP)
	$(PYTEST) --ignore=tests/book tests

test-notebooks: $(STAMP)
	$(PYTEST) -n 2 --dist loadfile --nbval book

test-book: book browser-deps colab-env
	$(PYTEST) -n 2 --dist loadfile tests/book

# Debian's chromium for the browser test, and the MathJax release the pages load from the
# CDN (answered locally: the test browser reaches nothing but localhost).
browser-deps: $(MATHJAX)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "chromium is needed for the browser test: apt-get install chromium (as root)"; exit 1; }

$(MATHJAX):
	mkdir -p .cache && cd .cache && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz && rm -rf mathjax && mv package mathjax && rm mathjax-$(MATHJAX_VERSION).tgz

# A runtime shaped like Colab's, and a wheel of this repository for the chapters' first cell.
colab-env: $(COLAB_STAMP) $(STAMP)
	rm -rf _build/colab && $(PY) -m pip wheel --quiet --no-deps -w _build/colab . && rm -rf build

$(COLAB_STAMP): tests/book/colab_requirements.txt
	test -x $(COLAB)/bin/python || $(PYTHON) -m venv $(COLAB)
	$(COLAB)/bin/pip install --quiet -r tests/book/colab_requirements.txt
	touch $(COLAB_STAMP)

clean:
	rm -rf _build .pytest_cache
