import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _(mo):
    mo.md(r"""
    # livetx quickstart in marimo: live transcription in an app

    The widget records, the cells below follow the transcript: marimo re-runs them each time
    a final segment is committed, when a session starts and when it ends (never on partial
    results), so the table grows while you speak. Run it as an app:

    ```
    marimo run notebooks/marimo_quickstart.py
    ```

    * **Provider**: `auto` uses Deepgram or AssemblyAI when `DEEPGRAM_API_KEY` or
      `ASSEMBLYAI_API_KEY` is set, and otherwise the **offline engine** (Whisper tiny.en,
      on this machine, no key, no network). A key pasted into the widget stays in the
      kernel's memory: it is never in this file or in the page's state.
    * **Source**: the kernel's microphone when the machine running marimo has one, else the
      browser's (the page asks for the microphone: marimo must be opened on `localhost` or
      over https). A short demo recording is preselected in the file box.
    """)
    return


@app.cell
def _():
    import os

    import marimo as mo

    from livetx_widgets import LiveTranscriber
    from livetx_widgets.data import demo_wav

    # The defaults are for you at a keyboard; the environment variables let the same app run
    # headless (tests/ui/test_marimo.py).
    PROVIDER = os.environ.get("LIVETX_PROVIDER", "auto")  # deepgram | assemblyai | local | auto
    AUDIO = os.environ.get("LIVETX_AUDIO")  # a WAV file to transcribe instead of a microphone
    REALTIME = os.environ.get("LIVETX_REALTIME", "1") != "0"  # play a file at speaking pace
    URL = os.environ.get("LIVETX_URL")  # another endpoint, e.g. ws://127.0.0.1:8765
    return AUDIO, LiveTranscriber, PROVIDER, REALTIME, URL, demo_wav, mo


@app.cell
def _(AUDIO, LiveTranscriber, PROVIDER, REALTIME, URL, demo_wav, mo):
    # mo.ui.anywidget makes the widget a marimo UI element: the cells that read `w` re-run
    # when its transcript changes. `w.transcript`, `w.stop()`... reach the widget itself.
    w = mo.ui.anywidget(
        LiveTranscriber(
            provider=PROVIDER,
            source=AUDIO or "auto",  # "auto": the kernel's microphone if it has one
            file=demo_wav(),  # offered when you switch the source to "WAV file"
            realtime=REALTIME,
            url=URL,
        )
    )
    mo.vstack([mo.md("## 1. Press Start and speak"), w])
    return (w,)


@app.cell
def _(mo, w):
    # Re-runs on each committed final: what the session holds now.
    _n = len(w.transcript)
    _error = f" · the session ended with an error: {w.error}" if w.last_error else ""
    mo.md(f"**{w.status_text}** · {_n} segment{'' if _n == 1 else 's'}{_error}")
    return


@app.cell
def _(mo, w):
    df = w.to_dataframe()  # one row per final segment: times in seconds from the start
    mo.vstack([
        mo.md("## 2. The transcript as a DataFrame"),
        df[["start", "end", "speaker", "confidence", "text"]],
    ])
    return (df,)


@app.cell
def _(mo, w):
    meta = w.metadata
    mo.vstack([
        mo.md("## 3. Metadata"),
        {
            "provider": meta.provider,
            "model": meta.model,
            "state": meta.state,
            "session_id": meta.session_id,
            "audio_s": round(meta.audio_sent_s, 1),
            "finals": meta.finals,
            "latency": meta.latency,
        },
    ])
    return (meta,)


@app.cell
def _(mo, w):
    _t = w.transcript
    mo.vstack([
        mo.md("## 4. Download"),
        mo.hstack([
            mo.download(_t.to_srt().encode(), filename="transcript.srt", label="SRT"),
            mo.download(_t.to_vtt().encode(), filename="transcript.vtt", label="WebVTT"),
            mo.download(_t.to_json().encode(), filename="transcript.json", label="JSON"),
        ], justify="start"),
        mo.md(
            "Press **Start** again for a new session: each Start gets a fresh transcript; "
            "earlier ones stay in `w.sessions`. `notebooks/analysis.ipynb` digs into the "
            "DataFrame."
        ),
    ])
    return


if __name__ == "__main__":
    app.run()
