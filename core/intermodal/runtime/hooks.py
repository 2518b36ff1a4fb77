"""OCI hooks: run each program with the container's state JSON on stdin.

Plain fork/exec (no subprocess): createContainer and startContainer hooks
run in the container child, after pivot_root, where importing is no longer
possible. A failing hook fails the operation (runtime-spec config.md "POSIX-
platform Hooks"), except poststart and poststop, which the caller only warns about.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum, ~1 ms of every container start
import errno
import os
import time

from intermodal.errors import RuntimeFailure
from intermodal.runtime.process import reset_signals
from intermodal.runtime.spec import Hook

DEFAULT_TIMEOUT = 120.0
POLL = 0.002


def run_all(phase: str, hooks: tuple[Hook, ...], state_json: bytes) -> None:
    for hook in hooks:
        run(phase, hook, state_json)


def run(phase: str, hook: Hook, state_json: bytes) -> None:
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        _child(hook, read_end, write_end)
    os.close(read_end)
    try:
        _feed(write_end, state_json)
    finally:
        os.close(write_end)
    status = _wait(pid, hook.timeout or DEFAULT_TIMEOUT)
    if status is None:
        raise RuntimeFailure(f"{phase} hook {hook.path} did not finish within {hook.timeout or DEFAULT_TIMEOUT}s "
                             "and was killed; make it faster or raise its timeout")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeFailure(f"{phase} hook {hook.path} failed with exit code {code}; fix the hook or remove it")


def _child(hook: Hook, read_end: int, write_end: int) -> None:
    try:
        os.close(write_end)
        os.dup2(read_end, 0)
        os.closerange(3, 1 << 20)
        reset_signals()
        os.execve(hook.path, list(hook.args) or [hook.path], dict(e.partition("=")[::2] for e in hook.env))
    finally:
        os._exit(127)


def _feed(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except BrokenPipeError:
        pass  # a hook need not read its stdin


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    delay = POLL
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
            os.waitpid(pid, 0)
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
