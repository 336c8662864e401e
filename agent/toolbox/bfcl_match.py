"""BFCL's AST match: is a model's list of calls one of the accepted answers?

A re-implementation of the Berkeley Function Calling Leaderboard's Python checker
(``bfcl_eval/eval_checker/ast_eval/ast_checker.py``, Apache-2.0), rule for rule:

- ``simple``: exactly one call; ``multiple``: exactly one call, checked against the expected
  function; ``parallel``: as many calls as expected, matched in any order;
  ``irrelevance``: right when the reply makes no call.
- A call matches when the function name is the expected one, every required parameter is
  present, no parameter is unknown to the function or absent from the answer, every
  answer parameter without ``""`` among its accepted values is present, and each value is
  of the declared type (an int is accepted for ``float``; an array's items are type-checked
  one level deep; a value of the answer's own type where that differs from the declared
  one is taken as a variable name) and among the accepted values:
  strings compared after :func:`standardize_string` (no spaces or ``,./-_*^``, lower case,
  ``'`` as ``"``), lists element-wise the same way, dicts key by key, lists of dicts in order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["standardize_string", "check_call", "check_calls", "PYTHON_TYPES"]

PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                                 "tuple": list, "dict": dict, "any": str}
"""BFCL's Python type names and the Python type a value must have."""
_NESTED = ("array", "tuple")

Result = dict[str, Any]


def standardize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and ``,./-_*^``, lower-case, ``'`` to ``"``."""
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", text).lower().replace("'", '"')


def _ok() -> Result:
    return {"valid": True, "error": [], "error_type": ""}


def _bad(kind: str, message: str) -> Result:
    return {"valid": False, "error": [message], "error_type": kind}


def _answer_type(accepted: Sequence[Any]) -> type | None:
    for answer in accepted:
        if answer != "":
            return type(answer)
    return None


def _type_check(param: str, value: Any, accepted: Sequence[Any], described: str, expected: type[Any],
                nested: type[Any] | None) -> Result:
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and answer_type != expected
    if type(value) is expected:
        if nested is None:
            return {**_ok(), "is_variable": is_variable}
        for answer in accepted:
            fits = True
            if type(answer) is list:
                for item in value:
                    if not _type_check(param, item, answer, str(nested), nested, None)["valid"]:
                        fits = False
                        break
            if fits:
                return {**_ok(), "is_variable": is_variable}
        return _bad("type_error:nested", f"nested type check failed for {param!r}: expected {described} of "
                                         f"{nested.__name__}, got {value!r}")
    if answer_type is not None and type(value) is answer_type:
        return {**_ok(), "is_variable": True}
    return _bad("type_error:simple", f"wrong type for {param!r}: expected {described}, got {type(value).__name__} "
                                     f"({value!r})")


def _std(x: Any) -> Any:
    return standardize_string(x) if type(x) is str else x


def _string_check(param: str, value: str, accepted: Sequence[Any]) -> Result:
    if standardize_string(value) not in [standardize_string(a) for a in accepted if type(a) is str]:
        return _bad("value_error:string", f"invalid value for {param!r}: {value!r}; expected one of {list(accepted)}")
    return _ok()


def _list_check(param: str, value: list[Any], accepted: Sequence[Any]) -> Result:
    mine = [_std(v) for v in value]
    options = [[_std(x) for x in a] for a in accepted if isinstance(a, list)]
    if mine not in options:
        return _bad("value_error:list/tuple", f"invalid value for {param!r}: {value!r}; expected one of "
                                              f"{list(accepted)}")
    return _ok()


def _dict_check(param: str, value: Mapping[str, Any], accepted: Sequence[Any]) -> Result:
    result = _bad("dict_checker:unclear", f"no accepted dict for {param!r}")
    for answer in accepted:
        if answer == "" or not isinstance(answer, dict):
            continue
        fits = True
        for key, item in value.items():
            if key not in answer:
                result, fits = _bad("value_error:dict_key", f"unexpected dict key {key!r}"), False
                break
            if _std(item) not in [_std(a) for a in answer[key]]:
                result, fits = _bad("value_error:dict_value", f"invalid value for {key!r}: {item!r}"), False
                break
        for key, options in answer.items():
            if fits and key not in value and "" not in options:
                result, fits = _bad("value_error:dict_key", f"missing dict key {key!r}"), False
                break
        if fits:
            return _ok()
    return result


def _list_dict_check(param: str, value: list[Any], accepted: Sequence[Any]) -> Result:
    result = _bad("list_dict_checker:unclear", f"no accepted list of dicts for {param!r}")
    for answer in accepted:
        if not isinstance(answer, list) or len(value) != len(answer):
            result = _bad("value_error:list_dict_count", "wrong number of dictionaries in the list")
            continue
        if all(_dict_check(param, v, [a])["valid"] for v, a in zip(value, answer, strict=True)):
            return _ok()
        result = _bad("value_error:list_dict", f"a dictionary of {param!r} does not match")
    return result


def check_call(function: Mapping[str, Any], call: Mapping[str, Mapping[str, Any]],
               answer: Mapping[str, Mapping[str, Sequence[Any]]]) -> Result:
    """One call (``{name: {param: value}}``) against one accepted answer (``{name: {param:
    [accepted values]}}``) for ``function`` (its BFCL description)."""
    name = function["name"]
    params = function.get("parameters") or {}
    details: Mapping[str, Any] = params.get("properties") or {}
    accepted = next(iter(answer.values())) if answer else {}
    if name not in call:
        return _bad("simple_function_checker:wrong_func_name", f"function {name!r} not in the model's call")
    given = call[name]
    for param in params.get("required") or []:
        if param not in given:
            return _bad("simple_function_checker:missing_required", f"missing required parameter {param!r}")
    for param, value in given.items():
        if param not in details or param not in accepted:
            return _bad("simple_function_checker:unexpected_param", f"unexpected parameter {param!r}")
        described = details[param].get("type", "any")
        expected = PYTHON_TYPES.get(described, str)
        nested = None
        if described in _NESTED:
            nested = PYTHON_TYPES.get((details[param].get("items") or {}).get("type", "any"), str)
        if described == "tuple" and type(value) is tuple:
            value = list(value)
        if described == "float" and type(value) is int:
            value = float(value)
        checked = _type_check(param, value, accepted[param], described, expected, nested)
        if not checked["valid"]:
            return checked
        if not checked["is_variable"]:
            if expected is dict:
                result = _dict_check(param, value, accepted[param])
            elif expected is list and nested is dict:
                result = _list_dict_check(param, value, accepted[param])
            elif expected is str:
                result = _string_check(param, value, accepted[param])
            elif expected is list:
                result = _list_check(param, value, accepted[param])
            else:
                result = None
            if result is not None:
                if not result["valid"]:
                    return result
                continue
        if value not in accepted[param]:
            return _bad("value_error:others", f"invalid value for {param!r}: {value!r}; expected one of "
                                              f"{accepted[param]}")
    for param, options in accepted.items():
        if param not in given and "" not in options:
            return _bad("simple_function_checker:missing_optional", f"parameter {param!r} is expected but missing")
    return _ok()


def _describe(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    return {"name": name, "parameters": {"properties": {}, "required": []}}


def check_calls(category: str, functions: Sequence[Mapping[str, Any]], calls: Sequence[Mapping[str, Any]],
                answers: Sequence[Mapping[str, Any]] = ()) -> Result:
    """A reply's calls (``[{name: {param: value}}]``) against the category's rule.
    ``answers``: the item's ground truth (not used for irrelevance)."""
    if "irrelevance" in category:
        return _ok() if not calls else _bad("irrelevance:called", f"made {len(calls)} call(s)")
    if "parallel" in category:
        if len(calls) != len(answers):
            return _bad("parallel_function_checker_no_order:wrong_count", "wrong number of functions")
        matched: list[int] = []
        for i, answer in enumerate(answers):
            function = _describe(functions, next(iter(answer)))
            result = _bad("parallel_function_checker_no_order:cannot_find_match", f"no call matches answer {i}")
            for index, call in enumerate(calls):
                if index in matched:
                    continue
                result = check_call(function, call, answer)
                if result["valid"]:
                    matched.append(index)
                    break
            if not result["valid"]:
                return _bad("parallel_function_checker_no_order:cannot_find_match",
                            f"no call matches answer {i}: {'; '.join(result['error'])}")
        return _ok()
    if len(calls) != len(answers) or len(calls) != 1:
        kind = "multiple_function_checker:wrong_count" if "multiple" in category else "simple_function_checker:wrong_count"
        return _bad(kind, "wrong number of functions")
    return check_call(_describe(functions, next(iter(answers[0]))), calls[0], answers[0])
