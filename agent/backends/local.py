"""The ``transformers`` backend: a model loaded in this process (CPU or GPU)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.backends.base import Message
from agent.models.model import LanguageModel
from agent.models.textstream import TextStream
from agent.options import GenerationOptions
from agent.toolcalls import ResponseFormat, ToolChoice, ToolSpec

__all__ = ["TransformersBackend"]


class TransformersBackend:
    """Runs a :class:`~agent.models.model.LanguageModel` in-process."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.name = model.name

    @classmethod
    def load(cls, name: str, **kwargs: Any) -> TransformersBackend:
        from agent.models.loader import load_model

        return cls(load_model(name, **kwargs))

    @property
    def context_window(self) -> int:
        return self.model.context_window

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """The model's own sampling defaults (the agent applies those its config leaves unset)."""
        return self.model.sampling_defaults

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def stream(self, messages: Sequence[Message], options: GenerationOptions, *, tools: Sequence[ToolSpec] = (),
               tool_choice: ToolChoice = "auto", response_format: ResponseFormat | None = None) -> TextStream:
        return self.model.stream(list(messages), options, tools=tools, tool_choice=tool_choice,
                                 response_format=response_format)
