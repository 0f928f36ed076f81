"""The only layer with threads and sockets: ``TranscriptionSession`` and its metadata."""

from .metadata import SessionMetadata
from .session import TranscriptionSession

__all__ = ["SessionMetadata", "TranscriptionSession"]
