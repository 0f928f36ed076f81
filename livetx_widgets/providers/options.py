"""Typed connection options: each documented query parameter with the check its value must pass.

Why this exists: neither provider helps with a mistyped option. AssemblyAI silently ignores
unknown or misspelled parameters and Deepgram answers a bad one with an HTTP 400 only after a
network round trip. Checking names and values when the codec is built puts the error, with the
fix in its message, on the caller's own line.

A codec declares its options as a mapping ``name -> check``. A check takes the caller's value
and returns it normalized (a tuple becomes a list, a single term becomes a one-item list) or
raises :class:`Expected` saying what it wanted; :func:`validate` turns that into a
:class:`~livetx_widgets.errors.ConfigurationError` naming the provider and the option.
``None`` always means "not set": the option is not sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ConfigurationError
from .base import unknown_option_error

Check = Callable[[Any], Any]


class Expected(Exception):
    """Raised by a check: ``what`` describes the values it accepts (shown to the user)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _kind(value: Any) -> str:
    return type(value).__name__


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise Expected("True or False (a bool)")


def integer(
    minimum: int | None = None, maximum: int | None = None, *, unit: str = "", false_ok=False
) -> Check:
    """An int within ``[minimum, maximum]``; ``false_ok`` also admits ``False`` ("disabled")."""
    what = "an int" + (f" ({unit})" if unit else "")
    if minimum is not None and maximum is not None:
        what += f" from {minimum} to {maximum}"
    elif minimum is not None:
        what += f" >= {minimum}"
    if false_ok:
        what += ", or False to disable it"

    def check(value: Any) -> int | bool:
        if value is False and false_ok:
            return False
        if isinstance(value, bool) or not isinstance(value, int):
            raise Expected(what)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Expected(what)
        return value

    return check


def number(minimum: float | None = None, maximum: float | None = None) -> Check:
    """A finite int or float within ``[minimum, maximum]``."""
    what = "a number"
    if minimum is not None and maximum is not None:
        what += f" from {minimum} to {maximum}"
    elif minimum is not None:
        what += f" >= {minimum}"

    def check(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Expected(what)
        if not math.isfinite(value):
            raise Expected(what)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Expected(what)
        return value

    return check


def text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise Expected("a non-empty str")


def choice(*values: str) -> Check:
    """One of the documented string values."""
    what = "one of " + ", ".join(repr(v) for v in values)

    def check(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        raise Expected(what)

    return check


def strings(
    *, single_ok: bool = False, max_items: int | None = None, max_chars: int | None = None
) -> Check:
    """A list of non-empty strings (a tuple is accepted; ``single_ok`` also admits one str)."""
    what = "a list of non-empty str"
    if single_ok:
        what += " (or one str)"
    if max_items is not None:
        what += f", at most {max_items} items"
    if max_chars is not None:
        what += f", each at most {max_chars} characters"

    def check(value: Any) -> list[str]:
        if isinstance(value, str):
            if not single_ok:
                raise Expected(what)
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise Expected(what)
        items = list(value)
        if any(not isinstance(item, str) or not item for item in items):
            raise Expected(what)
        if max_items is not None and len(items) > max_items:
            raise Expected(what)
        if max_chars is not None and any(len(item) > max_chars for item in items):
            raise Expected(what)
        return items

    return check


def choices(*values: str, bool_ok: bool = False) -> Check:
    """One documented value or a list of them (a repeatable enum such as Deepgram ``redact``)."""
    one = choice(*values)
    what = "one of " + ", ".join(repr(v) for v in values) + " or a list of them"
    if bool_ok:
        what += ", or True/False"

    def check(value: Any) -> list[str] | bool:
        if isinstance(value, bool):
            if bool_ok:
                return value
            raise Expected(what)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise Expected(what)
        try:
            return [one(item) for item in items]
        except Expected:
            raise Expected(what) from None

    return check


def json_object(value: Any) -> dict[str, Any]:
    """A dict that JSON can encode (sent as a JSON string)."""
    if isinstance(value, Mapping):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise Expected("a dict of JSON-serializable values") from None
        return dict(value)
    raise Expected("a dict of JSON-serializable values")


def any_of(what: str, *checks: Check) -> Check:
    """The first of ``checks`` that accepts the value wins."""

    def check(value: Any) -> Any:
        for candidate in checks:
            try:
                return candidate(value)
            except Expected:
                continue
        raise Expected(what)

    return check


def check_value(provider: str, name: str, check: Check, value: Any, *, secret=False) -> Any:
    """Run one check, turning a refusal into a ConfigurationError that names the option."""
    try:
        return check(value)
    except Expected as exc:
        shown = "<hidden>" if secret else f"{value!r} ({_kind(value)})"
        raise ConfigurationError(
            f"{provider} option {name}={shown} is invalid: expected {exc.what}."
        ) from None


def validate(
    provider: str,
    table: Mapping[str, Check],
    given: Mapping[str, Any],
    *,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """Checked, normalized options in ``table`` order; ``None`` values are dropped (not sent).

    Raises ConfigurationError for an unknown name (suggesting the closest valid one) or for a
    value its check refuses.
    """
    for name in given:
        if name not in table:
            raise unknown_option_error(provider, name, table.keys())
    hidden = frozenset(secrets)
    out: dict[str, Any] = {}
    for name, check in table.items():
        value = given.get(name)
        if value is not None:
            out[name] = check_value(provider, name, check, value, secret=name in hidden)
    return out
