"""Checks on a package's public API: what ``__all__`` lists is what ``import *`` gives, once,
and each class, function or module is exported under its own name (a lazy ``__getattr__``
table that maps a name to the wrong object shows up here)."""

from __future__ import annotations

from types import ModuleType


def star_import(module: ModuleType) -> dict[str, object]:
    """The names ``from module import *`` binds, and their values (a name listed in
    ``__all__`` but missing raises, as it would for a user)."""
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)  # noqa: S102
    namespace.pop("__builtins__", None)
    return namespace


def api_problems(module: ModuleType) -> list[str]:
    """What is wrong with ``module.__all__``: duplicates, names ``import *`` does not bind,
    objects exported under a name that is not theirs. Empty when all is well."""
    names = list(module.__all__)
    problems = [f"{n} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
    bound = star_import(module)
    problems += [f"import * binds {n}, which __all__ does not list" for n in sorted(set(bound) - set(names))]
    for name in names:
        value = bound.get(name)
        if value is not getattr(module, name):
            problems.append(f"{name}: import * gives another object than the attribute")
        own = getattr(value, "__name__", None)
        if isinstance(own, str) and (isinstance(value, ModuleType) or callable(value)) and own.rsplit(".", 1)[-1] != name:
            problems.append(f"{name} is {own}")
    return problems
