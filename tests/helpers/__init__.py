"""Shared test helpers: plain modules (no fixtures, no tests) that test files import as
``from tests.helpers.<module> import ...``.

The conftest.py files hold only fixtures (which may build on these helpers); no test imports
from a conftest.py or from another test file. Among the modules here:

- ``tiny_models``: a tiny trained tokenizer, tiny randomly initialised models per family, and
  checks on what a (trained) tiny model says and holds;
- ``understand``: small labelled intent/sentiment sets and a tiny sentence-transformers encoder;
- ``memory``: an in-memory stand-in for the memory store; ``embedders``: a fake embedder that
  records what it embedded; ``documents``: a minimal PDF and a tiny LoCoMo file;
- ``server``: a live uvicorn server on a free port, a keyword understanding;
- ``tui`` and ``tui_fakes``: pilot shortcuts for the terminal UI and the fake agent it drives;
- ``examples``: the examples folder and an example's agent built from its config;
- ``skills``, ``tools``, ``toolbox``: the example plugin and dist-info records, sample tools,
  small support conversations;
- ``public_api``: checks that a package's ``__all__`` is what it exports;
- ``scripts/``: programs the tests run as processes, by path (see its ``__init__``).
"""
