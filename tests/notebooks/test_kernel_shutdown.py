"""Shutting a kernel down while a widget records: the kernel exits by itself, at once.

The interpreter joins non-daemon threads before ``atexit`` runs, so without the widget's exit
hook a session on a live source (a microphone never ends) would keep the kernel process alive
until Jupyter kills it.
"""

from __future__ import annotations

import pytest
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.slow  # a Jupyter kernel per test

START = """
from livetx_widgets import LiveTranscriber, QueueSource
import time
w = LiveTranscriber(provider="local", local_engine="script", source=QueueSource())
w.start()
t0 = time.monotonic()
while w.status != "live" and time.monotonic() - t0 < 20:
    time.sleep(0.05)
assert w.status == "live", w.error
"""


@pytest.mark.parametrize("kernel", ["7", "6"], indirect=True)
def test_kernel_exits_by_itself_while_a_session_is_live(kernel):
    _major, name = kernel
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(START, timeout=60, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        km.request_shutdown()
        # Bounded wait for the process to end on its own (no kill).
        exited = km.provisioner.process.wait(timeout=20)
        assert exited == 0
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
