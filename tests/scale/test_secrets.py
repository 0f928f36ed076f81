"""Secret audit: one distinctive fake key, and every place output goes, checked for it.

The paths, and where each is checked:

* session: ``repr``s (session, config, connect request, codec, metadata), ``metadata.to_dict``,
  the transcript in every export format, the ``record_to`` WAV (bytes), logs at DEBUG (client
  and in-process server), the server's connection records, on success, after a reconnect and
  on a refused key (``test_session_*``);
* exceptions: ``str``/``repr`` and the whole formatted traceback chain of the error a refused
  key ends the session with, Deepgram (HTTP 401) and AssemblyAI (Error frame + 1008)
  (``test_refused_key_*``);
* CLI: ``livetx transcribe`` stdout and stderr, plain and ``--json``, the ``--out`` file and
  ``--record``, with the key in the environment and AssemblyAI's ``-o token=`` in the URL
  (``test_cli_*``);
* widget: its state, every comm message it sends, its ``repr``, ``error`` and ``notice`` when
  the key is refused, with the key given as an argument and through the password field
  (``test_widget_*``; the successful session: ``tests/widget/test_keys.py``);
* saved Jupyter notebooks (outputs and widget state): ``tests/notebooks/test_notebooks.py::
  test_saved_notebook_holds_no_key``;
* compare summaries, the aligned table and the compare widget
  (``test_compare_summary_shows_the_key_nowhere``: skipped until ``livetx_widgets.compare``
  is on the branch, then it runs);
* marimo (``tests/ui/test_marimo.py``, marker ``ui``): keys from the environment through a
  LiveTranscriber and a CompareTranscriber that run to the end in ``marimo edit``, checked in
  every frame and widget model state the page received, the views' HTML, the cell outputs,
  the saved notebook, ``__marimo__/`` and the marimo server's log
  (``test_secret_audit_env_keys_reach_no_marimo_output``); a key pasted into the widget's key
  field, the same places (``test_errors_are_shown_and_keys_never_reach_page_or_file``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
import types

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets import ArraySource, LiveTranscriber, TranscriptionSession, WavFile
from livetx_widgets.cli import main as cli_main
from livetx_widgets.errors import AuthenticationError
from livetx_widgets.server import Faults, LocalServer, Trigger

SECRET = "sk-livetx-AUDIT-9f8e7d6c5b4a3210"
#: The key, and a part of it distinctive enough that a truncated or masked-late copy shows.
NEEDLES = (SECRET, SECRET[-16:])
SCRIPT = support.TWO_TURNS


def assert_absent(where: str, content) -> None:
    if isinstance(content, bytes):
        for needle in NEEDLES:
            for encoded in (needle.encode(), needle.encode("utf-16-le")):
                assert encoded not in content, f"the key is in {where}"
        return
    text = content if isinstance(content, str) else repr(content)
    for needle in NEEDLES:
        at = text.find(needle)
        assert at < 0, f"the key is in {where}: ...{text[max(0, at - 80) : at + 80]}"


def formatted(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def session_outputs(session: TranscriptionSession, tmp_path) -> dict:
    """Every output of a finished session, by name."""
    out = {
        "repr(session)": repr(session),
        "repr(config)": repr(getattr(session, "config", None)),
        "repr(metadata)": repr(session.metadata),
        "metadata.to_dict()": json.dumps(session.metadata.to_dict(), default=str),
        "str(error)": str(session.error),
        "repr(error)": repr(session.error),
        "traceback(error)": formatted(session.error),
        "transcript.text": session.transcript.text,
        "listener errors": repr(session.listener_errors),
    }
    for ext in ("json", "srt", "vtt", "csv", "txt"):
        path = tmp_path / f"export.{ext}"
        session.transcript.save(str(path))
        out[f"transcript.save(.{ext})"] = path.read_bytes()
    conn = getattr(session, "_conn", None) or getattr(session, "connection", None)
    if conn is not None:
        out["repr(connection)"] = repr(conn)
    return out


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("provider", ["deepgram", "assemblyai"])
def test_session_with_a_reconnect_shows_the_key_nowhere(provider, tmp_path, debug_logs):
    wav = support.tone_wav(tmp_path / "five.wav", 5.0)
    faults = Faults(drop_when=Trigger(frames=30), connections=1)  # a reconnect, then normal
    with LocalServer(engine="script", script=SCRIPT, api_key=SECRET, rate_limit=False,
                     faults=faults) as srv:  # fmt: skip
        # realtime=False: the audit is about where the key goes, not the pace (5 s saved)
        session = TranscriptionSession(provider, source=WavFile(wav, realtime=False),
                                       api_key=SECRET,
                                       url=srv.url, record_to=str(tmp_path / "rec.wav"),
                                       pace=False)  # fmt: skip
        with session:
            assert session.wait(30 * support.TIMING)
        records = srv.sessions
        assert [r.authorized for r in records] == [True, True]  # the key was really used
        outputs = session_outputs(session, tmp_path)
        outputs["server records"] = repr(records)
        outputs["server records (dict)"] = json.dumps([vars(r) for r in records], default=str)
        outputs["repr(server)"] = repr(srv)
        outputs["repr(server options)"] = repr(srv.options)
    assert session.error is None and session.metadata.reconnects == 1
    assert session.transcript.text == " ".join(t["text"] for t in SCRIPT["turns"])
    outputs["record_to WAV"] = (tmp_path / "rec.wav").read_bytes()
    outputs["logs at DEBUG"] = debug_logs.text
    assert "DEBUG" in {r.levelname for r in debug_logs.records}
    for where, content in outputs.items():
        assert_absent(where, content)


@pytest.mark.parametrize("provider", ["deepgram", "assemblyai"])
def test_refused_key_errors_and_tracebacks_show_the_key_nowhere(provider, tmp_path,
                                                                  debug_logs):  # fmt: skip
    with LocalServer(engine="script", script=SCRIPT, api_key="the-right-key",
                     rate_limit=False) as srv:  # fmt: skip
        session = TranscriptionSession(provider, source=ArraySource(support.tone(3.0)),
                                       api_key=SECRET, url=srv.url)  # fmt: skip
        session.start()
        assert session.wait(15 * support.TIMING)
        session.stop()
        assert [r.authorized for r in srv.sessions] == [False]
        outputs = session_outputs(session, tmp_path)
        outputs["server records"] = repr(srv.sessions)
    assert isinstance(session.error, AuthenticationError)
    chain, exc = [], session.error
    while exc is not None:  # every exception chained to it, and their messages
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    outputs["the exception chain"] = repr([(type(e), e.args, vars(e)) for e in chain])
    outputs["logs at DEBUG"] = debug_logs.text
    outputs["log records' args"] = repr([(r.msg, r.args, r.exc_text) for r in debug_logs.records])
    for where, content in outputs.items():
        assert_absent(where, content)


@pytest.mark.parametrize("json_mode", [False, True])
def test_cli_output_shows_the_key_nowhere(json_mode, tmp_path, capsys, monkeypatch,
                                          debug_logs):  # fmt: skip
    wav = support.tone_wav(tmp_path / "five.wav", 5.0)
    monkeypatch.setenv("DEEPGRAM_API_KEY", SECRET)
    out_file, rec = tmp_path / "out.json", tmp_path / "rec.wav"
    with LocalServer(engine="script", script=SCRIPT, api_key=SECRET, rate_limit=False) as srv:
        args = ["transcribe", "--provider", "deepgram", "--url", srv.url, "--file", str(wav),
                "--out", str(out_file), "--record", str(rec)] + (["--json"] if json_mode else [])
        assert cli_main(args) == 0
        assert [r.authorized for r in srv.sessions] == [True]
    out, err = capsys.readouterr()
    assert "Hello there" in out
    for where, content in {"stdout": out, "stderr": err, "--out file": out_file.read_bytes(),
                           "--record WAV": rec.read_bytes(),
                           "logs at DEBUG": debug_logs.text}.items():  # fmt: skip
        assert_absent(where, content)


def test_cli_refused_key_and_query_token_show_the_key_nowhere(tmp_path, capsys, monkeypatch,
                                                              debug_logs):  # fmt: skip
    wav = support.tone_wav(tmp_path / "two.wav", 2.0)
    monkeypatch.setenv("DEEPGRAM_API_KEY", SECRET)
    with LocalServer(engine="script", script=SCRIPT, api_key="the-right-key",
                     rate_limit=False) as srv:  # fmt: skip
        code = cli_main(["transcribe", "--provider", "deepgram", "--url", srv.url,
                         "--file", str(wav), "--json"])  # fmt: skip
        # AssemblyAI's temporary token travels in the URL query (?token=...)
        code2 = cli_main(["transcribe", "--provider", "assemblyai", "--url", srv.url,
                          "--file", str(wav), "-o", f"token={SECRET}"])  # fmt: skip
        records = repr(srv.sessions)
    out, err = capsys.readouterr()
    assert code != 0 and code2 != 0
    assert err.strip(), "the refusal is reported"
    for where, content in {"stdout": out, "stderr": err, "server records": records,
                           "logs at DEBUG": debug_logs.text}.items():  # fmt: skip
        assert_absent(where, content)


def _published(widget) -> list[str]:
    sent: list[str] = []

    def publish(msg_type, data=None, metadata=None, buffers=None, **keys):
        sent.append(json.dumps(data, default=str))

    widget.comm.publish_msg = publish
    return sent


@pytest.mark.parametrize("via", ["argument", "password field"])
def test_widget_with_a_refused_key_shows_it_nowhere(via, monkeypatch, debug_logs):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with LocalServer(engine="script", script=SCRIPT, api_key="the-right-key",
                     rate_limit=False) as srv:  # fmt: skip
        kwargs = {"api_key": SECRET} if via == "argument" else {}
        w = LiveTranscriber(provider="deepgram", url=srv.url,
                            source=ArraySource(support.tone(3.0)), **kwargs)  # fmt: skip
        sent = _published(w)
        try:
            w._repr_mimebundle_()
            w._on_front_end_msg(w, {"type": "hello"}, [])
            if via == "password field":
                w._on_front_end_msg(w, {"type": "key", "value": SECRET}, [])
            w._on_front_end_msg(w, {"type": "start"}, [])
            assert w.wait(15 * support.TIMING)
            assert support.wait_until(lambda: w.status == "error", 5 * support.TIMING)
            outputs = {
                "widget state": json.dumps(w.get_state(), default=str),
                "comm messages": "\n".join(sent),
                "repr(widget)": repr(w),
                "widget traits": repr({name: getattr(w, name) for name in w.keys}),
                "error": w.error,
                "notice": w.notice,
                "metadata": json.dumps(w.metadata.to_dict(), default=str),
                "session traceback": formatted(w.session.error),
            }
        finally:
            w.close()
    assert w.error, "the refusal is shown in the widget"
    outputs["logs at DEBUG"] = debug_logs.text
    for where, content in outputs.items():
        assert_absent(where, content)


def test_reprs_of_configuration_objects_show_the_key_nowhere():
    from livetx_widgets.providers import make_codec
    from livetx_widgets.server.context import ServerOptions

    objects = [
        ServerOptions(api_key=SECRET),
        make_codec("deepgram").connect_request(SECRET),
        make_codec("assemblyai").connect_request(SECRET),
        make_codec("assemblyai", token=SECRET),
        make_codec("assemblyai", token=SECRET).connect_request(None),  # ?token= in the URL
        TranscriptionSession("deepgram", api_key=SECRET, source=ArraySource(support.tone(0.1))),
        LocalServer(api_key=SECRET),
    ]
    request = make_codec("assemblyai", token=SECRET).connect_request(None)
    assert SECRET in request.url  # the transport needs it: only what is shown is masked
    assert_absent("ConnectRequest.safe_url", request.safe_url)
    for obj in objects:
        assert_absent(f"repr({type(obj).__name__})", repr(obj))
        assert_absent(f"str({type(obj).__name__})", str(obj))
        with contextlib.suppress(TypeError):
            assert_absent(f"vars-less str of {type(obj).__name__}", f"{obj}")


def _module(name: str) -> types.ModuleType | None:
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def test_compare_summary_shows_the_key_nowhere(tmp_path, debug_logs):
    """Compare (issue 11): runs once ``livetx_widgets.compare`` is present (skipped before).
    One provider with the right key, one refused: the summary (DataFrame, dict, CSV), the
    aligned table, errors, metadata, reprs, the widget's state and messages."""
    compare = _module("livetx_widgets.compare")
    if compare is None:
        pytest.skip("compare (issue 11) is not on this branch yet")
    from livetx_widgets import CompareTranscriber

    wav = support.tone_wav(tmp_path / "five.wav", 5.0)
    with LocalServer(engine="script", script=SCRIPT, api_key=SECRET, rate_limit=False) as ok, \
            LocalServer(engine="script", script=SCRIPT, api_key="the-right-key",
                        rate_limit=False) as refusing:  # fmt: skip
        providers = [("deepgram", {"url": ok.url, "api_key": SECRET, "label": "good"}),
                     ("deepgram", {"url": refusing.url, "api_key": SECRET, "label": "bad"})]
        cmp = compare.CompareSession(providers, source=str(wav), realtime=False)
        with cmp:
            assert cmp.wait(30 * support.TIMING)
        summary = cmp.summary()
        outputs = {
            "summary": summary.to_csv(), "summary dict": repr(summary.to_dict()),
            "aligned": cmp.aligned().to_csv(), "errors": repr(cmp.errors),
            "error tracebacks": "".join(formatted(e) for e in cmp.errors.values()),
            "metadata": repr(cmp.metadata), "repr": repr(cmp),
            "transcripts": repr(cmp.transcripts),
        }  # fmt: skip
        assert isinstance(cmp.errors["bad"], AuthenticationError)
        w = CompareTranscriber(providers, source=str(wav), realtime=False)
        sent = _published(w)
        try:
            w._on_front_end_msg(w, {"type": "start"}, []) if hasattr(
                w, "_on_front_end_msg") else w.start()  # fmt: skip
            assert w.wait(30 * support.TIMING)
            outputs["widget state"] = json.dumps(w.get_state(), default=str)
            outputs["widget messages"] = "\n".join(sent)
            outputs["widget repr"] = repr(w)
        finally:
            w.close()
    outputs["logs at DEBUG"] = debug_logs.text
    for where, content in outputs.items():
        assert_absent(where, content)
