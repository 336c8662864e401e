"""Summarization (map-reduce, targets) and code generation (extraction, checks, retries)."""

from __future__ import annotations

import pytest

from agent.backends import FakeBackend
from agent.errors import SkillError
from skills.code.extract import (
    check_python,
    definitions_only,
    extract_blocks,
    strip_tests,
    user_tests,
    wants_language,
)
from skills.config import SkillsConfig
from skills.sandbox import detect_isolation
from skills.sandbox.isolation import sandbox_python
from skills.summarize.mapreduce import chunk_by_tokens, summarize_text

CAN_ISOLATE = detect_isolation(sandbox_python()).mode is not None


def words(text: str) -> int:
    return len(text.split())


def test_chunks_respect_the_budget_and_keep_all_text():
    text = "\n".join(f"Line {i} has exactly six words." for i in range(50))
    chunks = chunk_by_tokens(text, 40, words)
    assert len(chunks) > 5 and all(words(c) <= 40 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_map_reduce_summarises_long_text_in_parts_with_progress():
    text = " ".join(f"Sentence {i} mentions fact number {i}." for i in range(120))
    backend = FakeBackend(context_window=4096)
    seen: list[tuple[int, int]] = []
    out = "".join(summarize_text(backend, text, chunk_tokens=200, max_summary_tokens=20,
                                 progress=lambda d, t: seen.append((d, t))))
    calls = backend.history
    assert len(calls) >= 4  # several map calls, then the reduce
    assert "parts of one text" in calls[-1].messages[-1]["content"]
    assert out and seen[-1][0] == seen[-1][1]


def test_a_dialogue_summary_stops_after_two_sentences():
    dialogue = "#Person1#: Can I book a table for two?\n#Person2#: Yes, at eight.\n#Person1#: Thanks."
    backend = FakeBackend(["Mr. Lee books a table for two. It is at 8 p.m. The conversation shows how polite "
                           "people are."])
    out = "".join(summarize_text(backend, dialogue, kind="dialogue"))
    assert out == "Mr. Lee books a table for two. It is at 8 p.m."
    backend = FakeBackend(["First. Second. Third."])
    assert "".join(summarize_text(backend, "some text", kind="text")) == "First. Second. Third."


def test_reduce_terminates_with_a_tiny_budget():
    text = " ".join(f"word{i}" for i in range(400))
    backend = FakeBackend([" ".join(["long"] * 80)] * 50)
    assert "".join(summarize_text(backend, text, chunk_tokens=64, max_summary_tokens=80))
    assert len(backend.history) < 50


def test_summarize_the_session_through_the_agent(fake_agent):
    from skills import load_skills

    agent, backend = fake_agent(["Paris is in France.", "It has 2 million people.", "You asked about Paris."])
    agent.skills = load_skills()
    session = agent.new_session().id
    agent.chat("Where is Paris?", session_id=session)
    agent.chat("How many people live there?", session_id=session)
    reply = agent.chat("/summarize", session_id=session)
    assert reply.skill == "summarize" and reply.text == "You asked about Paris."
    prompt = backend.history[-1].messages[-1]["content"]
    assert "User:^Where^is^Paris?" in prompt and "Assistant:^It^has^2^million^people." in prompt  # marked


def test_summarize_a_knowledge_base_document_and_pasted_text(kb, request_for):
    from skills.summarize.skill import SummarizeSkill

    skill = SummarizeSkill()
    req = request_for("guide.md", memory=kb, replies=["Returns within 30 days."])
    assert "".join(skill.run(req)) == "Returns within 30 days."
    assert "Express^shipping^costs^12^euros" in req.backend.history[-1].messages[-1]["content"]  # marked text
    assert req.extra["summarize"]["target"] == "guide.md"
    req = request_for("too short", memory=kb)
    assert "already short" in "".join(skill.run(req))
    with pytest.raises(SkillError, match="no conversation to summarize"):
        list(skill.run(request_for("/summarize")))


def test_extract_blocks_and_checks():
    reply = "Here:\n```python\ndef f(s):\n    return s[::-1]\n```\nand\n```js\nx = 1\n```"
    blocks = extract_blocks(reply)
    assert [b.language for b in blocks] == ["python", "javascript"]
    assert extract_blocks("```py\ndef g():\n    return 1")[0].code.startswith("def g")  # unclosed fence
    assert extract_blocks("def h(x):\n    return x\n")[0].language == "python"  # no fence at all
    assert check_python("def f(:\n  pass").startswith("SyntaxError")
    assert check_python("x = 1") is None
    ask, tests = user_tests("write add(a, b)\nassert add(1, 2) == 3")
    assert ask == "write add(a, b)" and tests == "assert add(1, 2) == 3"
    assert wants_language("a Rust function that adds") == "rust"
    assert wants_language("reverse a string") == "python"
    assert strip_tests("def f():\n    return 1\nassert f() == 2\nif __name__ == '__main__':\n    f()\n") == \
        "def f():\n    return 1\n"


def test_definitions_only_drops_the_models_demo_code():
    code = ("import math\nLIMIT = 3\nPATTERN = str.upper('x')\n\n@staticmethod\ndef f(x):\n    # keep me\n"
            "    return math.sqrt(x)\n\nresult = f(4); print(result)\nwhile True:\n    pass\nclass A:\n    pass\n"
            "if __name__ == '__main__':\n    f(1)\nassert f(4) == 2\nprint(input())\n")
    kept = definitions_only(code)
    assert kept == ("import math\nLIMIT = 3\nPATTERN = str.upper('x')\n\n@staticmethod\ndef f(x):\n    # keep me\n"
                    "    return math.sqrt(x)\n\nclass A:\n    pass\n")
    broken = "def f(x):\n    return (x\nassert f(1) == 1\n"  # does not parse: only asserts go
    assert definitions_only(broken) == "def f(x):\n    return (x\n"
    # a reply that breaks down in its demo keeps the function before it
    assert definitions_only("def f(x):\n    return x\n\nprint(f(1)\n") == "def f(x):\n    return x\n"


def test_code_skill_retries_a_syntax_error_once(request_for):
    from skills.code.skill import CodeSkill

    req = request_for("write a Python function that reverses a string",
                      replies=["```python\ndef rev(s)\n    return s[::-1]\n```",
                               "```python\ndef rev(s):\n    return s[::-1]\n```"])
    text = "".join(CodeSkill().run(req))
    assert text.startswith("```python\ndef rev(s):") and "not run: code execution is off" in text
    assert check_python(extract_blocks(text)[0].code) is None
    retry_prompt = req.backend.history[1].messages[-1]["content"]
    assert "SyntaxError" in retry_prompt and req.extra["code"]["attempts"] == 2


@pytest.mark.skipif(not CAN_ISOLATE, reason="no sandbox isolation on this machine")
def test_code_skill_tests_in_the_sandbox_and_retries_with_the_failure(request_for):
    from skills.code.skill import CodeSkill

    skill = CodeSkill(SkillsConfig(code={"allow_execution": True}))
    req = request_for("write rev(s) that reverses a string\nassert rev('abc') == 'cba'",
                      replies=["```python\ndef rev(s):\n    return s\n```",
                               "```python\ndef rev(s):\n    return s[::-1]\n```"])
    text = "".join(skill.run(req))
    assert "passes your tests in the sandbox" in text
    assert "AssertionError" in req.backend.history[1].messages[-1]["content"]
    assert req.extra["code"]["executed"] and req.extra["code"]["passed"]


def test_code_skill_reports_refusal_when_the_sandbox_cannot_isolate(request_for):
    from skills.code.skill import CodeSkill
    from skills.sandbox import Isolation, Sandbox

    skill = CodeSkill(SkillsConfig(code={"allow_execution": True}),
                      sandbox=Sandbox(isolation=Isolation(None, "no namespaces")))
    req = request_for("add(a, b)\nassert add(1, 2) == 3", replies=["```python\ndef add(a, b):\n    return a + b\n```"])
    text = "".join(skill.run(req))
    assert "not run: code execution is refused" in text and not req.extra["code"]["executed"]


@pytest.mark.skipif(not CAN_ISOLATE, reason="no sandbox isolation on this machine")
def test_code_eval_harness_runs_checks_in_the_sandbox(tmp_path):
    import json

    from skills.evals.codegen import mbpp_problems, program_for, run_code_eval

    rows = [{"task_id": 11, "text": "Write a function add(a, b).", "code": "", "test_setup_code": "",
             "test_list": ["assert add(1, 2) == 3"]},
            {"task_id": 12, "text": "Write a function neg(x).", "code": "", "test_setup_code": "",
             "test_list": ["assert neg(1) == -1"]},
            {"task_id": 600, "text": "outside the test split", "code": "", "test_list": []}]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    problems = mbpp_problems(path)
    assert [p["id"] for p in problems] == ["MBPP/11", "MBPP/12"]
    backend = FakeBackend(["```python\ndef add(a, b):\n    return a + b\n```", "```python\ndef neg(x):\n    return x\n```"])
    r = run_code_eval(problems, backend=backend)
    assert r["pass@1"] == 50.0 and r["problems"] == 2
    he = {"kind": "humaneval", "prompt": "import math\ndef f(x):\n    '''doc'''\n", "entry_point": "f",
          "test": "def check(c):\n    assert c(4) == 2\ncheck(f)\n"}
    assert "import math" in program_for(he, "```python\ndef f(x):\n    return int(math.sqrt(x))\n```")
    assert program_for(he, "    return 2\n").startswith("import math\ndef f(x):")
    # the model's demo (an endless loop here) is not run: the checks decide
    demo = "```python\ndef f(x):\n    return int(math.sqrt(x))\n\nwhile True:\n    print(f(4))\n```"
    assert "while True" not in program_for(he, demo)
    loops = [{**he, "id": "HE/0", "test": "def check(c):\n    assert c(4) == 2\ncheck(f)\n"}]
    r = run_code_eval(loops, backend=FakeBackend([demo]))
    assert r["pass@1"] == 100.0 and r["replies_with_closed_fence"] == 1


def test_humaneval_problems_come_from_the_package():
    from skills.evals.codegen import humaneval_problems

    problems = humaneval_problems(3)
    assert len(problems) == 3 and problems[0]["id"] == "HumanEval/0" and "check(" in problems[0]["test"]


def test_rouge_scores_against_several_references():
    from skills.evals.dialogsum import rouge_scores

    r = rouge_scores(["the cat sat on the mat"], [["the cat sat on the mat", "a dog ran"]])
    assert r["best"]["rouge1"] == 100.0 and r["mean"]["rouge1"] < 100.0


def test_eval_summarize_cli_with_a_fake_backend(tmp_path, monkeypatch, capsys):
    import json

    from agent.cli.main import main

    rows = [{"fname": "t0", "dialogue": "#Person1#: Hi, I want to book a table for two tonight.\n#Person2#: "
             "Sure, at what time?\n#Person1#: Eight o'clock please.\n#Person2#: Done, see you then.",
             "summary1": "Person1 books a table for two at eight.", "summary2": "A table is booked.",
             "summary3": "Person1 reserves a table tonight."}]
    path = tmp_path / "ds.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setenv("LLMOS_MODEL__BACKEND", "fake")
    assert main(["eval", "summarize", "--dialogsum", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dialogues"] == 1 and set(out["best"]) == {"rouge1", "rouge2", "rougeL"}


@pytest.mark.skipif(not CAN_ISOLATE, reason="no sandbox isolation on this machine")
def test_a_worse_retry_does_not_replace_code_that_parses(request_for):
    from skills.code.skill import CodeSkill

    skill = CodeSkill(SkillsConfig(code={"allow_execution": True}))
    req = request_for("write rev(s)\nassert rev('ab') == 'ba'",
                      replies=["```python\ndef rev(s):\n    return s\n```", "```python\ndef rev(s:\n```"])
    text = "".join(skill.run(req))
    assert "def rev(s):\n    return s" in text and "fails your tests" in text
    assert req.extra["code"]["attempts"] == 2
