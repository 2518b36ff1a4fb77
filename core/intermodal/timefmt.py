"""RFC 3339 times as Go writes them (nanoseconds, `Z` or an offset)."""

from __future__ import annotations


def parse_rfc3339(text: str) -> float | None:
    """Unix time of *text*, or None when it is empty or not RFC 3339."""
    if not text:
        return None
    import datetime as dt

    text = text.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def format_rfc3339(timestamp: float) -> str:
    """UTC, microseconds, `Z`: what `inspect` shows."""
    if not timestamp:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
