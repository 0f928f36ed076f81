"""Exports of committed segments: DataFrames, SubRip, WebVTT, JSON, CSV and plain text.

Every function here takes a list of :class:`~.model.Segment` that the caller copied under the
transcript's lock, so the formatting (the slow part) never holds that lock. pandas is
imported inside the DataFrame functions only: importing the model stays cheap.

Column dtypes are fixed (not inferred) so that an empty transcript yields a DataFrame with
the same columns and dtypes as a full one; text columns use whatever pandas infers for
strings (``object`` on pandas 2, ``str`` on pandas 3), so they match frames users build.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..events import Word
from .model import Segment

if TYPE_CHECKING:
    import pandas as pd

    from .model import Transcript

#: Identifies livetx transcript JSON; bump ``JSON_VERSION`` when the layout changes.
JSON_FORMAT = "livetx-transcript"
JSON_VERSION = 1

_STR = "str"  # stands for pandas' default string dtype, resolved at call time

#: Columns of ``to_dataframe()``, in order, with their dtypes.
SEGMENT_COLUMNS: dict[str, str] = {
    "segment_id": "int64",
    "start": "float64",
    "end": "float64",
    "text": _STR,
    "confidence": "float64",
    "speaker": _STR,
    "channel": "int64",
    "is_final": "bool",
    "end_of_turn": "bool",
    "n_words": "int64",
    "provider": _STR,
    "session_id": _STR,
    "received_at": "float64",
    "latency_s": "float64",
    "key": _STR,
}

#: Columns of ``words_dataframe()``, in order, with their dtypes.
WORD_COLUMNS: dict[str, str] = {
    "segment_id": "int64",
    "word_index": "int64",
    "text": _STR,
    "start": "float64",
    "end": "float64",
    "confidence": "float64",
    "speaker": _STR,
    "speaker_confidence": "float64",
    "channel": "int64",
}


# --------------------------------------------------------------------- DataFrames


def segments_dataframe(segments: list[Segment]) -> pd.DataFrame:
    """One row per segment; columns and dtypes as in :data:`SEGMENT_COLUMNS`."""
    rows = {
        "segment_id": [s.segment_id for s in segments],
        "start": [s.start for s in segments],
        "end": [s.end for s in segments],
        "text": [s.text for s in segments],
        "confidence": [s.confidence for s in segments],
        "speaker": [s.speaker for s in segments],
        "channel": [s.channel for s in segments],
        "is_final": [s.is_final for s in segments],
        "end_of_turn": [s.end_of_turn for s in segments],
        "n_words": [len(s.words) for s in segments],
        "provider": [s.provider for s in segments],
        "session_id": [s.session_id for s in segments],
        "received_at": [s.received_at for s in segments],
        "latency_s": [s.latency_s for s in segments],
        "key": [s.key for s in segments],
    }
    return _frame(SEGMENT_COLUMNS, rows)


def words_dataframe(segments: list[Segment]) -> pd.DataFrame:
    """One row per word; a word without its own speaker gets its segment's.

    ``speaker_confidence`` is the provider's score for the word's own label (NaN when it
    sent none, or when the speaker shown is the segment's).
    """
    rows: dict[str, list[Any]] = {name: [] for name in WORD_COLUMNS}
    for s in segments:
        for i, w in enumerate(s.words):
            rows["segment_id"].append(s.segment_id)
            rows["word_index"].append(i)
            rows["text"].append(w.text)
            rows["start"].append(w.start)
            rows["end"].append(w.end)
            rows["confidence"].append(w.confidence)
            rows["speaker"].append(w.speaker if w.speaker is not None else s.speaker)
            rows["speaker_confidence"].append(w.speaker_confidence)
            rows["channel"].append(s.channel)
    return _frame(WORD_COLUMNS, rows)


def _frame(schema: dict[str, str], rows: dict[str, list[Any]]) -> pd.DataFrame:
    import pandas as pd

    string_dtype = pd.Series(["x"]).dtype
    return pd.DataFrame(
        {
            name: pd.Series(rows[name], dtype=string_dtype if dtype == _STR else dtype)
            for name, dtype in schema.items()
        }
    )


# --------------------------------------------------------------------- subtitles


def speaker_label(speaker: str | None) -> str | None:
    """How a speaker is named in subtitles: ``"A"`` -> ``"Speaker A"``, ``None`` -> ``None``."""
    if speaker is None or not str(speaker).strip():
        return None
    name = " ".join(str(speaker).split())
    return name if name.lower().startswith("speaker") else f"Speaker {name}"


def format_timestamp(seconds: float, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SubRip) or, with ``separator="."``, ``HH:MM:SS.mmm`` (WebVTT).

    Rounded to the millisecond; negative or non-finite times become zero.
    """
    ms = round(seconds * 1000) if math.isfinite(seconds) and seconds > 0 else 0
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _cues(segments: Iterable[Segment]) -> list[Segment]:
    # Subtitle cues must be ordered by start time (WebVTT requires it); with several channels
    # commit order need not be. Ties keep commit order.
    return sorted(segments, key=lambda s: (s.start, s.segment_id))


def _one_line(text: str) -> str:
    # A blank line ends a cue, so cue text is kept on one line.
    return " ".join(text.split())


def to_srt(segments: list[Segment]) -> str:
    """SubRip: numbered cues, ``Speaker X: `` prefix when the speaker is known."""
    blocks = []
    for number, s in enumerate(_cues(segments), start=1):
        label = speaker_label(s.speaker)
        text = _one_line(s.text)
        line = f"{label}: {text}" if label else text
        start, end = format_timestamp(s.start), format_timestamp(max(s.end, s.start))
        blocks.append(f"{number}\n{start} --> {end}\n{line}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: list[Segment]) -> str:
    """WebVTT: a ``WEBVTT`` header, then cues with a ``<v Speaker X>`` voice tag when known."""
    parts = ["WEBVTT\n"]
    for s in _cues(segments):
        label = speaker_label(s.speaker)
        text = _vtt_escape(_one_line(s.text))
        line = f"<v {_vtt_escape(label)}>{text}" if label else text
        start = format_timestamp(s.start, ".")
        end = format_timestamp(max(s.end, s.start), ".")
        parts.append(f"\n{start} --> {end}\n{line}\n")
    return "".join(parts)


def to_text(segments: list[Segment]) -> str:
    """Plain text: one line per segment in commit order, ``Speaker X: `` when known."""
    lines = []
    for s in segments:
        label = speaker_label(s.speaker)
        text = _one_line(s.text)
        lines.append(f"{label}: {text}" if label else text)
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------- JSON


def to_json(segments: list[Segment], *, provider: str | None, session_id: str | None) -> str:
    """Versioned JSON of the segments and their words; floats keep full precision."""
    doc = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "provider": provider,
        "session_id": session_id,
        "segments": [_segment_to_dict(s) for s in segments],
    }
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)


def _segment_to_dict(s: Segment) -> dict[str, Any]:
    return {
        "segment_id": s.segment_id,
        "key": s.key,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "confidence": _optional_number(s.confidence),
        "speaker": s.speaker,
        "channel": s.channel,
        "is_final": s.is_final,
        "end_of_turn": s.end_of_turn,
        "provider": s.provider,
        "session_id": s.session_id,
        "received_at": _optional_number(s.received_at),
        "latency_s": _optional_number(s.latency_s),
        "words": [_word_to_dict(w) for w in s.words],
    }


def _word_to_dict(w: Word) -> dict[str, Any]:
    word = {
        "text": w.text,
        "start": w.start,
        "end": w.end,
        "confidence": _optional_number(w.confidence),
        "speaker": w.speaker,
    }
    if w.speaker_confidence is not None:  # optional: only diarizing providers send it
        word["speaker_confidence"] = _optional_number(w.speaker_confidence)
    return word


def _optional_number(value: float | None) -> float | None:
    # JSON has no NaN/Infinity; an unknown value is written as null.
    if value is None or not math.isfinite(value):
        return None
    return value


def parse_json(data: str | bytes) -> tuple[str | None, str | None, list[Segment]]:
    """Read :func:`to_json` output back: ``(provider, session_id, segments)``."""
    try:
        doc = json.loads(data)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"Transcript.from_json() needs the text written by Transcript.to_json(): {exc}"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise ConfigurationError(
            f'This JSON is not a livetx transcript (expected "format": "{JSON_FORMAT}"); '
            "load only files written by Transcript.to_json() or Transcript.save('*.json')."
        )
    version = doc.get("version")
    if not isinstance(version, int) or not 1 <= version <= JSON_VERSION:
        raise ConfigurationError(
            f"Transcript JSON version {version!r} is not supported (this livetx-widgets reads "
            f"versions 1 to {JSON_VERSION}); upgrade livetx-widgets to read newer files."
        )
    raw_segments = doc.get("segments")
    if not isinstance(raw_segments, list):
        raise ConfigurationError('Transcript JSON has no "segments" list.')
    segments = []
    for position, raw in enumerate(raw_segments):
        try:
            segment = _segment_from_dict(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"Segment {position} of the transcript JSON is malformed ({exc!r}); "
                "the file was not written by Transcript.to_json() or was edited."
            ) from None
        if segment.segment_id != position:
            raise ConfigurationError(
                f"Segment {position} of the transcript JSON has segment_id "
                f"{segment.segment_id}; segment ids must be 0, 1, 2, ... in file order."
            )
        segments.append(segment)
    return _optional_str(doc.get("provider")), _optional_str(doc.get("session_id")), segments


def _segment_from_dict(raw: dict[str, Any]) -> Segment:
    return Segment(
        segment_id=_int(raw["segment_id"]),
        key=str(raw["key"]),
        start=float(raw["start"]),
        end=float(raw["end"]),
        text=str(raw["text"]),
        words=tuple(
            Word(
                text=str(w["text"]),
                start=float(w["start"]),
                end=float(w["end"]),
                confidence=_optional_float(w.get("confidence")),
                speaker=_optional_str(w.get("speaker")),
                speaker_confidence=_optional_float(w.get("speaker_confidence")),
            )
            for w in raw.get("words", ())
        ),
        confidence=_optional_float(raw.get("confidence")),
        speaker=_optional_str(raw.get("speaker")),
        channel=_int(raw.get("channel", 0)),
        is_final=bool(raw.get("is_final", True)),
        end_of_turn=bool(raw.get("end_of_turn", False)),
        provider=_optional_str(raw.get("provider")),
        session_id=_optional_str(raw.get("session_id")),
        received_at=_optional_float(raw.get("received_at")),
        latency_s=_optional_float(raw.get("latency_s")),
    )


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------- files


_WRITERS = {
    ".json": lambda t: t.to_json(),
    ".srt": lambda t: t.to_srt(),
    ".vtt": lambda t: t.to_vtt(),
    ".txt": lambda t: to_text(t.segments),
    ".csv": lambda t: t.to_dataframe().to_csv(index=False),
}


def save(transcript: Transcript, path: Path) -> Path:
    """Write ``transcript`` to ``path`` in the format its extension names."""
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ConfigurationError(
            f"Cannot save a transcript as {path.name!r}: unknown extension "
            f"{path.suffix or '(none)'!r}. Use one of {', '.join(_WRITERS)}."
        )
    path.write_text(writer(transcript), encoding="utf-8", newline="")
    return path
