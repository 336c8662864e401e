"""IFEval prompts read from a local file and scored offline with the official checkers.

The checkers come from the ``if-verifiable`` package (``pip install 'llmos[eval]'``), which
carries Google's IFEval instruction classes. Two things keep it offline:

- samples are built from the local ``input_data.jsonl`` (its ``get_eval_data`` would fetch
  the data set from the Hugging Face Hub);
- sentence counting (``length_constraints:number_sentences``) and NLTK's word tokenizer
  load NLTK's English Punkt model, which no package ships; an untrained Punkt tokenizer
  with the common English abbreviations stands in for it (it splits on sentence-final
  punctuation the same way and differs only on rare abbreviations).

Scores follow the paper: *strict* checks the reply as it is, *loose* also accepts it
without its first line, its last line or ``*`` marks. Prompt level: every instruction of a
prompt passes; instruction level: instructions passed / instructions (not a mean of
per-prompt fractions).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, InputError

__all__ = ["IFEvalPrompt", "load_ifeval", "score_ifeval", "is_echo", "ECHO_EXEMPT"]

_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc", "ltd", "co", "vs", "etc", "e.g", "i.e",
                  "u.s", "a.m", "p.m", "no", "fig", "approx", "dept", "est", "mt", "jan", "feb", "mar", "apr", "jun",
                  "jul", "aug", "sep", "sept", "oct", "nov", "dec"}

ECHO_EXEMPT = ("combination:repeat_prompt",)
"""Instructions that ask for the prompt to be repeated: such replies are not echoes."""


@dataclass(frozen=True)
class IFEvalPrompt:
    key: int
    prompt: str
    instruction_id_list: list[str] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)


def load_ifeval(path: str | Path, *, limit: int | None = None, seed: int = 0) -> list[IFEvalPrompt]:
    """The prompts of an IFEval ``input_data.jsonl``; with ``limit``, a seeded sample of
    that many (the same for the same seed, so modes and models compare on one set)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no IFEval file at {file}; pass the path of input_data.jsonl "
                         "(e.g. ../shared/data/ifeval/input_data.jsonl)")
    prompts = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompts.append(IFEvalPrompt(int(row["key"]), str(row["prompt"]), list(row["instruction_id_list"]),
                                        [dict(k or {}) for k in row["kwargs"]]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{file}:{n} is not an IFEval row ({exc}); expected "
                             "{key, prompt, instruction_id_list, kwargs}") from None
    if limit is not None and limit < len(prompts):
        prompts = sorted(random.Random(seed).sample(prompts, limit), key=lambda p: p.key)
    return prompts


def _checkers() -> Any:
    try:
        import if_verifiable.ifeval.instructions_util as util
        from if_verifiable import IFEvalSample, evaluate_output_for_sample
    except ImportError:
        raise ConfigError("scoring IFEval needs the if-verifiable package: pip install 'llmos[eval]'") from None
    import nltk.tokenize
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(_ABBREVIATIONS)
    tokenizer = PunktSentenceTokenizer(params)
    # NLTK's English Punkt data (the pickle and punkt_tab) is not installed by any package
    util._get_sentence_tokenizer = lambda: tokenizer
    nltk.tokenize._get_punkt_tokenizer = lambda language="english": tokenizer  # word_tokenize's sentences
    return IFEvalSample, evaluate_output_for_sample


def score_ifeval(prompts: Sequence[IFEvalPrompt], replies: Sequence[str]) -> dict[str, Any]:
    """Strict and loose accuracy at prompt and instruction level, and per-prompt passes."""
    sample_cls, evaluate = _checkers()
    if len(prompts) != len(replies):
        raise ValueError("one reply per prompt")
    prompt_strict = prompt_loose = inst_strict = inst_loose = instructions = 0
    passed: list[bool] = []
    for p, reply in zip(prompts, replies, strict=True):
        # the checkers read kwargs with None for unset options, as the official data has them
        sample = sample_cls(key=p.key, prompt=p.prompt, instruction_id_list=p.instruction_id_list, kwargs=p.kwargs)
        results, scores = evaluate("ifeval", sample, reply)
        prompt_strict += int(scores.binary_strict == 1.0)
        prompt_loose += int(scores.binary_loose == 1.0)
        inst_strict += sum(r.strict_pass for r in results)
        inst_loose += sum(r.loose_pass for r in results)
        instructions += len(results)
        passed.append(scores.binary_strict == 1.0)
    n = max(1, len(prompts))
    return {"prompt_strict": round(prompt_strict / n, 4), "prompt_loose": round(prompt_loose / n, 4),
            "inst_strict": round(inst_strict / max(1, instructions), 4),
            "inst_loose": round(inst_loose / max(1, instructions), 4),
            "instructions": instructions, "passed": passed}


_WORD = re.compile(r"[a-z0-9']+")


def is_echo(prompt: IFEvalPrompt | str, reply: str, *, share: float = 0.5) -> bool:
    """Whether ``reply`` mostly repeats the prompt (at least ``share`` of the prompt's word
    trigrams appear in it) although the prompt does not ask for that. A reply can score
    on format instructions by echoing, so a whole-turn score is read with this beside it."""
    text = prompt.prompt if isinstance(prompt, IFEvalPrompt) else prompt
    if isinstance(prompt, IFEvalPrompt) and any(i in ECHO_EXEMPT for i in prompt.instruction_id_list):
        return False
    words, said = _WORD.findall(text.lower()), _WORD.findall(reply.lower())
    grams = {tuple(words[i:i + 3]) for i in range(len(words) - 2)}
    if len(grams) < 4:
        return False
    seen = {tuple(said[i:i + 3]) for i in range(len(said) - 2)}
    return len(grams & seen) / len(grams) >= share
