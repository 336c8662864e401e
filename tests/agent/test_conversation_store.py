import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from agent.dialogue.store import ConversationStore, StoreError
from agent.errors import InputError


def test_sessions_and_turns_survive_a_restart(tmp_path: Path):
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path)
    session = store.create_session("ann")
    store.add_turn(session.id, "hello", "hi ann", user_meta={"sentiment_score": 0.5})
    store.rename_session(session.id, "greetings")
    store.close()

    again = ConversationStore(path)
    [info] = again.sessions("ann")
    assert info.title == "greetings" and info.turns == 1
    messages = again.messages(session.id)
    assert [(m.role, m.content) for m in messages] == [("user", "hello"), ("assistant", "hi ann")]
    assert again.user_sentiments(session.id) == [0.5]
    again.delete_session(session.id)
    assert again.sessions("ann") == []


def test_a_session_belongs_to_one_user(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3")
    session = store.create_session("ann")
    with pytest.raises(InputError, match="another user"):
        store.create_session("bob", session_id=session.id)


def test_turn_into_a_deleted_session_stores_nothing(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3")
    session = store.create_session("ann")
    store.delete_session(session.id)
    with pytest.raises(StoreError):
        store.add_turn(session.id, "a", "b")
    assert store.messages(session.id) == []


def test_concurrent_threads_keep_every_turn_in_order(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3")
    session = store.create_session("ann")

    def writer(name: str) -> None:
        for i in range(25):
            store.add_turn(session.id, f"{name}-{i}", f"re {name}-{i}")

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    messages = store.messages(session.id)
    assert len(messages) == 200
    assert [m.seq for m in messages] == list(range(1, 201))
    # every reply directly follows its own question
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer.content == f"re {question.content}"


def _process_writer(path: str, session_id: str, name: str) -> None:
    store = ConversationStore(path)
    for i in range(20):
        store.add_turn(session_id, f"{name}-{i}", f"re {name}-{i}")
    store.close()


def test_concurrent_processes_share_the_store(tmp_path: Path):
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path)
    session = store.create_session("ann")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(path), session.id, f"p{n}")) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    messages = store.messages(session.id)
    assert len(messages) == 120
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer.content == f"re {question.content}"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "c.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable"):
        ConversationStore(bad)
