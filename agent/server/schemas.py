"""Request and response shapes: the OpenAI chat-completions subset llmos speaks, and the
session API. Requests validate strictly (a string where a number belongs is a 400 that
names the field); unknown OpenAI fields are ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.options import SEED_MAX, SEED_MIN
from agent.server.errors import ApiError

__all__ = [
    "ContentPart", "ChatMessage", "StreamOptions", "ToolDef", "ResponseFormatIn", "SamplingFields", "ChatCompletionRequest", "LlmosMeta",
    "ChatCompletion", "SessionCreate", "SessionRename", "MessageCreate", "SessionOut", "MessageOut",
    "SessionDetail", "SESSION_ID_PATTERN", "USER_ID_PATTERN",
]

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:+=/-]{0,127}$"
"""A user id is a namespace key: 1-128 characters, letters, digits and ``._@:+=/-``."""


NonEmpty = Annotated[str, Field(min_length=1)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ContentPart(_Request):
    type: str
    text: str | None = None


class FunctionCallIn(_Request):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = "{}"
    """The arguments as a JSON string (OpenAI's shape)."""


class MessageToolCall(_Request):
    """A call in an assistant message of the history (``messages[i].tool_calls``)."""

    id: str = Field(min_length=1, max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = Field(default=None, max_length=64)
    """An assistant message's calls (the history of a tool-calling conversation)."""
    tool_call_id: str | None = Field(default=None, max_length=128)
    """A ``tool`` message: the call it answers."""

    def text(self) -> str:
        """The message's text (text parts joined); other content types are refused."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        if any(p.type != "text" for p in self.content):
            raise ApiError(400, "only text content is supported (content parts of type 'text')",
                           param="messages")
        return "".join(p.text or "" for p in self.content)


class StreamOptions(_Request):
    include_usage: bool = False


class SamplingFields(_Request):
    """Per-request sampling parameters; unset ones keep the agent's configured values."""

    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    """0 (or below 1e-5) decodes greedily."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    """Extension (as in vLLM)."""
    repetition_penalty: float | None = Field(default=None, ge=1.0, le=3.0)
    """Extension (as in vLLM)."""
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    stop: NonEmpty | Annotated[list[NonEmpty], Field(max_length=4)] | None = None
    """Up to 4 non-empty strings."""
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX,
                             json_schema_extra={"minimum": SEED_MIN + 1024, "maximum": SEED_MAX - 1023})
    """A 64-bit signed integer, as in OpenAI's API. (The document's bounds are the widest a
    JSON number compared as a double keeps inside; the server takes the whole range.)"""

    def overrides(self) -> dict[str, Any]:
        """The fields set, as :class:`~agent.options.GenerationOptions` keys."""
        out: dict[str, Any] = {}
        for key in ("temperature", "top_p", "top_k", "repetition_penalty", "seed"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        limit = self.max_completion_tokens or self.max_tokens
        if limit is not None:
            out["max_new_tokens"] = limit
        if self.stop is not None:
            stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
            if len(stops) > 4 or any(not s for s in stops):
                raise ApiError(400, "stop takes at most 4 non-empty strings", param="stop")
            out["stop"] = tuple(stops)
        return out


class FunctionDef(_Request):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
    description: str = Field(default="", max_length=4096)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    """Accepted for compatibility: llmos constrains every call to its schema anyway."""


class ToolDef(_Request):
    """One entry of ``tools``: a function the model may call."""

    type: Literal["function"] = "function"
    function: FunctionDef


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: dict[str, str]


class JsonSchemaFormat(_Request):
    name: str = Field(default="response", max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class ResponseFormatIn(_Request):
    """``response_format``: ``text``, ``json_object``, or ``json_schema`` with its schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(SamplingFields):
    """``POST /v1/chat/completions``. llmos extensions: ``session_id`` (continue a stored
    session), ``top_k`` and ``repetition_penalty``."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model": "llmos", "user": "customer-42", "messages": [{"role": "user", "content": "Where is my order?"}]},
        {"model": "llmos", "stream": True, "session_id": "ticket-42", "temperature": 0.7, "seed": 7,
         "messages": [{"role": "user", "content": "Thanks!"}]}]})

    model: str = Field(default="", max_length=256)
    """The agent's model id (full dialogue pipeline) or the backend model's id (plain model
    call, no memory or sessions); see ``GET /v1/models``. Any other name means the agent."""
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, pattern=USER_ID_PATTERN)
    """The end user: selects the memory namespace (must be allowed for the API key)."""
    n: int | None = Field(default=None, ge=1, le=1)
    """Choices per request: only 1."""
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    """Extension: continue this session (the server's history is used; earlier messages in
    the request are ignored). Without it the session is found from the conversation so far."""
    tools: list[ToolDef] | None = Field(default=None, max_length=128)
    """Functions the model may call: the reply then carries ``tool_calls`` for the client to
    run (a request with tools is a plain model call, as with vLLM: no sessions or memory)."""
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    """``json_object`` or ``json_schema``: the reply is JSON (of that schema), constrained
    token by token."""


class LlmosMeta(BaseModel):
    """What the dialogue manager learnt about the turn (the ``llmos`` field of a reply)."""

    session_id: str
    user_id: str
    intent: dict[str, Any] | None = None
    sentiment: dict[str, Any] | None = None
    frustration: float | None = None
    skill: str | None = None
    memories: list[dict[str, Any]] = Field(default_factory=list)
    handoff: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A non-streamed reply (OpenAI's ``chat.completion`` plus the ``llmos`` field)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    llmos: LlmosMeta | None = None


class SessionCreate(_Request):
    user: str | None = Field(default=None, pattern=USER_ID_PATTERN)
    """The user the session belongs to (default: the API key's default user)."""
    title: str = Field(default="", max_length=200)
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    """Choose the id (e.g. a ticket number); default: a random one."""


class SessionRename(_Request):
    title: str = Field(max_length=200)


class DocumentUpload(_Request):
    """``POST /v1/users/{user}/documents``: a document of the user's own, as text."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "my-contract.md", "text": "# Contract\n\nThe notice period is two months."}]})

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
    """How answers cite it (``my-contract.md (lines 3-4)``); .md/.markdown is read as Markdown.
    Uploading another text under the same name replaces the document."""
    text: str = Field(min_length=1)


class MessageCreate(SamplingFields):
    """``POST /v1/sessions/{id}/messages``: one user turn through the whole pipeline."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"content": "Where is my order?"}]})

    content: str = Field(min_length=1)
    stream: bool = False


class SessionOut(BaseModel):
    id: str
    object: Literal["session"] = "session"
    user_id: str
    title: str
    created_at: float
    updated_at: float
    turns: int


class MessageOut(BaseModel):
    role: str
    content: str
    created_at: float
    seq: int
    meta: dict[str, Any] = Field(default_factory=dict)


class SessionDetail(SessionOut):
    messages: list[MessageOut] = Field(default_factory=list)
