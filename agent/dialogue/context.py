"""The prompt stage's arithmetic: fit persona, summary, history and message in the context.

The newest turns are kept whole; turns that no longer fit are handed back as overflow so
the dialogue manager can fold them into the session's running summary instead of silently
dropping them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.errors import InputError

__all__ = ["PromptPlan", "plan_prompt", "MESSAGE_OVERHEAD", "transcript"]

# Tokens a chat template adds around each message (role markers, separators); a safe
# over-estimate for ChatML-style templates.
MESSAGE_OVERHEAD = 8


@dataclass
class Turn:
    role: str
    content: str
    seq: int = 0


@dataclass
class PromptPlan:
    messages: list[dict[str, str]]
    prompt_tokens: int
    overflow: list[Turn] = field(default_factory=list)
    """History turns (oldest first) that did not fit and are not yet summarised."""


def plan_prompt(system: str, history: Sequence[Turn], user_content: str, *, count: Callable[[str], int],
                budget: int, summary_reserve: int = 0) -> PromptPlan:
    """Choose which history turns go into the prompt.

    ``budget`` is the most prompt tokens allowed; ``summary_reserve`` tokens are kept free
    for a summary that may be added to ``system`` afterwards.
    """
    fixed = count(system) + count(user_content) + 2 * MESSAGE_OVERHEAD + summary_reserve
    if fixed > budget:
        raise InputError(
            f"the message needs about {fixed} prompt tokens but the model's context allows {budget}; "
            "shorten it or use a model with a longer context"
        )
    used = fixed
    kept: list[Turn] = []
    index = len(history)
    # Walk back from the newest turn; stop at the first that does not fit, so the kept
    # history stays contiguous.
    while index > 0:
        turn = history[index - 1]
        cost = count(turn.content) + MESSAGE_OVERHEAD
        if used + cost > budget:
            break
        used += cost
        kept.append(turn)
        index -= 1
    kept.reverse()
    # Never start the kept history with an orphaned assistant reply.
    while kept and kept[0].role == "assistant":
        used -= count(kept[0].content) + MESSAGE_OVERHEAD
        kept.pop(0)
        index += 1
    messages = [{"role": "system", "content": system}]
    messages += [{"role": t.role, "content": t.content} for t in kept]
    messages.append({"role": "user", "content": user_content})
    return PromptPlan(messages=messages, prompt_tokens=used - summary_reserve, overflow=list(history[:index]))


def transcript(turns: Sequence[Turn]) -> str:
    names = {"user": "User", "assistant": "Assistant"}
    return "\n".join(f"{names.get(t.role, t.role)}: {t.content}" for t in turns)
