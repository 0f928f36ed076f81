"""``PcmFile``: the one writer of a session's sent audio, and its reader.

Both places the sent audio goes, the ``record_to`` WAV file and the temporary file kept for
playback, are a stream of s16le bytes at a fixed offset in a file, appended in order by the
sender thread and read back at any byte position of the session's audio clock. The temporary
file is also bounded: given a ``capacity`` it is a ring, where byte ``n`` of the clock lives at
``n % capacity`` and the newest ``capacity`` bytes are always there.

The file is an unbuffered raw file (``buffering=0``): a write is in the operating system's
page cache when ``write`` returns, so a read right after sees it, with no flush to forget. Not
thread-safe by itself: the caller serializes writes and reads (``SessionAudio`` holds one lock
around each), so a read never sees a half-written chunk.
"""

from __future__ import annotations

import contextlib
from typing import BinaryIO


class PcmFile:
    """Append-only PCM at ``data_offset`` in ``file``; a ring of ``capacity`` bytes if given."""

    def __init__(self, file: BinaryIO, *, data_offset: int = 0, capacity: int | None = None):
        if capacity is not None and capacity <= 0:
            raise ValueError("capacity must be positive")
        self._file: BinaryIO | None = file
        self.data_offset = data_offset
        self.capacity = capacity
        self.written = 0  # bytes appended so far: the end of the audio clock

    @property
    def closed(self) -> bool:
        return self._file is None

    @property
    def first(self) -> int:
        """The oldest byte offset still held (0 until a ring wraps)."""
        if self.capacity is None:
            return 0
        return max(0, self.written - self.capacity)

    def write(self, pcm: bytes) -> None:
        """Append ``pcm`` at the end of the clock."""
        cap = self.capacity
        if cap is None:
            self._put(self.data_offset + self.written, pcm)
        else:
            data = memoryview(pcm)
            skipped = max(0, len(data) - cap)  # a chunk longer than the ring: its tail only
            data = data[skipped:]
            pos = (self.written + skipped) % cap
            first = data[: cap - pos]
            self._put(self.data_offset + pos, first)
            if len(first) < len(data):
                self._put(self.data_offset, data[len(first) :])
        self.written += len(pcm)

    def write_at(self, position: int, data: bytes) -> None:
        """Overwrite bytes at an absolute file position (a header)."""
        self._put(position, data)

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of the clock; the caller checks ``first <= start <= end <=
        written``."""
        if end <= start:
            return b""
        cap = self.capacity
        if cap is None:
            return self._get(self.data_offset + start, end - start)
        pos = start % cap
        size = end - start
        head = self._get(self.data_offset + pos, min(size, cap - pos))
        if len(head) < size:
            return head + self._get(self.data_offset, size - len(head))
        return head

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def _put(self, position: int, data: bytes | memoryview) -> None:
        file = self._require()
        file.seek(position)
        view = memoryview(data)
        while view:  # a raw file may write less than asked
            n = file.write(view)
            if not n:
                raise OSError("the file accepted no bytes")
            view = view[n:]

    def _get(self, position: int, size: int) -> bytes:
        file = self._require()
        file.seek(position)
        parts, left = [], size
        while left > 0:  # a raw file may return less than asked
            chunk = file.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _require(self) -> BinaryIO:
        if self._file is None:
            raise ValueError("the audio file is closed")
        return self._file
