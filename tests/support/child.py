"""Run a function in a forked child and get its result back, with a bound.

For tests that change process-wide kernel state (seccomp filters, capability
sets, uids) which must never leak into the pytest process. The child reports
a JSON value or the exception text through a pipe; a child that outlives the
timeout is killed by PID and reaped, so no process is left behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any


class ChildFailed(AssertionError):
    pass


def run_in_child(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``fn()`` in a forked child; returns its JSON-able result or raises ChildFailed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(r)
            payload = {"ok": fn()}
        except BaseException as exc:  # everything goes back to the parent
            payload = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            code = 1
        try:
            os.write(w, json.dumps(payload, default=str).encode())
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        status = _reap(pid, deadline)
    if not data:
        raise ChildFailed(f"child {pid} sent nothing (wait status {status})")
    payload = json.loads(data)
    if "error" in payload:
        raise ChildFailed(payload["error"] + "\n" + payload.get("trace", ""))
    return payload["ok"]


def _reap(pid: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
