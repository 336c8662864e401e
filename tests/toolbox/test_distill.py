"""Distillation: batched, resumable teacher replies, then a student trained on them."""

from __future__ import annotations

import json

import pytest

from agent.errors import InputError
from agent.toolbox.distill import distill_prompts, generate_teacher_data


def test_prompts_from_conversations_and_text_files(tmp_path, conversations_file):
    prompts = distill_prompts(conversations_file(4))
    assert len(prompts) == 4 and prompts[0][-1] == {"role": "user", "content": "Thanks, anything else?"}
    assert prompts[0][1]["weight"] == 0  # earlier replies are context, not targets
    text = tmp_path / "prompts.txt"
    text.write_text("first question\n\nsecond question\n")
    assert distill_prompts(text) == [[{"role": "user", "content": "first question"}],
                                     [{"role": "user", "content": "second question"}]]
    text.write_text("\n")
    with pytest.raises(InputError, match="no prompt"):
        distill_prompts(text)


@pytest.mark.slow
def test_teacher_replies_resume_after_a_torn_write(tmp_path, tiny_model_dir, conversations_file):
    prompts, out = conversations_file(5), tmp_path / "teacher.jsonl"
    first = generate_teacher_data(str(tiny_model_dir("qwen2")), prompts, out, batch_size=2, max_new_tokens=6,
                                  limit=3, progress=False)
    assert first["generated"] + first["empty"] == 3 and first["reused"] == 0
    lines = out.read_text().splitlines()
    record = json.loads(lines[0])
    assert record["messages"][-1]["role"] == "assistant" and record["meta"]["teacher"] == str(tiny_model_dir("qwen2"))
    with out.open("a") as handle:
        handle.write('{"messages": [{"role": "us')  # a crash in the middle of a line
    second = generate_teacher_data(str(tiny_model_dir("qwen2")), prompts, out, batch_size=2, max_new_tokens=6,
                                   progress=False)
    assert second["reused"] == first["generated"] and second["generated"] + second["empty"] == 5 - first["generated"]
    assert all(json.loads(line) for line in out.read_text().splitlines())


@pytest.mark.slow
def test_distill_from_the_command_line(tmp_path, tiny_model_dir, conversations_file, capsys):
    from agent.cli.main import main

    out = tmp_path / "student"
    code = main(["train", "lm", "--distill-from", str(tiny_model_dir("qwen2")), "--model", str(tiny_model_dir("llama")),
                 "--data", str(conversations_file(6)), "-o", str(out), "--max-steps", "2", "--batch-size", "2",
                 "--grad-accum", "1", "--teacher-max-tokens", "8", "--teacher-batch-size", "3", "--quiet", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["distillation"]["teacher"] == str(tiny_model_dir("qwen2")) and report["steps"] == 2
    assert (out / "teacher.jsonl").is_file() and (out / "config.json").is_file()
