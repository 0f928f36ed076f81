"""Field access for received frames that reports a wrong shape instead of crashing.

Why: ``decode`` runs on the receiver thread for every frame and must never raise, whatever a
provider (or a proxy, or a buggy local server) sends. These accessors check one field's type
and raise :class:`Malformed` with a sentence a user can act on; the codec turns that into a
``ProviderWarning``. They are plain ``isinstance`` checks on small dicts, cheap enough for the
per-frame path.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..events import ProviderWarning
from ..events import speaker_of as speaker_of  # the segment-speaker rule, for the codecs

_MISSING = object()

#: For the per-frame fast paths: JSON numbers (``bool`` excluded by exact type checks) and a
#: bound that rejects NaN and infinities in one comparison.
NUMBER_TYPES = (int, float)
FINITE_LIMIT = 1e15


class Malformed(Exception):
    """A frame without the documented shape; the message says which field is wrong."""


def _describe(value: Any) -> str:
    return "nothing" if value is _MISSING else f"{type(value).__name__} {short_repr(value)}"


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number(obj: dict, key: str, where: str, default: Any = _MISSING) -> float:
    """A finite JSON number as float (``bool`` is not a number here)."""
    value = obj.get(key, _MISSING)
    if value is _MISSING and default is not _MISSING:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:
            result = math.inf
        if math.isfinite(result):
            return result
    raise Malformed(f"'{key}' of {where} should be a number, got {_describe(value)}")


def optional_number(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    return None if value is None else number(obj, key, where)


def integer(obj: dict, key: str, where: str, default: Any = _MISSING) -> int:
    value = obj.get(key, _MISSING)
    if value is _MISSING and default is not _MISSING:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Malformed(f"'{key}' of {where} should be an integer, got {_describe(value)}")


def string(obj: dict, key: str, where: str, default: Any = _MISSING) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING and default is not _MISSING:
        return default
    if isinstance(value, str):
        return value
    raise Malformed(f"'{key}' of {where} should be a string, got {_describe(value)}")


def optional_string(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    return None if value is None else string(obj, key, where)


def boolean(obj: dict, key: str, where: str, default: bool = False) -> bool:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool):
        return value
    raise Malformed(f"'{key}' of {where} should be true or false, got {_describe(value)}")


def array(obj: dict, key: str, where: str, default: Any = _MISSING) -> list:
    value = obj.get(key, _MISSING)
    if (value is _MISSING or value is None) and default is not _MISSING:
        return default
    if isinstance(value, list):
        return value
    raise Malformed(f"'{key}' of {where} should be a list, got {_describe(value)}")


def mapping(obj: dict, key: str, where: str, default: Any = _MISSING) -> dict:
    value = obj.get(key, _MISSING)
    if (value is _MISSING or value is None) and default is not _MISSING:
        return default
    if isinstance(value, dict):
        return value
    raise Malformed(f"'{key}' of {where} should be an object, got {_describe(value)}")


def element(value: Any, where: str) -> dict:
    """One item of a list of objects (e.g. a word)."""
    if isinstance(value, dict):
        return value
    raise Malformed(f"{where} should be an object, got {_describe(value)}")


def load(text: Any, provider: str) -> tuple[dict | None, list[ProviderWarning]]:
    """The frame as a JSON object, or ``(None, [warning])`` when it is not one."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        size = len(bytes(text))
        return None, [
            ProviderWarning(
                f"{provider} sent a binary frame of {size} bytes; it only sends JSON text "
                "frames, so it was ignored."
            )
        ]
    if not isinstance(text, str):
        return None, [
            ProviderWarning(
                f"decode() got a {type(text).__name__}, not the text of a {provider} frame; "
                "ignored it."
            )
        ]
    try:
        data = _loads(text)
    except (ValueError, RecursionError):
        return None, [
            ProviderWarning(
                f"{provider} sent a text frame that is not valid JSON: {short_repr(text)}; "
                "ignored it.",
                raw={"text": text[:200]},
            )
        ]
    if not isinstance(data, dict):
        return None, [
            ProviderWarning(
                f"{provider} sent JSON that is not an object ({type(data).__name__}): "
                f"{short_repr(text)}; ignored it.",
                raw={"text": text[:200]},
            )
        ]
    return data, []


_raw_decode = json.JSONDecoder().raw_decode


def _loads(text: str) -> Any:
    """``json.loads(text)``, minus its wrapper's per-call work on the usual frame.

    ``json.loads`` checks the argument's type, looks for a BOM and matches whitespace with a
    regex before and after the document: a tenth of the parse for a typical frame, on every
    frame. A frame is one JSON document with no surrounding space, so ``raw_decode`` alone
    parses it; anything else (leading or trailing space, a BOM, extra data, invalid JSON)
    is handed to ``json.loads`` itself, which accepts or rejects it exactly as before.
    """
    try:
        data, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return data


def tolerant(problems: list[str], getter, data: dict, key: str, where: str, *default):
    """``getter(...)`` or ``None``, noting the problem instead of failing the whole message.

    For terminal and greeting messages (Metadata, Begin, Termination): their arrival matters
    more than their fields, so a bad field is reported but does not drop the message.
    """
    try:
        return getter(data, key, where, *default)
    except Malformed as exc:
        problems.append(str(exc))
        return None


def dispatch(codec: Any, data: dict, kind: Any, handlers: dict, label: str) -> list:
    """Run the handler for a message ``kind``; malformed or unknown input becomes a warning.

    Both codecs decode this way: an unknown or missing type and a :class:`Malformed` field
    become one ``ProviderWarning`` naming what was ignored, so the receiver thread survives
    whatever the peer sends. Any other exception is a bug in the handler and is *not*
    swallowed here: the session logs it with its traceback and ends with a ``CodecError``.
    """
    handler = handlers.get(kind) if isinstance(kind, str) else None
    if handler is None:
        if kind is None:
            message = f"{label} sent a message without a 'type'; ignored it."
        else:
            message = f"{label} sent an unknown message type {short_repr(kind)}; ignored it."
        return [ProviderWarning(message, raw=data)]
    try:
        return handler(codec, data)
    except Malformed as exc:
        return [ProviderWarning(f"{label} sent a malformed {kind} message: {exc}.", raw=data)]
