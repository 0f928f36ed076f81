"""Typed reading of WebSocket query strings, with the refusal text a provider would give.

Both protocols put their settings in the upgrade URL's query. The server reads them strictly
(a value of the wrong type is refused at the upgrade with HTTP 400) because its job is to catch
a client that sends ``interim_results=True`` to Deepgram or a bare list to AssemblyAI. Unknown
names are ignored, as both real services do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

Pairs = Sequence[tuple[str, str]]


class QueryError(ValueError):
    """A query parameter the server refuses; ``str(exc)`` is the message for the client."""


def last(pairs: Pairs, name: str) -> str | None:
    """The last value given for ``name`` (repeated keys: the last wins), or None."""
    value = None
    for key, v in pairs:
        if key == name:
            value = v
    return value


def every(pairs: Pairs, name: str) -> list[str]:
    """All values of a repeatable key, in order (Deepgram lists: ``keyterm=a&keyterm=b``)."""
    return [v for key, v in pairs if key == name]


def as_bool(name: str, value: str, *, any_case: bool = False) -> bool:
    """``true``/``false``; with ``any_case`` also ``True``/``FALSE`` (what Python clients send)."""
    key = value.lower() if any_case else value
    if key == "true":
        return True
    if key == "false":
        return False
    expected = "true or false (any case)" if any_case else "true or false (lower case)"
    raise QueryError(f"Invalid value for {name}: {value!r}; expected {expected}.")


def as_int(name: str, value: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise QueryError(f"Invalid value for {name}: {value!r}; expected an integer.") from None
    _check_range(name, number, minimum, maximum)
    return number


def as_float(
    name: str, value: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    try:
        number = float(value)
    except ValueError:
        raise QueryError(f"Invalid value for {name}: {value!r}; expected a number.") from None
    if number != number:  # NaN
        raise QueryError(f"Invalid value for {name}: {value!r}; expected a number.")
    _check_range(name, number, minimum, maximum)
    return number


def as_choice(name: str, value: str, choices: Iterable[str]) -> str:
    options = sorted(choices)
    if value not in options:
        raise QueryError(
            f"Invalid value for {name}: {value!r}; expected one of {', '.join(options)}."
        )
    return value


def as_json_list(name: str, value: str) -> list:
    """A JSON-encoded array (AssemblyAI ``keyterms_prompt=["a","b"]``)."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        raise QueryError(
            f"Invalid value for {name}: expected a JSON-encoded array such as "
            f'["a", "b"], got {value!r}.'
        ) from None
    if not isinstance(parsed, list):
        raise QueryError(f"Invalid value for {name}: expected a JSON array, got {value!r}.")
    return parsed


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise QueryError(f"Invalid value for {name}: {number} is below the minimum {minimum}.")
    if maximum is not None and number > maximum:
        raise QueryError(f"Invalid value for {name}: {number} is above the maximum {maximum}.")
