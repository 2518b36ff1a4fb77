"""HTTP from the host to a server a test started: bounded retries while it comes up."""

from __future__ import annotations

import time
import urllib.request


def fetch(url: str, *, within: float = 10.0) -> bytes:
    """The body at *url*, retried every 0.1 s until it answers or *within* seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
