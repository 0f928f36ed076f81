"""The session's timing rules and retry codes, in one place (every thread reads them)."""

from __future__ import annotations

TICK_S = 0.1  # longest a thread waits before re-checking state it was not notified about
PACING_BURST_S = 0.5  # how far audio may run ahead of the wall clock for realtime_only codecs
#: Close codes and HTTP statuses after which a new connection may work: server-side
#: timeouts and internal errors (Deepgram 1011 NET-0000/NET-0001, AssemblyAI 3005), service
#: restarts and overload (1012, 1013, 5xx).
RETRYABLE_CODES = {1001, 1011, 1012, 1013, 3005, 500, 502, 503, 504, "NET-0000", "NET-0001"}
MAX_LATENCY_SAMPLES = 2000
MAX_PENDING_S = 2.0  # a finite source is not read further ahead of the socket than this
SEND_STALL_S = 10.0  # a send blocked this long means the peer stopped reading: reconnect
TERMINAL_CLOSE_S = 2.0  # after an unrequested terminal message, the close must follow by then
JOIN_GRACE_S = 2.0  # after an abort, how long stop() waits for the threads to notice
#: How much less audio a summary may report than was sent (AssemblyAI rounds to seconds).
SUMMARY_TOLERANCE_S = 1.5
_THREADS = ("livetx-sender", "livetx-receiver", "livetx-control")
