"""Untrusted text in status messages, cut to size (no gRPC here: the session registry
uses it too)."""

from __future__ import annotations

# Status messages travel in gRPC metadata (a few KiB at most): whatever a client sent is
# quoted in them only this long, and a whole message never grows past MAX_DETAILS.
MAX_QUOTED = 64
MAX_DETAILS = 1024


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """``repr(value)`` of untrusted input, cut to ``limit`` characters (an echoed 100 kB id
    would otherwise overflow the status metadata and turn NOT_FOUND into RESOURCE_EXHAUSTED)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}...({len(text)} chars)"


def bounded(message: str, limit: int = MAX_DETAILS) -> str:
    """A status message no longer than ``limit`` characters."""
    if len(message) <= limit:
        return message
    return f"{message[: limit - 20]}... ({len(message)} chars)"
