"""The loss mask: assistant tokens only, in the format the model is prompted with."""

from __future__ import annotations

import pytest

from agent.errors import InputError
from agent.toolbox.sft_data import IGNORE, ChatEncoder, collate

CONV = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello, how are you today?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "Once upon a time"},
    {"role": "assistant", "content": "there was a tiny model."},
]}


def _targets(tokenizer, row):
    """The labelled stretches of a row, decoded."""
    pieces, current = [], []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label == IGNORE:
            if current:
                pieces.append(tokenizer.decode(current))
                current = []
        else:
            assert label == token
            current.append(token)
    if current:
        pieces.append(tokenizer.decode(current))
    return pieces


def test_chat_template_labels_only_replies_and_their_end_token(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("llama"))
    row = ChatEncoder(tok, 512).encode(CONV)
    assert _targets(tok, row) == ["The capital of France is Paris.</s>\n", "there was a tiny model.</s>\n"]
    # the prompt part is exactly what LanguageModel.format_chat feeds the model
    prompt = tok.apply_chat_template(CONV["messages"][:2], tokenize=False, add_generation_prompt=True)
    first = next(i for i, label in enumerate(row["labels"]) if label != IGNORE)
    assert tok.decode(row["input_ids"][:first]) == prompt


def test_weight_zero_replies_are_context_only(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("llama"))
    conv = {"messages": [dict(m) for m in CONV["messages"]]}
    conv["messages"][2]["weight"] = 0
    assert _targets(tok, ChatEncoder(tok, 512).encode(conv)) == ["there was a tiny model.</s>\n"]


def test_plain_transcript_for_models_without_a_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("gpt2"))
    encoder = ChatEncoder(tok, 512)
    text, _ = encoder.spans(CONV)
    assert text.startswith("System: Be brief.\nUser: Hello, how are you today?\nAssistant: The capital")
    assert _targets(tok, encoder.encode(CONV)) == [" The capital of France is Paris.</s>", " there was a tiny model.</s>"]


def test_truncation_and_rows_without_targets(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("llama"))
    short = ChatEncoder(tok, 60)
    row = short.encode(CONV)
    assert len(row["input_ids"]) == 60 and _targets(tok, row) == ["The capital of France is Paris.</s>\n"]
    rows, stats = short.encode_all([CONV, {"messages": [{"role": "user", "content": "only a question"}]}])
    assert len(rows) == 1 and stats.truncated == 1 and stats.skipped_no_target == 1
    with pytest.raises(InputError, match="too small"):
        ChatEncoder(tok, 4)


def test_collate_pads_with_ignored_labels():
    batch = collate([{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7], "attention_mask": [1, 1, 1]},
                     {"input_ids": [8], "labels": [8], "attention_mask": [1]}], pad_id=0, multiple_of=4)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE], [8, IGNORE, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
