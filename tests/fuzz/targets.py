"""Fuzz targets, seeds and mutations, shared by the fuzz tests and ``benchmarks/fuzz.py``.

Why one module: the bounded test in the fast lane (a few hundred Hypothesis examples per
target) and the benchmark (>= 100,000 inputs per target, optionally coverage-guided with
atheris) must exercise exactly the same inputs and the same checks, or a benchmark figure would
say nothing about what the tests prove.

A *target* is one piece of code that takes untrusted input, with its documented contract:

* ``deepgram-codec`` / ``assemblyai-codec``: ``ProviderCodec.decode`` of every frame of one
  connection, in order, returns only ``events.Event`` values (a bad frame becomes a
  ``ProviderWarning``); ``handshake_error``/``close_error`` return a ``LivetxError``.
* ``deepgram-core`` / ``assemblyai-core``: the server's ``ProtocolCore`` fed a query string,
  text frames, audio bytes and clock advances never raises; its only outputs are ``Send`` of
  JSON the matching client codec decodes without a warning, ``Close`` with a code a close frame
  can carry and a reason of at most 123 bytes, and ``Drop``. A bad query raises ``QueryError``
  only (HTTP 400 at the upgrade).
* ``browser-audio``: the widget's capture messages (``BrowserLink.audio``/``view_gone``/
  ``capture_error``, what ``LiveTranscriber._on_front_end_msg`` routes there) with any content
  and buffers never raise, and the ``BrowserMicrophone`` behind them stays consistent: reads
  give whole samples, ``stats()`` is strict JSON (the kernel's message packer refuses NaN),
  memory stays within the source's bound and each message takes bounded time.

A case is a list of *operations* produced from a seed payload by ``Mutator``; every target has
``run(case)``, which raises ``Finding`` for a broken contract (any undocumented exception is
wrapped in one). ``case_to_json``/``case_from_json`` store a case as a regression fixture in
``tests/fixtures/fuzz/``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import random
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FUZZ_FIXTURES = FIXTURES / "fuzz"
PROTOCOLS = REPO.parent / "shared" / "protocols"

#: A single operation may take at most this long (a hang or a quadratic blow-up is a finding).
CASE_BUDGET_S = 2.0
#: Largest generated text frame: what the server's transport accepts (websockets' default
#: ``max_size``, 1 MiB; the ``oversized`` fault sends exactly that to clients). Repeated list
#: growth could otherwise build 80 MB frames whose decoding is slow only for being huge
#: (linear in size), which says nothing about the code under test.
MAX_FRAME_CHARS = 1 << 20


class Finding(Exception):
    """A broken contract: ``target`` names the code, the message says which rule broke."""

    def __init__(self, target: str, message: str):
        super().__init__(f"{target}: {message}")
        self.target = target


# ----------------------------------------------------------------------------- seeds
def _json_values(text: str) -> list[Any]:
    """Every JSON value in ``text`` (one per line or pretty-printed), skipping the prose."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while i < len(text):
        start = min((p for p in (text.find("{", i), text.find("[", i)) if p >= 0), default=-1)
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        i = end
    return found


def load_seeds() -> dict[str, list[dict]]:
    """The real payloads: the protocol notes' JSON blocks (when ``/work/shared`` is there)
    and the recorded fixtures, by provider. Each is a JSON object with a ``type``."""
    seeds: dict[str, list[dict]] = {"deepgram": [], "assemblyai": []}
    for provider, note in (("deepgram", "deepgram-live-v1.md"),
                           ("assemblyai", "assemblyai-streaming-v3.md")):  # fmt: skip
        path = PROTOCOLS / note
        if path.is_file():
            text = path.read_text()
            blocks = text.split("```json")[1:]
            for block in blocks:
                seeds[provider] += _json_values(block.split("```")[0])
        for fixture in sorted((FIXTURES / provider).glob("*.json")):
            seeds[provider] += _json_values(fixture.read_text())
    for provider, values in seeds.items():
        unique = {json.dumps(v, sort_keys=True): v for v in values if isinstance(v, dict)}
        seeds[provider] = list(unique.values())
    return seeds


#: Message types each side may send (and so the ones a mutation swaps in).
TYPES = {
    "deepgram": ["Results", "Metadata", "SpeechStarted", "UtteranceEnd", "Error",
                 "ConfigureSuccess", "ConfigureFailure", "KeepAlive", "Finalize",
                 "CloseStream", "Configure"],
    "assemblyai": ["Begin", "Turn", "SpeechStarted", "Termination", "Error", "Warning",
                   "Heartbeat", "Silence", "SpeakerRevision", "LLMGatewayResponse",
                   "KeepAlive", "ForceEndpoint", "Terminate", "UpdateConfiguration"],
}  # fmt: skip

#: Query parameters worth mutating (the rest of each protocol's table is read the same way).
QUERY_KEYS = {
    "deepgram": ["model", "encoding", "sample_rate", "channels", "multichannel",
                 "interim_results", "endpointing", "utterance_end_ms", "vad_events",
                 "punctuate", "diarize", "keyterm", "redact", "extra", "language"],
    "assemblyai": ["speech_model", "sample_rate", "encoding", "format_turns",
                   "speaker_labels", "inactivity_timeout", "keyterms_prompt",
                   "max_turn_silence", "vad_threshold", "llm_gateway", "language_codes",
                   "end_of_turn_confidence_threshold"],
}  # fmt: skip


# ------------------------------------------------------------------------- mutations
HUGE_NUMBERS = [10**400, -(10**400), 2**63, 2**64 + 1, -(2**63) - 1, 1e308, -1e308, 1e-320,
                10**15 + 1, -1, 0, 2**31]  # fmt: skip
NON_FINITE = [math.nan, math.inf, -math.inf]
ODD_STRINGS = ["", " ", "\x00", "\ud800", "\udfff", "é" * 3, "\u202e", "A" * 5000, "null",
               "PENDING", "UNKNOWN", "NaN", "-Infinity", "1e999", "0x10", "[]", "{}"]  # fmt: skip


def _random_scalar(rng: random.Random) -> Any:
    pool = rng.randrange(6)
    if pool == 0:
        return rng.choice(HUGE_NUMBERS)
    if pool == 1:
        return rng.choice(NON_FINITE)
    if pool == 2:
        return rng.choice(ODD_STRINGS)
    if pool == 3:
        return rng.choice([None, True, False, [], {}, 0.5, -0.0])
    if pool == 4:
        return rng.uniform(-1e6, 1e6)
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(8)))


def _paths(value: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every place in a JSON value (keys and indexes from the root), bounded in depth."""
    out = [prefix]
    if depth > 6:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += _paths(v, (*prefix, i), depth + 1)
    return out


def _get(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


def _set(root: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = _get(root, path[:-1])
    parent[path[-1]] = new
    return root


def _delete(root: Any, path: tuple) -> Any:
    if not path:
        return root
    parent = _get(root, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and path[-1] < len(parent):
        parent.pop(path[-1])
    return root


def _swap_type(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return rng.choice([1, "true", None])
    if isinstance(value, (int, float)):
        return rng.choice([str(value), [value], {"value": value}, True, None])
    if isinstance(value, str):
        return rng.choice([len(value), [value], {value: value}, None, False])
    if isinstance(value, list):
        return rng.choice([{"0": value[0] if value else None}, "list", len(value), None])
    if isinstance(value, dict):
        return rng.choice([list(value.values()), json.dumps(value)[:40], 0, None])
    return rng.choice([0, "", [], {}])


#: Structural mutations of a parsed message (the value is a deep copy, changed in place).
def m_delete(v, rng, ctx):
    return _delete(v, rng.choice(_paths(v)))


def m_swap_type(v, rng, ctx):
    path = rng.choice(_paths(v))
    return _set(v, path, _swap_type(_get(v, path), rng))


def m_scalar(v, rng, ctx):
    return _set(v, rng.choice(_paths(v)), _random_scalar(rng))


def m_huge_number(v, rng, ctx):
    return _set(v, rng.choice(_paths(v)), rng.choice(HUGE_NUMBERS + NON_FINITE))


def m_unknown_field(v, rng, ctx):
    path = rng.choice([p for p in _paths(v) if isinstance(_get(v, p), dict)] or [()])
    target = _get(v, path)
    if isinstance(target, dict):
        target[rng.choice(["x-livetx", "", "type", "__proto__", "words", "ÿ"])] = (
            _random_scalar(rng)
        )
    return v


def m_unknown_type(v, rng, ctx):
    if isinstance(v, dict):
        v["type"] = rng.choice(TYPES[ctx["provider"]] + ["Nope", "", "results", "TURN"]
                               + [None, 3, ["Results"]])  # fmt: skip
    return v


def m_grow_list(v, rng, ctx):
    lists = [p for p in _paths(v) if isinstance(_get(v, p), list) and _get(v, p)]
    if lists:
        target = _get(v, rng.choice(lists))
        target.extend([target[0]] * rng.choice([1, 10, 300]))
    return v


def m_nest(v, rng, ctx):
    path = rng.choice(_paths(v))
    inner = _get(v, path)
    for _ in range(rng.choice([2, 50, 200])):
        inner = rng.choice([[inner], {"a": inner}])
    return _set(v, path, inner)


STRUCTURAL = [m_delete, m_swap_type, m_scalar, m_huge_number, m_unknown_field, m_unknown_type,
              m_grow_list, m_nest]  # fmt: skip


#: Text mutations of the serialized message.
def t_truncate(text, rng):
    return text[: rng.randrange(len(text) + 1)]


def t_deep_nesting(text, rng):
    depth = rng.choice([1000, 5000, 100_000])
    return "[" * depth + text + "]" * rng.choice([depth, 0])


def t_invalid_utf8(text, rng):
    """Bytes that are not UTF-8, as a text frame would carry them after a lenient decode."""
    raw = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(rng.randrange(1, 4)):
        raw.insert(rng.randrange(len(raw) + 1), rng.choice([0x80, 0xC3, 0xFF, 0xED, 0xF4]))
    return raw.decode("utf-8", rng.choice(["surrogateescape", "replace"]))


def t_splice(text, rng):
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(['"', "\\", "}", "]", ",", ":", "NaN", "-", "\\u", "\x00",
                                  '"type":"Results",', "1e9999", "tr"]) + text[i:]  # fmt: skip


def t_duplicate_key(text, rng):
    return text[:-1] + ', "type": "Error"}' if text.endswith("}") else text


TEXTUAL = [t_truncate, t_deep_nesting, t_invalid_utf8, t_splice, t_duplicate_key]


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)  # NaN and Infinity written as JSON's common extension
    except (ValueError, RecursionError):
        return json.dumps(str(value)[:200])


class Mutator:
    """Mutated frames from the seeds; ``rng`` decides everything (seeded: reproducible)."""

    def __init__(self, seeds: dict[str, list[dict]]):
        self.seeds = seeds

    def message(self, provider: str, rng: random.Random, steps: int | None = None) -> str:
        value = json.loads(json.dumps(rng.choice(self.seeds[provider])))
        ctx = {"provider": provider}
        for _ in range(rng.randrange(0, 4) if steps is None else steps):
            value = rng.choice(STRUCTURAL)(value, rng, ctx)
        text = _dumps(value)
        if rng.random() < 0.3:
            text = rng.choice(TEXTUAL)(text, rng)
        return text[:MAX_FRAME_CHARS]  # a truncation, as any mutation may be

    def frames(self, provider: str, rng: random.Random, n: int | None = None) -> list:
        """One connection's frames: mutated messages, some reordered or repeated, now and
        then a raw binary frame or a value that is not text at all."""
        n = rng.randrange(1, 6) if n is None else n
        frames: list = [self.message(provider, rng) for _ in range(n)]
        if rng.random() < 0.2:
            rng.shuffle(frames)
        if rng.random() < 0.1:
            frames.append(frames[0])
        if rng.random() < 0.1:
            frames.insert(rng.randrange(len(frames) + 1), rng.randbytes(rng.randrange(9)))
        return frames

    def query(self, provider: str, rng: random.Random) -> dict[str, str]:
        base = {"deepgram": {"model": "nova-3", "encoding": "linear16", "sample_rate": "16000"},
                "assemblyai": {"sample_rate": "16000", "speech_model": "u3-rt-pro"}}[provider]
        query = dict(base)
        for _ in range(rng.randrange(0, 3)):
            key = rng.choice(QUERY_KEYS[provider])
            query[key] = rng.choice(
                ["true", "false", "True", "0", "-1", "1", "8000", "48000", "999999999999",
                 "9" * 5000, "nan", "inf", "1e308", "", "x", "[]", '["a"]', "[" * 5000,
                 '{"a": 1}', "a:b", ":", "linear16", "mulaw", "opus", "pcm_s16le", "2", "100",
                 "\x00", "é"]
            )  # fmt: skip
        return query

    def core_case(self, provider: str, rng: random.Random) -> dict:
        """A server connection: a query, then text frames, audio and clock advances."""
        ops: list[list] = []
        for _ in range(rng.randrange(1, 8)):
            kind = rng.randrange(4)
            if kind == 0:
                ops.append(["text", self.message(provider, rng)])
            elif kind == 1:
                size = rng.choice([0, 1, 3, 1600, 3200, 3201, 32000, 64000])
                ops.append(["audio", bytes(size) if rng.random() < 0.7 else rng.randbytes(size)])
            elif kind == 2:
                ops.append(["advance", rng.choice([0.0, 0.05, 1.0, 11.0, 3600.0])])
            else:
                ops.append(["audio", bytes(3200)] * 1)
        if rng.random() < 0.5:
            closing = {"deepgram": "CloseStream", "assemblyai": "Terminate"}[provider]
            ops.append(["text", json.dumps({"type": closing})])
        return {"query": self.query(provider, rng), "ops": ops}

    def browser_case(self, rng: random.Random) -> list:
        """Capture messages as the widget receives them: content plus buffers."""
        messages = []
        for seq in range(rng.randrange(1, 10)):
            content: Any = {"type": "audio", "capture": "c1", "seq": seq, "offset": seq * 1600,
                            "samples": 1600, "capturedAt": 1.7e12 + seq * 100,
                            "last": False}  # fmt: skip
            size = rng.choice([3200, 3200, 3199, 1, 0, 32000, 32001, 64000])
            buffers: list = [bytes(size)]
            if rng.random() < 0.3:  # a batch of kept chunks (common.js's send window)
                n = rng.randrange(1, 12)
                content["chunks"] = [[size // 2 // n, 1.7e12 + i * 100] for i in range(n)]
                if rng.random() < 0.5:
                    chunk = rng.choice(content["chunks"])
                    chunk[rng.randrange(2)] = rng.choice(
                        [_random_scalar(rng), rng.choice(HUGE_NUMBERS), rng.choice(NON_FINITE),
                         -5, 0, 2**53, "x", None, True, [1600]]
                    )  # fmt: skip
                if rng.random() < 0.2:
                    content["chunks"] = rng.choice([None, "x", [], {}, [[1]], [1600, 0]])
            for _ in range(rng.randrange(0, 3)):
                field = rng.choice(["type", "capture", "seq", "offset", "samples",
                                    "capturedAt", "last", "message", "extra"])  # fmt: skip
                content[field] = rng.choice(
                    [_random_scalar(rng), rng.choice(HUGE_NUMBERS), rng.choice(NON_FINITE),
                     -5, 2**40, 10**12, 10**18, "c2", "", None, True]
                )  # fmt: skip
            roll = rng.random()
            if roll < 0.05:
                buffers = []
            elif roll < 0.1:
                buffers = [memoryview(bytes(size)), b"\x01"]
            elif roll < 0.15:
                content = rng.choice([None, [], "audio", 3])
            elif roll < 0.25:
                content["type"] = rng.choice(["view-gone", "capture-error"])
                content["message"] = rng.choice(["broke", "", None, "x" * 10_000, 5])
            messages.append([content, buffers])
        if rng.random() < 0.3:
            rng.shuffle(messages)
        return messages


# ------------------------------------------------------------------------ serialized
def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _encode(value: Any) -> Any:
    """A case as JSON: bytes, lone surrogates, NaN/Infinity and huge ints tagged with ``$``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode(),
                "$memoryview": isinstance(value, memoryview)}  # fmt: skip
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return {"$int": str(value)}
    if isinstance(value, str) and _has_surrogates(value):
        return {"$surrogates": value.encode("utf-8", "surrogatepass").decode("latin-1")}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$bytes" in value:
            data = base64.b64decode(value["$bytes"])
            return memoryview(data) if value.get("$memoryview") else data
        if "$float" in value:
            return float(value["$float"])
        if "$int" in value:
            return int(value["$int"])
        if "$surrogates" in value:
            return value["$surrogates"].encode("latin-1").decode("utf-8", "surrogatepass")
        if "$repeat" in value:  # {"$repeat": ["[", 100000]}: a long text, stored short
            text, count = value["$repeat"]
            return text * count + value.get("$then", "")
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def case_to_json(target: str, case: Any, what: str) -> str:
    """A regression fixture: the target, what broke, and the case that broke it."""
    return json.dumps({"target": target, "what": what, "case": _encode(case)}, indent=1) + "\n"


def case_from_json(text: str) -> tuple[str, Any]:
    data = json.loads(text)
    return data["target"], _decode(data["case"])


# --------------------------------------------------------------------------- targets
def _events_union() -> tuple[type, ...]:
    from livetx_widgets.events import Event

    return typing.get_args(Event)


def _load_module(name: str, path: Path) -> types.ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def server_helpers() -> types.ModuleType:
    """``tests/server/conftest.py`` (its ``CoreDriver``), importable outside pytest too."""
    _load_module("livetx_test_support", REPO / "tests" / "support.py")
    return _load_module("livetx_fuzz_server_helpers", REPO / "tests" / "server" / "conftest.py")


def _timed(target: str, fn: Callable, *args) -> Any:
    t0 = time.perf_counter()
    result = fn(*args)
    took = time.perf_counter() - t0
    if took > CASE_BUDGET_S:
        raise Finding(target, f"{getattr(fn, '__name__', fn)} took {took:.1f} s")
    return result


class CodecTarget:
    """``decode`` of one connection's frames; bad frames must become ``ProviderWarning``s."""

    def __init__(self, provider: str):
        from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec

        self.provider = provider
        self.name = f"{provider}-codec"
        self.cls = DeepgramCodec if provider == "deepgram" else AssemblyAICodec
        self.events = _events_union()

    def generate(self, mutator: Mutator, rng: random.Random) -> list:
        return mutator.frames(self.provider, rng)

    def run(self, case: list) -> None:
        from livetx_widgets.errors import LivetxError

        kwargs = {"speaker_labels": True} if self.provider == "assemblyai" else {"diarize": True}
        codec = self.cls(**kwargs)
        codec.time_offset, codec.key_prefix = 12.5, "c2:"
        for frame in case:
            try:
                events = _timed(self.name, codec.decode, frame)
            except Finding:
                raise
            except Exception as exc:
                raise Finding(self.name, f"decode raised {type(exc).__name__}: {exc}") from exc
            if not isinstance(events, list) or not all(isinstance(e, self.events) for e in events):
                raise Finding(self.name, f"decode returned {events!r:.200}")
        text = case[0] if case and isinstance(case[0], str) else ""
        try:
            errors = [codec.handshake_error(400, {}, text), codec.close_error(1011, text[:123])]
        except Exception as exc:
            raise Finding(self.name, f"error mapping raised {type(exc).__name__}: {exc}") from exc
        if not all(e is None or isinstance(e, LivetxError) for e in errors):
            raise Finding(self.name, f"error mapping returned {errors!r:.200}")


#: Close codes a close frame can carry (RFC 6455 7.4: not 1004-1006, 1015; 3000-4999 apps).
def _sendable(code: int) -> bool:
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999


DOCUMENTED_CLOSES = {
    "deepgram": {1000, 1008, 1011},
    "assemblyai": {1000, 1008, 1011, 3005, 3006, 3007},
}


class CoreTarget:
    """A server connection through the protocol core, as ``SessionShell`` drives it."""

    def __init__(self, provider: str):
        from livetx_widgets.providers import make_codec

        self.provider = provider
        self.name = f"{provider}-core"
        self.h = server_helpers()
        module = self.h.deepgram_protocol if provider == "deepgram" else self.h.assemblyai_protocol
        self.parse_query = module.parse_query
        self.make_codec = make_codec

    def generate(self, mutator: Mutator, rng: random.Random) -> dict:
        return mutator.core_case(self.provider, rng)

    def run(self, case: dict) -> None:
        from livetx_widgets.events import ProviderWarning
        from livetx_widgets.server.params import QueryError

        h = self.h
        # A None value leaves a default of the driver out (Deepgram without encoding: WAV).
        pairs = [(k, str(v)) for k, v in case["query"].items() if v is not None]
        try:
            _timed(self.name, self.parse_query, pairs)
        except QueryError:
            return  # refused at the upgrade with HTTP 400: documented
        except Exception as exc:
            raise Finding(self.name, f"parse_query raised {type(exc).__name__}: {exc}") from exc
        try:
            driver = h.CoreDriver(self.provider, options={"rate_limit": False},
                                  **dict(case["query"]))  # fmt: skip
            for kind, value in case["ops"]:
                if kind == "text":
                    # websockets refuses a text frame that is not UTF-8 (close 1007) before
                    # the core sees it: the core only ever gets text that encodes.
                    value = value.encode("utf-8", "replace").decode("utf-8")
                    _timed(self.name, driver.text, value)
                elif kind == "audio":
                    _timed(self.name, driver.audio, bytes(value))
                else:
                    _timed(self.name, driver.advance, float(value))
        except Finding:
            raise
        except Exception as exc:
            raise Finding(self.name, f"the core raised {type(exc).__name__}: {exc}") from exc
        codec = self.make_codec(self.provider)
        closed = False
        for action in driver.actions:
            if closed:
                raise Finding(self.name, f"{action!r:.100} after the close")
            if isinstance(action, h.Close):
                closed = True
                if not _sendable(action.code) or action.code not in DOCUMENTED_CLOSES[
                        self.provider]:  # fmt: skip
                    raise Finding(self.name, f"close code {action.code} is not documented")
                if len(action.reason.encode("utf-8")) > 123:
                    raise Finding(self.name, f"close reason of {len(action.reason)} chars")
            elif isinstance(action, h.Send):
                try:
                    json.loads(action.text)
                    action.text.encode("utf-8")
                except (ValueError, UnicodeError) as exc:
                    raise Finding(self.name, f"sent a frame that is not JSON: {exc}") from exc
                warnings = [e for e in codec.decode(action.text)
                            if isinstance(e, ProviderWarning)]  # fmt: skip
                if warnings:
                    raise Finding(self.name, f"the client cannot read it: {warnings[0].message}")
            elif not isinstance(action, h.Drop):
                raise Finding(self.name, f"unknown action {action!r}")


class _Updater:
    def __init__(self):
        self.sent: list[dict] = []
        self.notices: list[str] = []

    def send(self, message: dict) -> None:
        json.dumps(message, allow_nan=False)  # what the kernel's packer would do
        self.sent.append(message)

    def apply(self, **changes) -> None:
        self.notices.append(changes.get("notice", ""))


class _Widget:
    """What ``BrowserLink`` uses of its widget: the running session and the updater."""

    def __init__(self, source):
        self._session = types.SimpleNamespace(source=source, running=True)
        self._updater = _Updater()


class BrowserTarget:
    """The widget's ``audio``/``view-gone``/``capture-error`` messages into a live
    ``BrowserMicrophone`` (started, as the session's sender starts it)."""

    name = "browser-audio"

    def __init__(self):
        from livetx_widgets.audio import BrowserMicrophone
        from livetx_widgets.ui.browser_link import BrowserLink

        self.mic_cls, self.link_cls = BrowserMicrophone, BrowserLink

    def generate(self, mutator: Mutator, rng: random.Random) -> list:
        return mutator.browser_case(rng)

    def run(self, case: list) -> None:
        mic = self.mic_cls(max_backlog_s=2.0, reorder_wait_s=0.0)
        mic.start()
        widget = _Widget(mic)
        link = self.link_cls(widget)
        routes = {"audio": link.audio, "view-gone": lambda c, b: link.view_gone(c),
                  "capture-error": lambda c, b: link.capture_error(c)}  # fmt: skip
        limit = mic._max_bytes + 64_000
        try:
            for content, buffers in case:
                if not isinstance(content, dict):
                    continue  # LiveTranscriber._on_front_end_msg drops it before routing
                kind = content.get("type")
                route = routes.get(kind) if isinstance(kind, str) else None
                if route is not None:
                    _timed(self.name, route, content, list(buffers))
                stats = mic.stats()
                json.dumps(stats, allow_nan=False)
                if len(mic._buf) > limit:
                    raise Finding(self.name, f"queue holds {len(mic._buf)} bytes > its bound")
            _timed(self.name, mic.end)
            total = 0
            for _ in range(10_000):
                try:
                    chunk = mic.read(0.0)
                except Exception as exc:
                    if type(exc).__name__ == "AudioDeviceError":
                        break  # capture-error: the documented end of the session
                    raise
                if chunk is None:
                    break
                if len(chunk) % 2:
                    raise Finding(self.name, "a read returned half a sample")
                total += len(chunk)
        except Finding:
            raise
        except Exception as exc:
            raise Finding(self.name, f"raised {type(exc).__name__}: {exc}") from exc
        finally:
            mic.stop()


def make_targets() -> dict[str, Any]:
    """Every target, by name."""
    return {t.name: t for t in (CodecTarget("deepgram"), CodecTarget("assemblyai"),
                                CoreTarget("deepgram"), CoreTarget("assemblyai"),
                                BrowserTarget())}  # fmt: skip


def replay_fixtures(targets: dict[str, Any]) -> list[tuple[Path, str]]:
    """Run every stored regression case; returns the (fixture, target) pairs replayed."""
    done = []
    for path in sorted(FUZZ_FIXTURES.glob("*.json")):
        name, case = case_from_json(path.read_text())
        targets[name].run(case)
        done.append((path, name))
    return done
