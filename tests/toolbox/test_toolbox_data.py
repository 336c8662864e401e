"""Conversation files, cleaning, PII masking, the chitchat corpus and store exports."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agent.errors import InputError
from agent.toolbox.clean import CleanOptions, clean_conversations, normalize_text
from agent.toolbox.conversations import (
    prompt_and_reference,
    read_conversations,
    split_heldout,
    write_conversations,
)
from agent.toolbox.pii import mask_pii


def test_read_write_roundtrip_and_errors_name_the_line(tmp_path, conversations_file):
    convs = read_conversations(conversations_file(5))
    assert len(convs) == 5 and convs[0]["messages"][0]["role"] == "user"
    out = tmp_path / "copy.jsonl"
    assert write_conversations(convs, out) == 5 and read_conversations(out) == convs
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(convs[0]) + "\n" + json.dumps({"messages": [{"role": "bot", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2.*role 'bot'.*system, user, assistant"):
        read_conversations(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1 is not valid JSON"):
        read_conversations(bad)


def test_split_and_prompt_reference(conversations_file):
    convs = read_conversations(conversations_file(10))
    train, held = split_heldout(convs, 0.2, seed=1)
    assert len(train) == 8 and len(held) == 2 and not {id(c) for c in train} & {id(c) for c in held}
    prompt, reference = prompt_and_reference(convs[0])
    assert prompt[-1]["role"] == "user" and reference == "No, that is all. Have a nice day!"
    assert prompt_and_reference({"messages": [{"role": "assistant", "content": "hi"}]}) is None


@pytest.mark.parametrize("text, masked", [
    ("write to jane.doe+shop@example.co.uk today", "write to [EMAIL] today"),
    ("call +44 20 7946 0958 or (555) 123-4567", "call [PHONE] or [PHONE]"),
    ("card 4111 1111 1111 1111 please", "card [CARD] please"),
    ("order 1234567890123456 (not a card: fails Luhn)", "order 1234567890123456 (not a card: fails Luhn)"),
    ("in 2019 I paid 1,250.00 for order #123456 on 2024-05-01", "in 2019 I paid 1,250.00 for order #123456 on 2024-05-01"),
])
def test_pii_masking(text, masked):
    assert mask_pii(text) == masked


def test_cleaning_normalises_masks_filters_and_deduplicates():
    base = ("I would like to know how the refund works for an order that arrived broken last week, the box was "
            "crushed and two of the plates inside were cracked, so I cannot use them at all")
    convs = [
        {"messages": [{"role": "user", "content": "  Hello\u00a0 there\x07 "}, {"role": "user", "content": "again"},
                      {"role": "assistant", "content": "Hi! Mail me at help@example.com"}]},
        {"messages": [{"role": "user", "content": "Hello there\nagain"},
                      {"role": "assistant", "content": "Hi! Mail me at help@example.com"}]},   # exact duplicate
        {"messages": [{"role": "user", "content": base}, {"role": "assistant", "content": "We refund it in full."}]},
        {"messages": [{"role": "user", "content": base.replace("at all", "at all!!")},
                      {"role": "assistant", "content": "We refund it in full."}]},            # near duplicate
        {"messages": [{"role": "user", "content": "only a question"}]},                       # no reply
        {"messages": [{"role": "user", "content": "x" * 150}, {"role": "assistant", "content": "y" * 150}]},
        {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": ""}]},
    ]
    kept, report = clean_conversations(convs, CleanOptions(mask_pii=True, max_chars=250))
    assert [m["content"] for m in kept[0]["messages"]] == ["Hello there\nagain", "Hi! Mail me at [EMAIL]"]
    assert len(kept) == 2 and report.kept == 2 and report.input == 7
    assert report.removed == Counter(exact_duplicate=1, near_duplicate=1, no_assistant_reply=1, too_long=1, empty=1)
    assert report.pii_masked["email"] == 2 and report.messages_merged == 1
    assert "kept 2 of 7" in report.summary()
    assert normalize_text("a\r\n\n\n\nb\u200b c") == "a\n\nb c"


def test_chitchat_conversion_alternates_roles():
    from agent.toolbox.chitchat import chitchat_conversations

    convs = list(chitchat_conversations(limit=20))
    assert len(convs) == 20
    for conv in convs:
        roles = [m["role"] for m in conv["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
        assert conv["meta"]["source"] == "chitchat"


def test_export_from_the_conversation_store(tmp_path):
    from agent.dialogue.store import ConversationStore
    from agent.toolbox.export import export_store

    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    s1 = store.create_session("ann")
    store.add_turn(s1.id, "Where is my parcel?", "It left the warehouse today.")
    store.add_turn(s1.id, "Thanks", "You're welcome!")
    s2 = store.create_session("bob")
    store.add_turn(s2.id, "Hi", "Hello, how can I help?")
    store.create_session("bob")  # empty: skipped
    store.close()
    convs = list(export_store(path, system="You are Acme support."))
    assert len(convs) == 2
    assert [m["role"] for m in convs[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert convs[0]["meta"]["user_id"] == "ann" and convs[1]["meta"]["user_id"] == "bob"
    assert list(export_store(path, users=["bob"], include_ids=False)) == [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}]}]
    with pytest.raises(InputError, match="no conversation store"):
        list(export_store(tmp_path / "missing.sqlite3"))


def test_public_api_is_explicit_and_lazy():
    import subprocess
    import sys

    import agent.toolbox as toolbox
    from tests.helpers.public_api import api_problems

    assert api_problems(toolbox) == []
    # importing the package (and the CLI module) must not pull in torch or transformers
    code = ("import sys, agent.toolbox, agent.cli.cmd_toolbox; "
            "print(any(m in sys.modules for m in ('torch', 'transformers', 'peft')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
