"""v1 devices controller: the spec's rules, then runc's defaults, written as a transition.

Semantics (cgroup-v1/devices.rst, security/device_cgroup.c): a cgroup is
default-allow or default-deny and keeps a list of exceptions, one access set
per exact (type, major, minor); writing ``a`` to devices.allow or devices.deny
clears the list and sets the default. A rule that agrees with the default
removes access from the exception with exactly its key (a wildcard rule does
not reach a narrower exception), one that disagrees adds access to it.

Like runc's devices emulator, :func:`emulate` computes the state the rules
end in and :func:`transition` the writes from the cgroup's current state
(devices.list) to it: a new cgroup (allow-all, inherited) gets "deny all"
first, then the allowed exceptions; a default-deny cgroup that only needs a
few exceptions changed (``update`` of a running container) gets those, so its
processes never lose access to /dev/null & co. in between. After the spec's
rules the devices every container needs (runc's ``AllowedDevices``) are
allowed, so /dev/null & co. work whatever the spec says.
"""

from __future__ import annotations

import errno
import os

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime.cgroups.manager import write

NAME = "devices"

# (type, major, minor, access): mknod of anything, then the standard nodes; runc 1.1's list minus tun
# (runc 1.2 dropped it too; engines that want /dev/net/tun allow it in their config, as Docker and imod do).
# Not /dev/console (5:1): with CAP_MKNOD a container could make a node of the host's console; a
# container's console is a pty (136:*), which is allowed.
DEFAULT_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),    # /dev/null
    ("c", 1, 8, "rwm"),    # /dev/random
    ("c", 1, 7, "rwm"),    # /dev/full
    ("c", 5, 0, "rwm"),    # /dev/tty
    ("c", 1, 5, "rwm"),    # /dev/zero
    ("c", 1, 9, "rwm"),    # /dev/urandom
    ("c", 136, None, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),    # /dev/ptmx
)

Key = tuple[str, "int | None", "int | None"]  # (type, major, minor); None is the wildcard
State = tuple[bool, dict]  # (default allow?, {Key: access as a set of "rwm" letters})


def applies(resources: dict) -> bool:
    return True  # always: a container without rules still gets default-deny + defaults


def rule_line(kind: str, major: int | None, minor: int | None, access: str) -> str:
    def num(n: int | None) -> str:
        return "*" if n is None or n < 0 else str(n)

    return f"{kind} {num(major)}:{num(minor)} {access}"


def check_rule(r: dict, i: int) -> tuple[str, str]:
    """(type, access) of OCI rule ``i``, defaults filled in; ``InvalidSpec`` if malformed."""
    kind = r.get("type", "a") or "a"
    access = r.get("access", "rwm") or "rwm"
    if kind not in ("a", "b", "c") or set(access) - set("rwm"):
        raise InvalidSpec(f"linux.resources.devices[{i}]: type {kind!r} / access {access!r} invalid; "
                          "type is a, b or c and access a subset of rwm")
    for field in ("major", "minor"):
        n = r.get(field)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool)):
            raise InvalidSpec(f"linux.resources.devices[{i}].{field}: {n!r} is not a number; "
                              "give an integer, or leave it out for all")
    return kind, access


def with_defaults(rules: list[dict] | None) -> list[dict]:
    """The spec's rules followed by runc's default allowed devices (pure)."""
    return [*(rules or []), *({"allow": True, "type": t, "major": ma, "minor": mi, "access": a}
                              for t, ma, mi, a in DEFAULT_ALLOWED)]


def emulate(rules: list[dict] | None) -> State:
    """The state the kernel keeps after "deny all", the spec's rules and the defaults (pure)."""
    allow_all, exceptions = False, {}
    for i, r in enumerate(with_defaults(rules)):
        kind, access = check_rule(r, i)
        allow = bool(r.get("allow"))
        if kind == "a":
            allow_all, exceptions = allow, {}
            continue
        key = (kind, _wild(r.get("major")), _wild(r.get("minor")))
        have = exceptions.get(key, frozenset())
        now = have - set(access) if allow == allow_all else have | set(access)
        if now:
            exceptions[key] = frozenset(now)
        else:
            exceptions.pop(key, None)
    return allow_all, exceptions


def parse_list(text: str) -> State | None:
    """devices.list as a state; ``None`` when it cannot say (default-allow hides its exceptions)."""
    exceptions: dict = {}
    for line in text.splitlines():
        try:
            kind, numbers, access = line.split()
            major, minor = numbers.split(":")
            key = (kind, None if major == "*" else int(major), None if minor == "*" else int(minor))
        except ValueError:
            return None
        if kind == "a":
            return None  # "a *:* rwm": allow-all, exceptions (denials) not listed
        exceptions[key] = frozenset(access)
    return False, exceptions


def transition(current: State | None, target: State) -> list[tuple[str, str]]:
    """(file, line) writes that take the cgroup from ``current`` (None: unknown) to ``target`` (pure)."""
    allow_all, wanted = target
    if current is None or allow_all or current[0]:
        # Reset, then the exceptions: allowed devices of a default-deny cgroup, denied ones of an allow-all one.
        out = [("devices.allow" if allow_all else "devices.deny", "a")]
        name = "devices.deny" if allow_all else "devices.allow"
        return out + [(name, rule_line(*key, _letters(acc))) for key, acc in wanted.items()]
    have = current[1]
    # Additions first: nothing the target allows is ever denied in between.
    out = [("devices.allow", rule_line(*key, _letters(acc - have.get(key, frozenset()))))
           for key, acc in wanted.items() if acc - have.get(key, frozenset())]
    out += [("devices.deny", rule_line(*key, _letters(acc - wanted.get(key, frozenset()))))
            for key, acc in have.items() if acc - wanted.get(key, frozenset())]
    return out


def lines(rules: list[dict] | None, current: State | None = None) -> list[tuple[str, str]]:
    """(file, line) writes for the spec's rules plus the defaults, from ``current`` (pure)."""
    return transition(current, emulate(rules))


def apply(path: str, resources: dict) -> list[str]:
    target = emulate(resources.get("devices"))
    listing = _read_list(path)
    writes = transition(None if listing is None else parse_list(listing), target)
    for name, line in writes:
        write(path, name, line)
    if writes and listing is not None:
        _verify(path, target)
    return []


def _verify(path: str, target: State) -> None:
    """As runc: the kernel's list must now be the target exactly, or the container does not start."""
    listing = _read_list(path) or ""
    if parse_list(listing) != (None if target[0] else target):  # allow-all lists as "a *:* rwm" alone
        kept = "; ".join(listing.splitlines()[:4]) or "no exception"
        raise KernelError("check the device rules in", os.path.join(path, "devices.list"), errno.EINVAL,
                          f"the kernel kept other rules than asked for ({kept}...); a parent cgroup may "
                          "restrict devices: check its devices.list")


def _read_list(path: str) -> str | None:
    try:
        with open(os.path.join(path, "devices.list")) as f:
            return f.read()
    except OSError:
        return None


def _wild(n: int | None) -> int | None:
    return None if n is None or n < 0 else n


def _letters(access) -> str:
    return "".join(c for c in "rwm" if c in access)
