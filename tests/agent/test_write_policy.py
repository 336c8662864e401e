"""What the agent keeps in long-term memory: what a user tells about themselves, not what
they ask for; decided per sentence, since the intent head misreads conversation."""

from __future__ import annotations

import pytest

from agent.turn import Label
from agent.understand.routing import worth_remembering

KEPT = [
    "Thanks, Mel! Your backing really means a lot. I felt super powerful giving my talk.",  # the head: writing_request
    "Gonna explore more and volunteer at shelters next month. We can't wait!",
    "Wow, that's gorgeous! My kids and I just finished a pottery class.",
    "I am a software engineer with 7 years of experience, and I am looking for a new job.",
    "my order 4417 arrived broken",
    "Hey! How are you? I just got back from Oslo.",
]
DROPPED = [
    "Write a short story about a cat",
    "Can you help me make an advertisement for a new product? It's for my shop.",
    "I want you to write an essay about my city.",
    "What is the capital of France?",
    "Thanks, Mel!",
    "That bowl is gorgeous! Did you make it?",
    "Summarize this dialogue:\nA: hi\nB: hello\nA: I moved to Lyon",
]


@pytest.mark.parametrize("text", KEPT)
def test_statements_about_the_speaker_are_kept_whatever_the_head_says(text):
    assert worth_remembering(text, Label(label="writing_request", score=0.9))
    assert worth_remembering(text, None)


@pytest.mark.parametrize("text", DROPPED)
def test_requests_questions_and_courtesies_are_not(text):
    assert not worth_remembering(text, None)


def test_the_head_still_vetoes_what_it_reads_reliably():
    assert not worth_remembering("I live in Lyon since May", Label(label="question", score=0.9))
    assert worth_remembering("I live in Lyon since May", Label(label="question", score=0.3))
