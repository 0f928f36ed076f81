"""Helpers for the transcript tests: a tiny SubRip/WebVTT reader written independently of
the exporter (so that the round-trip tests can fail), and pandas' default string dtype."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

_SRT_TIMING = re.compile(r"^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$")
_VTT_TIMING = re.compile(
    r"^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$"
)
_VOICE = re.compile(r"^<v ([^>]*)>(.*)$")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str  # SubRip: the line as written; WebVTT: unescaped, voice tag removed
    voice: str | None = None  # WebVTT only


def _ms(h: str, m: str, s: str, ms: str) -> int:
    assert int(m) < 60 and int(s) < 60
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _blocks(body: str) -> list[list[str]]:
    if not body.strip("\n"):
        return []
    assert body.endswith("\n") and not body.endswith("\n\n"), "file must end with one newline"
    return [block.split("\n") for block in body[:-1].split("\n\n")]


def parse_srt(content: str) -> list[Cue]:
    cues = []
    for number, lines in enumerate(_blocks(content), start=1):
        assert len(lines) == 3, f"cue {number} must be index, timing, one text line: {lines}"
        assert lines[0] == str(number), f"cue numbered {lines[0]!r}, expected {number}"
        timing = _SRT_TIMING.match(lines[1])
        assert timing, f"bad SubRip timing line {lines[1]!r}"
        g = timing.groups()
        cues.append(Cue(_ms(*g[:4]), _ms(*g[4:]), lines[2]))
    return cues


def _vtt_unescape(text: str) -> str:
    assert "<" not in text and ">" not in text, f"unescaped markup in {text!r}"
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_vtt(content: str) -> list[Cue]:
    assert content.startswith("WEBVTT\n"), "a WebVTT file starts with the WEBVTT line"
    rest = content[len("WEBVTT\n") :]
    if not rest:
        return []
    assert rest.startswith("\n"), "a blank line must follow the header"
    cues = []
    for lines in _blocks(rest[1:]):
        assert len(lines) == 2, f"cue must be timing and one text line: {lines}"
        timing = _VTT_TIMING.match(lines[0])
        assert timing, f"bad WebVTT timing line {lines[0]!r}"
        g = timing.groups()
        voice = None
        text = lines[1]
        tagged = _VOICE.match(text)
        if tagged:
            voice, text = _vtt_unescape(tagged.group(1)), tagged.group(2)
        cues.append(Cue(_ms(*g[:4]), _ms(*g[4:]), _vtt_unescape(text), voice))
    return cues


@pytest.fixture(scope="session")
def srt_reader():
    return parse_srt


@pytest.fixture(scope="session")
def vtt_reader():
    return parse_vtt


@pytest.fixture(scope="session")
def string_dtype():
    """What pandas infers for a column of str (object on pandas 2, str on pandas 3)."""
    pd = pytest.importorskip("pandas")
    return pd.Series(["x"]).dtype
