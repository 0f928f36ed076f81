"""``BrowserMicrophone``: the microphone of the browser showing the notebook.

On a remote kernel (JupyterHub, Colab, a container) the kernel's machine has no microphone;
the user's browser does. The widget's front end captures it with ``getUserMedia`` and an
AudioWorklet, converts it to 16 kHz mono s16le in the page and sends it to the kernel, where
the widget calls ``push`` on this source. Everything else is ``QueueSource``.
"""

from __future__ import annotations

from .queued import QueueSource


class BrowserMicrophone(QueueSource):
    """The audio the widget's browser front end sends (a live ``QueueSource``).

    The front end sends 16 kHz mono s16le ``bytes``, the default format of ``push``; a front
    end that cannot resample may send its native rate with ``push(data, sample_rate=48000)``.
    ``backlog_s`` is what the widget shows when the kernel falls behind the browser.
    """

    def __repr__(self) -> str:
        return (
            f"BrowserMicrophone(backlog={self.backlog_s:.2f} s, position={self.position_s:.2f} s)"
        )
