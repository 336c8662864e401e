"""A process for the forgetting crash test: stores memories, then dies by SIGKILL in the
middle of forgetting them.

``python tests/helpers/scripts/forget_crasher.py FOLDER WHERE [HNSW]`` (the repository root on
PYTHONPATH). ``WHERE`` is where the kill lands:

- ``index``: ``forget_user`` after its SQLite transaction committed, before the index files
  are removed and the database is scrubbed;
- ``transaction``: ``forget_user`` inside its SQLite transaction, after the rows were deleted
  and before the commit;
- ``session``: ``forget_session`` after its rows were deleted, before the index purge and the
  scrub.

Prints ``stored`` once the memories are in (index files saved), then forgets and is killed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from memory import FakeEmbedder, MemoryConfig, MemoryStore

CANARY = "zebracanary"


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    folder, where = Path(sys.argv[1]), sys.argv[2]
    hnsw = len(sys.argv) > 3 and sys.argv[3] == "hnsw"
    store = MemoryStore(folder, FakeEmbedder(), MemoryConfig(hnsw_threshold=8 if hnsw else 20_000))
    for n in range(12):
        store.add(f"{CANARY} annsecret number {n}", user_id="ann", session_id="s1")
    store.add("ann likes green tea", user_id="ann", session_id="s2")
    store.add(f"bob keeps his own {CANARY} note", user_id="bob", session_id="b1")
    store.search(CANARY, k=5, user_id="ann")  # load the index
    store.flush()
    print("stored", flush=True)
    if where == "index":
        store.indexes.drop = _die  # type: ignore[method-assign]
        store.forget("ann")
    elif where == "transaction":
        real = store.db.forget_namespace

        def forget_then_die(conn, ns):  # type: ignore[no-untyped-def]
            real(conn, ns)
            _die()

        store.db.forget_namespace = forget_then_die  # type: ignore[method-assign]
        store.forget("ann")
    elif where == "session":
        store.indexes.purge = _die  # type: ignore[method-assign]
        store.forget_session("ann", "s1")
    raise SystemExit(f"not killed ({where!r}?)")


if __name__ == "__main__":
    main()
