"""``@skill``: turn a typed generator function into a :class:`~skills.base.Skill` object.

::

    @skill(command="order", intents=("order_status",))
    def order_status(text: str, user_id: str) -> Iterator[str]:
        '''Look up the status of an order by its number.'''
        yield f"Order {text}: shipped"

The function asks for what it needs by parameter name: any :class:`SkillRequest` field
(``text``, ``backend``, ``memory``, ``history``, ``config``, ``user_id``, ...) or
``request`` for the whole request. It yields text pieces (or returns one string).

The decorator only builds an object; it registers nothing. A package exposes the object
through an entry point in the ``llmos.skills`` group, and :func:`skills.load_skills`
finds it there.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

from agent.errors import SkillError
from skills.base import SkillRequest

__all__ = ["skill", "FunctionSkill", "REQUEST_FIELDS"]

REQUEST_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(SkillRequest))
"""Parameter names a skill function may ask for (plus ``request``)."""


@dataclass(frozen=True)
class FunctionSkill:
    """A skill backed by a function; built by :func:`skill`."""

    name: str
    description: str
    intents: tuple[str, ...]
    command: str | None
    fn: Callable[..., Any]
    params: tuple[str, ...]

    def run(self, request: SkillRequest) -> Iterator[str]:
        kwargs = {p: (request if p == "request" else getattr(request, p)) for p in self.params}
        result = self.fn(**kwargs)
        if isinstance(result, str):
            yield result
            return
        if result is None:
            return
        for piece in result:
            if not isinstance(piece, str):
                raise SkillError(f"skill {self.name!r} yielded a {type(piece).__name__}; a skill yields str pieces")
            yield piece

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in tests)."""
        return self.fn(*args, **kwargs)


@overload
def skill(fn: Callable[..., Any], /) -> FunctionSkill: ...


@overload
def skill(*, name: str | None = None, description: str | None = None, intents: tuple[str, ...] | list[str] = (),
          command: str | None = None) -> Callable[[Callable[..., Any]], FunctionSkill]: ...


def skill(fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None,
          intents: tuple[str, ...] | list[str] = (), command: str | None = None) -> Any:
    """Build a skill from a function (``@skill`` or ``@skill(name=..., command=...)``).

    ``name`` defaults to the function's name, ``description`` to the first paragraph of
    its docstring, and ``command`` to ``name`` (the ``/name`` slash command).
    """

    def build(func: Callable[..., Any]) -> FunctionSkill:
        skill_name = (name or func.__name__).strip()
        if not skill_name.replace("_", "").replace("-", "").isalnum():
            raise SkillError(f"skill name {skill_name!r} must be letters, digits, '-' or '_'")
        doc = inspect.getdoc(func) or ""
        summary = description or doc.split("\n\n", 1)[0].replace("\n", " ").strip()
        if not summary:
            raise SkillError(f"skill {skill_name!r} needs a description: pass description=... or write a docstring")
        params = []
        for param in inspect.signature(func).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.name != "request" and param.name not in REQUEST_FIELDS:
                raise SkillError(
                    f"skill {skill_name!r}: parameter {param.name!r} is not something a skill is given; "
                    f"use 'request' or any of: {', '.join(sorted(REQUEST_FIELDS))}"
                )
            params.append(param.name)
        slash = (command if command is not None else skill_name).lstrip("/").lower() or None
        return FunctionSkill(name=skill_name, description=summary, intents=tuple(intents), command=slash,
                             fn=func, params=tuple(params))

    if fn is not None:
        return build(fn)
    return build
