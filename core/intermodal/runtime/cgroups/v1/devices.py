"""v1 devices controller: default deny, the spec's rules, then runc's defaults.

Semantics (cgroup-v1/devices.rst): writing ``a`` to devices.deny clears the
exception list and denies everything; later ``devices.allow`` entries are
exceptions. A spec rule "deny all" (type a, no major/minor) resets the same
way; "allow all" switches to default-allow. After the spec's rules the
devices every container needs (runc's ``AllowedDevices``) are allowed, so
/dev/null & co. work whatever the spec says.
"""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import write

NAME = "devices"

# (type, major, minor, access): mknod of anything, then the standard nodes.
DEFAULT_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),    # /dev/null
    ("c", 1, 8, "rwm"),    # /dev/random
    ("c", 1, 7, "rwm"),    # /dev/full
    ("c", 5, 0, "rwm"),    # /dev/tty
    ("c", 1, 5, "rwm"),    # /dev/zero
    ("c", 1, 9, "rwm"),    # /dev/urandom
    ("c", 5, 1, "rwm"),    # /dev/console
    ("c", 136, None, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),    # /dev/ptmx
)


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
    return kind, access


def lines(rules: list[dict] | None) -> list[tuple[str, str]]:
    """(file, line) writes for the spec's rules plus the defaults, in order (pure)."""
    out: list[tuple[str, str]] = [("devices.deny", "a")]
    for i, r in enumerate(rules or []):
        kind, access = check_rule(r, i)
        target = "devices.allow" if r.get("allow") else "devices.deny"
        if kind == "a":
            out.append((target, "a"))  # all devices; resets the exception list
        else:
            out.append((target, rule_line(kind, r.get("major"), r.get("minor"), access)))
    out.extend(("devices.allow", rule_line(*d)) for d in DEFAULT_ALLOWED)
    return out


def apply(path: str, resources: dict) -> list[str]:
    for name, line in lines(resources.get("devices")):
        write(path, name, line)
    return []
