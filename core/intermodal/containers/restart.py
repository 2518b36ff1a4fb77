"""Restart policies, as Docker applies them: pure logic, no I/O.

The monitor imports this module, so it imports nothing: no dataclasses
(which pulls in `inspect` and `re`), only builtins.
"""

from __future__ import annotations

POLICIES = ("no", "on-failure", "always", "unless-stopped")

# Docker's back-off (moby restartmanager): 100 ms, doubled after each
# restart, at most a minute, and back to the start once a run lasted 10 s.
BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0


class RestartPolicy:
    """`no`, `on-failure[:N]`, `always` or `unless-stopped`; N = 0 means unlimited."""

    __slots__ = ("max_retries", "name")

    def __init__(self, name: str = "no", max_retries: int = 0) -> None:
        self.name = name
        self.max_retries = max_retries

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RestartPolicy) and (self.name, self.max_retries) == (other.name, other.max_retries)

    def __hash__(self) -> int:
        return hash((self.name, self.max_retries))

    def __repr__(self) -> str:
        return f"RestartPolicy({self.name!r}, {self.max_retries})"

    def to_json(self) -> dict:
        return {"Name": self.name, "MaximumRetryCount": self.max_retries}

    @classmethod
    def from_json(cls, value: dict | None) -> RestartPolicy:
        value = value or {}
        return cls(value.get("Name") or "no", int(value.get("MaximumRetryCount") or 0))


def parse(text: str | None) -> RestartPolicy:
    """`"on-failure:3"` -> RestartPolicy("on-failure", 3). Raises ValueError with a message for the user."""
    if not text:
        return RestartPolicy()
    name, _, count = text.partition(":")
    if name not in POLICIES:
        raise ValueError(f"invalid restart policy {text!r}: use one of no, on-failure[:N], always, unless-stopped")
    if count and name != "on-failure":
        raise ValueError(f"invalid restart policy {text!r}: only on-failure takes a maximum retry count")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise ValueError(f"invalid restart policy {text!r}: the retry count must be a whole number") from None
    if retries < 0:
        raise ValueError(f"invalid restart policy {text!r}: the retry count cannot be negative")
    return RestartPolicy(name, retries)


def should_restart(policy: RestartPolicy, exit_code: int, restart_count: int, stopped_by_user: bool) -> bool:
    """Whether the monitor starts the container again after this exit.

    A container stopped by `imod stop`/`kill`/`rm` is never restarted (Docker
    does the same for every policy; `unless-stopped` differs only at boot).
    """
    if stopped_by_user or policy.name == "no":
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if exit_code == 0:
        return False
    return policy.max_retries == 0 or restart_count < policy.max_retries


def next_delay(previous: float, ran_for: float) -> float:
    """The wait before the next start, given the last wait and how long the last run lasted."""
    if previous <= 0 or ran_for >= BACKOFF_RESET_AFTER:
        return BACKOFF_START
    return min(previous * 2, BACKOFF_MAX)


def restart_at_boot(policy: RestartPolicy, stopped_by_user: bool) -> bool:
    """Whether `imod start --all-restartable` brings the container back after a reboot."""
    if policy.name == "always":
        return True
    if policy.name == "unless-stopped":
        return not stopped_by_user
    return False
