"""Skill dispatch overhead: what routing a turn to a skill costs beyond plain chat.

Both paths run full turns of a real :class:`~agent.Agent` on a fake backend (so the model's
time is not in the figure); the difference of the medians is the dispatch overhead.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from skills.decorator import skill

__all__ = ["dispatch_overhead"]


@skill(command="echo")
def _echo(text: str) -> Iterator[str]:
    """Echo the text back (a skill that costs nothing itself)."""
    yield f"You said: {text}"


def dispatch_overhead(turns: int = 300) -> dict[str, Any]:
    """Median milliseconds per turn with and without a skill, and per ``load_skills`` call."""
    from agent import Agent, load_config
    from agent.backends import FakeBackend
    from skills import load_skills

    loads = []
    for _ in range(5):
        start = time.perf_counter()
        skills = load_skills()
        loads.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        config = load_config(environ={}, overrides={"model": {"backend": "fake"}, "memory": {"enabled": False},
                                                    "understanding": {"enabled": False}, "data_dir": tmp})
        agent = Agent(config, backend=FakeBackend(), skills={**skills, "echo": _echo})
        try:
            session = agent.new_session().id
            chat: list[float] = []
            routed: list[float] = []
            route_only: list[float] = []
            for k in range(turns):
                for text, bucket in ((f"hello {k}", chat), (f"/echo hello {k}", routed)):
                    start = time.perf_counter()
                    agent.chat(text, session_id=session)
                    bucket.append(time.perf_counter() - start)
                start = time.perf_counter()
                agent.route(f"/echo hello {k}")
                route_only.append(time.perf_counter() - start)
        finally:
            agent.close()
    med = {name: statistics.median(v) * 1000 for name, v in
           (("chat", chat), ("skill", routed), ("route", route_only), ("load", loads))}
    return {"turns": turns, "chat_turn_median_ms": round(med["chat"], 3), "skill_turn_median_ms": round(med["skill"], 3),
            "dispatch_overhead_ms": round(med["skill"] - med["chat"], 3), "route_median_ms": round(med["route"], 4),
            "load_skills_median_ms": round(med["load"], 1), "skills_loaded": len(skills)}
