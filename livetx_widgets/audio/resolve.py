"""One resolver for ``source=``: a word, a path, an array or an ``AudioSource``.

The widget, the session and the CLI all accept the same things and give the same errors:

* ``"auto"`` (or ``None``): the kernel's microphone when this machine has one; otherwise the
  browser's when there is a page to capture it (the widget), else an ``AudioDeviceError``.
* ``"kernel"`` (with ``device=``), ``"browser"``, ``"file"`` (with ``file=``: a path or a URL);
* a path (``str`` or ``os.PathLike``): a file of any format (``decode.open_file``: ``WavFile``
  for WAV, ``AudioFile`` for the rest);
* an ``http://`` or ``https://`` URL: a live ``NetworkStream`` (HTTP/Icecast or HLS). It is of
  kind ``"file"`` too: the widget has one box for "a file or a URL";
* a numpy array: 16 kHz samples; any ``AudioSource``: used as is.

``source_kind`` names what was asked for without opening anything (the widget shows it in its
menu before Start); ``make_source`` builds the source when a session begins.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import SOURCE_WORDS
from ..errors import AudioDeviceError, ConfigurationError
from .array import ArraySource
from .base import AudioSource
from .browser import BrowserMicrophone
from .decode import open_file
from .microphone import Microphone, list_devices
from .network import NetworkStream, is_url


def source_kind(source: Any, file: Any = None) -> tuple[str, str]:
    """``(kind, path)``: kind is auto, kernel, browser, file (a path or URL) or custom."""
    path = os.fspath(file) if file is not None else ""
    if source is None:
        return "auto", path
    if isinstance(source, AudioSource | np.ndarray):
        return "custom", path
    if isinstance(source, os.PathLike):
        return "file", os.fspath(source)
    if isinstance(source, str):
        if is_url(source):
            return "file", source
        if source in SOURCE_WORDS:
            if source == "file" and not path:
                raise ConfigurationError('source="file" needs file="path/to/audio" as well.')
            return source, path
        if "." in os.path.basename(source) or os.sep in source:
            return "file", source
        raise ConfigurationError(
            f"Unknown source {source!r}. Use one of {', '.join(SOURCE_WORDS)}, a file path, an "
            "http(s):// stream URL, a numpy array or an AudioSource (Microphone, WavFile, "
            "AudioFile, NetworkStream, ArraySource, BrowserMicrophone)."
        )
    raise ConfigurationError(
        f"source must be a word ({', '.join(SOURCE_WORDS)}), a file path, a stream URL, a numpy "
        f"array or an AudioSource, not {type(source).__name__}."
    )


def has_microphone() -> bool:
    """Whether this (the kernel's) machine has an input device pyaudio can open."""
    try:
        return bool(list_devices())
    except AudioDeviceError:
        return False


def auto_kind(*, browser_ok: bool) -> str:
    """What ``"auto"`` means here: the kernel's microphone, else the browser's (if allowed)."""
    if has_microphone():
        return "kernel"
    if browser_ok:
        return "browser"
    raise AudioDeviceError(
        "This machine has no microphone, so source='auto' has nothing to record. Pass a file "
        "(source='talk.wav'), an array, or use the widget, which records from the browser."
    )


def make_source(
    kind: str,
    *,
    custom: Any = None,
    file: str | None = None,
    device: int | str | None = None,
    realtime: bool = True,
    browser_ok: bool = True,
) -> AudioSource:
    """Build the source for ``kind`` (see ``source_kind``)."""
    if kind == "auto":
        kind = auto_kind(browser_ok=browser_ok)
    if kind == "custom":
        if isinstance(custom, np.ndarray):
            return ArraySource(custom, realtime=realtime)
        return custom
    if kind == "file":
        if not file:
            raise ConfigurationError("Choose an audio file first (its path), or a stream URL.")
        if is_url(file):
            return NetworkStream(file)  # live: paced by the stream, ``realtime`` means nothing
        return open_file(file, realtime=realtime)
    if kind == "kernel":
        return Microphone(device)
    if kind == "browser":
        return BrowserMicrophone()
    raise ConfigurationError(f"Unknown source {kind!r}.")


def resolve_source(
    source: Any,
    *,
    file: str | None = None,
    device: int | str | None = None,
    realtime: bool = True,
    browser_ok: bool = False,
) -> AudioSource:
    """``source=`` as an ``AudioSource`` (for a session: no page, so no browser by default)."""
    kind, path = source_kind(source, file)
    return make_source(
        kind, custom=source, file=path or None, device=device, realtime=realtime,
        browser_ok=browser_ok,
    )  # fmt: skip

