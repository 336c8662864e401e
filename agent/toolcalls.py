"""Tool calling's data: what a tool is (for the model), what a call is, and how the caller
steers the choice. Base layer: every layer (models, backends, skills, dialogue, server)
speaks these types, in the shape of OpenAI's tools API.

- :class:`ToolSpec`: a function the model may call: its name, description and JSON schema.
- :class:`ToolCall`: one call the model made: an id, the name and the parsed arguments.
- ``tool_choice``: ``"auto"`` (answer or call, the model decides), ``"none"`` (answer),
  ``"required"`` (call at least one tool), or a tool's name (call that one).
- ``response_format``: ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema":
  {"name": ..., "schema": {...}}}``, a plain reply that must be JSON (of that schema).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.errors import InputError

__all__ = ["ToolSpec", "ToolCall", "ToolChoice", "ResponseFormat", "check_tool_choice", "new_call_id",
           "TOOL_NAME_PATTERN"]

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"
"""OpenAI's rule for function names (letters, digits, _ . -; at most 64)."""

ToolChoice = str
"""``auto``, ``none``, ``required``, or the name of one tool (see :func:`check_tool_choice`)."""


class ToolSpec(BaseModel):
    """A function the model may call. ``parameters`` is a JSON schema of an object (OpenAI's
    ``function.parameters``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError("a tool's parameters must be a JSON schema of type object")
        return value

    def openai(self) -> dict[str, Any]:
        """The ``{"type": "function", "function": {...}}`` entry of OpenAI's ``tools`` list."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


class ToolCall(BaseModel):
    """One call the model made: ``arguments`` parsed from the JSON the model wrote."""

    id: str = Field(default_factory=lambda: new_call_id())
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)

    def openai(self) -> dict[str, Any]:
        """The entry of an assistant message's ``tool_calls`` in OpenAI's shape."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments_json()}}


class ResponseFormat(BaseModel):
    """A plain reply constrained to JSON: any object (``json_object``) or one schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    name: str = "response"

    model_config = ConfigDict(populate_by_name=True, frozen=True)


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def check_tool_choice(choice: Any, tools: list[ToolSpec] | tuple[ToolSpec, ...]) -> ToolChoice:
    """``tool_choice`` as one string, checked against the offered ``tools``. Accepts OpenAI's
    forms: a string, or ``{"type": "function", "function": {"name": N}}``."""
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str):
            raise InputError('tool_choice must be "auto", "none", "required" or '
                             '{"type": "function", "function": {"name": NAME}}')
        choice = name
    if not isinstance(choice, str) or not choice:
        raise InputError('tool_choice must be "auto", "none", "required" or a tool name')
    if choice in ("auto", "none"):
        return choice
    if not tools:
        raise InputError(f"tool_choice {choice!r} needs tools: offer at least one in `tools`")
    if choice == "required" or choice in {t.name for t in tools}:
        return choice
    if not re.match(TOOL_NAME_PATTERN, choice):
        raise InputError(f"tool_choice {choice!r} is not a tool name")
    raise InputError(f"tool_choice names {choice!r}, which is not among the offered tools "
                     f"({', '.join(t.name for t in tools)})")
