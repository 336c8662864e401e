"""The ``llmos`` command line: a thin argparse front over the library.

Each command module exposes ``register(groups)`` and adds its sub-commands to the
top-level parser or to the shared ``train`` / ``eval`` groups. Handlers take the parsed
arguments and return an exit code; library errors are rendered here, never tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from agent.errors import LlmosError

__all__ = ["main", "build_parser", "CommandGroups"]

# Command modules, each with register(groups). Keep this list explicit.
COMMAND_MODULES = (
    "agent.cli.cmd_core",
    "agent.cli.cmd_memory",
    "agent.cli.cmd_sessions",
    "agent.cli.cmd_understand",
    "agent.cli.cmd_skills",
    "agent.cli.cmd_serve",
    "agent.cli.cmd_toolbox",
)


@dataclass
class CommandGroups:
    top: argparse._SubParsersAction
    train: argparse._SubParsersAction
    eval: argparse._SubParsersAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmos", description="llmos: a conversational agent framework (chat, serve, train, eval)."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    top.required = True
    train = top.add_parser("train", help="train classifiers or fine-tune the language model")
    train_sub = train.add_subparsers(dest="target", metavar="TARGET")
    train_sub.required = True
    ev = top.add_parser("eval", help="evaluate on a dataset and print the figures")
    eval_sub = ev.add_subparsers(dest="target", metavar="TARGET")
    eval_sub.required = True
    groups = CommandGroups(top=top, train=train_sub, eval=eval_sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(groups)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = os.environ.get("LLMOS_LOG_LEVEL") or ("DEBUG" if verbosity > 1 else "INFO" if verbosity else "WARNING")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not verbosity:
        # transformers' own progress bars ("Loading weights", the GGUF conversion's nested
        # bars) and advice are noise in a CLI: our one bar (common.tqdm_progress) says it all.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if not sys.stderr.isatty():
            os.environ.setdefault("TQDM_DISABLE", "1")  # no bar at all into a log or a pipe


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except LlmosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
