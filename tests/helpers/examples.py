"""For the examples' end-to-end tests: the examples folder, and an example's agent built from
its config with a temp data dir, on the real default model and embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def build_example_agent(config_path: Path, data_dir: Path, *, skills: dict[str, Any] | None = None,
                        on_handoff: tuple[Any, ...] = (), overrides: dict[str, Any] | None = None) -> Any:
    """The example's agent. Built-in skills load from its config; ``skills`` adds more
    (a plugin passed directly instead of pip-installed)."""
    from agent import Agent
    from agent.config import load_config
    from agent.models.embedder import SentenceEmbedder
    from skills import load_skills

    config = load_config(config_path, environ={}, overrides={"data_dir": str(data_dir), **(overrides or {})})
    embedder = SentenceEmbedder(config.memory.embedder)
    agent = Agent(config, embedder=embedder, understanding=_understanding(config, embedder),
                  skills={**load_skills(config.skills), **(skills or {})})
    agent.on_handoff.extend(on_handoff)
    return agent


def _understanding(config: Any, embedder: Any) -> Any:
    from agent.understand.pipeline import ClassifierUnderstanding, build_understanding, load_intents

    try:
        return build_understanding(config.understanding, embedder)
    except FileNotFoundError:
        # The shipped sentiment head is not in this checkout yet: intents only.
        return ClassifierUnderstanding(config.understanding, intents=load_intents(config.understanding, embedder),
                                       embedder=embedder)
