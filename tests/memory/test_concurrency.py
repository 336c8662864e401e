"""Searches running while one writer adds: no errors, only valid hits."""

from __future__ import annotations

import math
import threading
import time

from memory import MemoryStore
from memory.records import namespace_for


def test_concurrent_searches_with_one_writer(open_store) -> None:
    # a low threshold: the writer converts the index to HNSW while searches run
    store: MemoryStore = open_store(hnsw_threshold=300, index_save_every=50)
    store.add_many([f"seed memory {i} about subject{i % 7}" for i in range(50)], user_id="ann")
    store.add("bob's private memory about subject3", user_id="bob")
    errors: list[BaseException] = []
    searches = [0]
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                if i % 10 == 0:
                    written.extend(store.add_many([f"bulk {i}-{j} subject{j}" for j in range(20)], user_id="ann"))
                else:
                    written.append(store.add(f"live memory {i} about subject{i % 7}", user_id="ann"))
                if i % 25 == 0 and written:
                    store.delete(written[:2])
                    del written[:2]
                i += 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    def searcher(seed: int) -> None:
        n = seed
        try:
            while not stop.is_set():
                hits = store.search(f"memory about subject{n % 7}", k=8, user_id="ann")
                assert hits, "a populated store returned nothing"
                for hit in hits:
                    assert hit.user_id == "ann" and hit.text and math.isfinite(hit.score)
                    assert 0.0 <= hit.score <= 1.0
                searches[0] += 1
                n += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=searcher, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[0]
    assert searches[0] > 50
    assert store.count("ann") > 300 and store.indexes.get(namespace_for("ann")).kind == "hnsw"
    store.close()

