"""What state a container is really in, and how `ps` words it.

``state.json`` says what the monitor last recorded. If the monitor was
killed (SIGKILL, OOM killer), the record can say "running" for a container
that has exited; the pid and its start time tell us the truth.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from typing import Any

LIVE = ("running", "paused", "restarting")
UNKNOWN_EXIT = 255  # what Docker reports for a container whose exit nobody saw


def start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat; 0 if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2:].split()
    if fields and fields[0] == b"Z":
        return 0  # a zombie has exited already
    return int(fields[19])


def alive(pid: int | None, started: int | None) -> bool:
    return bool(pid) and bool(started) and start_time(int(pid)) == int(started)


def monitor_alive(state: dict[str, Any]) -> bool:
    return alive(state.get("MonitorPid"), state.get("MonitorStart"))


def container_alive(state: dict[str, Any]) -> bool:
    return alive(state.get("Pid"), state.get("PidStart"))


def effective(state: dict[str, Any]) -> dict[str, Any]:
    """The state with the truth filled in when the monitor is gone."""
    status = state.get("Status", "created")
    if status not in LIVE or monitor_alive(state):
        return state
    fixed = dict(state)
    if status in ("running", "paused") and container_alive(state):
        fixed["MonitorMissing"] = True  # still running, but nobody collects its exit or logs
        return fixed
    fixed.update({"Status": "exited", "Running": False, "Paused": False, "Restarting": False, "Pid": 0,
                  "ExitCode": UNKNOWN_EXIT, "Error": "the container's monitor died; its exit code is unknown"})
    return fixed


def describe(state: dict[str, Any], now: float | None = None) -> str:
    """`Up 5 seconds`, `Exited (0) 3 seconds ago`, `Created`, `Up 2 seconds (Paused)` — Docker's STATUS column."""
    from intermodal.cli.base import human_ago

    now = time.time() if now is None else now
    status = state.get("Status", "created")
    if status == "created":
        return "Created"
    if status in ("running", "paused"):
        up = _since(state.get("StartedAt"), now)
        if status == "paused":
            return f"Up {up} (Paused)"
        health = (state.get("Health") or {}).get("Status")
        return f"Up {up}" + ({"starting": " (health: starting)", "healthy": " (healthy)",
                              "unhealthy": " (unhealthy)"}.get(health, "") if health else "")
    if status == "restarting":
        return f"Restarting ({state.get('ExitCode', 0)}) {human_ago(now - _ts(state.get('FinishedAt'), now))}"
    if status == "removing":
        return "Removal In Progress"
    return f"Exited ({state.get('ExitCode', 0)}) {human_ago(now - _ts(state.get('FinishedAt'), now))}"


def _since(text: str | None, now: float) -> str:
    seconds = int(max(0, now - _ts(text, now)))
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if seconds < 3600:
        return f"{seconds // 60} minutes" if seconds >= 120 else "About a minute"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} hours" if seconds >= 7200 else "About an hour"
    return f"{seconds // 86400} days"


def _ts(text: str | None, default: float) -> float:
    if not text:
        return default
    from intermodal.containers.logs import parse_time
    from intermodal.errors import InvalidArgument

    try:
        return parse_time(text) / 1e9
    except InvalidArgument:
        return default


def now_rfc3339() -> str:
    from intermodal.containers.logs import timestamp

    return timestamp()


def pid_gone(pid: int, started: int, timeout: float) -> bool:
    """Wait (bounded) until the process is gone; True if it is."""
    deadline = time.monotonic() + timeout
    while alive(pid, started):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


__all__ = ["LIVE", "alive", "container_alive", "describe", "effective", "monitor_alive", "pid_gone"]
