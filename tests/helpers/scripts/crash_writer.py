"""A writer process for the crash test: adds memories until it is killed.

Prints ``ok <id> <text>`` after each add returns (so after its SQLite commit). Run as
``python tests/helpers/scripts/crash_writer.py FOLDER START``, the repository root on
PYTHONPATH.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memory import FakeEmbedder, MemoryConfig, MemoryStore


def main() -> None:
    folder, start = Path(sys.argv[1]), int(sys.argv[2])
    # frequent saves and a low HNSW threshold so kills land in saves and conversions too
    store = MemoryStore(folder, FakeEmbedder(), MemoryConfig(index_save_every=3, hnsw_threshold=120))
    n = start
    while True:
        if n % 5 == 0:
            texts = [f"batch memory {n}-{j} token{n}x{j}" for j in range(4)]
            for row, text in zip(store.add_many(texts, user_id="crash"), texts, strict=True):
                print(f"ok {row} {text}", flush=True)
        else:
            text = f"single memory {n} token{n}"
            print(f"ok {store.add(text, user_id='crash')} {text}", flush=True)
        n += 1


if __name__ == "__main__":
    main()
