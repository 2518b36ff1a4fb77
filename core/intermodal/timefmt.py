"""RFC 3339 times as Go writes them (nanoseconds, `Z` or an offset)."""

from __future__ import annotations


def parse_rfc3339(text: str) -> float | None:
    """Unix time of *text*, or None when it is empty or not RFC 3339."""
    ns = parse_rfc3339_ns(text)
    return None if ns is None else ns / 1e9


def parse_rfc3339_ns(text: str) -> int | None:
    """Unix time of *text* in nanoseconds, all nine digits of the fraction kept (log records need them);
    None when it is empty or not RFC 3339. Without an offset it is local time, as Docker's client reads it."""
    if not text:
        return None
    import datetime as dt

    head, dot, rest = text.replace("Z", "+00:00").replace("z", "+00:00").partition(".")
    digits = ""
    if dot:
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        rest = rest[len(digits):]
        if not digits:
            return None
    try:
        seconds = int(dt.datetime.fromisoformat(head + rest).timestamp())
    except ValueError:
        return None
    return seconds * 1_000_000_000 + int((digits + "000000000")[:9])


def format_rfc3339(timestamp: float) -> str:
    """UTC, microseconds, `Z`: what `inspect` shows."""
    if not timestamp:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
