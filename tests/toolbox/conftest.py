"""Fixtures for the toolbox tests: small conversation files in the shapes users bring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.toolbox import support_conversations


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One CPU thread for these tests: the models are small, and on a busy 2-core machine
    two OpenMP threads spin-wait for each other and run several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def conversations_file(tmp_path: Path):
    def make(n: int = 16, name: str = "convs.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(c) + "\n" for c in support_conversations(n)))
        return path

    return make
