"""eval lm: perplexity on assistant tokens, BLEU / chrF / ROUGE-L of generated replies."""

from __future__ import annotations

import json
import math

from agent.toolbox.metrics import format_table, reference_scores


def test_reference_scores():
    same = reference_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert same == {"bleu": 100.0, "chrf": 100.0, "rougeL": 100.0}
    other = reference_scores(["a dog ran"], ["the cat sat on the mat"])
    assert other["bleu"] < 10 and other["rougeL"] == 0.0
    assert "bleu" in format_table([("bleu", 1.5), ("n", 3)])


def test_evaluate_a_tiny_model(tiny_model_dir, conversations_file):
    from agent.toolbox.eval_lm import evaluate_lm, format_eval

    result = evaluate_lm(conversations_file(6), str(tiny_model_dir("llama")), max_new_tokens=4, batch_size=4)
    assert result["conversations"] == 6 and result["references"] == 6 and result["tokens"] > 0
    assert math.isfinite(result["perplexity"]) and result["perplexity"] > 1
    assert {"bleu", "chrf", "rougeL", "samples"} <= set(result)
    assert "perplexity" in format_eval(result)


def test_eval_lm_command_writes_json(tmp_path, tiny_model_dir, conversations_file, capsys):
    from agent.cli.main import main

    out = tmp_path / "eval.json"
    code = main(["eval", "lm", "--data", str(conversations_file(4)), "--model", str(tiny_model_dir("gpt2")),
                 "--json", "--no-generate", "-o", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["perplexity"] > 1 and "bleu" not in printed
    assert json.loads(out.read_text())["tokens"] == printed["tokens"]
