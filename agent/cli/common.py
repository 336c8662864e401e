"""Pieces the CLI commands share: config loading, the agent, progress bars."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.config import AgentConfig, load_config

__all__ = ["add_config_arg", "config_from_args", "tqdm_progress", "build_agent"]


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="agent config (YAML); default: LLMOS_CONFIG or built-in defaults")


def config_from_args(args: argparse.Namespace, **overrides: Any) -> AgentConfig:
    extra: dict[str, Any] = {}
    model = getattr(args, "model", None)
    if model:
        extra["model"] = {"name": model}
    extra.update(overrides)
    return load_config(getattr(args, "config", None), overrides=extra or None)


class _Bar:
    """A progress callback drawing a tqdm bar on stderr, opened on first use."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def __call__(self, fraction: float, message: str) -> None:
        if fraction >= 0.95 and self.bar is None:
            return  # nothing slow happened (no conversion): stay quiet
        if not sys.stderr.isatty():
            return  # a log file or a pipe gets no bar redraws
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=self.desc, file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
        self.bar.n = int(fraction * 100)
        self.bar.set_postfix_str(message)
        self.bar.refresh()
        if fraction >= 1.0:
            self.bar.close()


def tqdm_progress(desc: str = "preparing the model (first run only)") -> _Bar:
    return _Bar(desc)


def build_agent(args: argparse.Namespace, **overrides: Any) -> Any:
    from agent.dialogue import Agent

    return Agent(config_from_args(args, **overrides), progress=tqdm_progress())
