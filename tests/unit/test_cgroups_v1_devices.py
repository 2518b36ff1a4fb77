"""The v1 devices emulator: the state rules end in, devices.list, and the writes between two states."""

from __future__ import annotations

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.v1 import devices as d

DENY_ALL = {"allow": False, "access": "rwm"}
ALLOW_ALL = {"allow": True, "access": "rwm"}
DEFAULTS = {(t, ma, mi): frozenset(a) for t, ma, mi, a in d.DEFAULT_ALLOWED}


def rule(allow: bool, kind: str, major: int | None, minor: int | None, access: str) -> dict:
    return {"allow": allow, "type": kind, "major": major, "minor": minor, "access": access}


@pytest.mark.parametrize(("rules", "allow_all", "extra"), [
    ([], False, {}),
    ([DENY_ALL], False, {}),
    ([DENY_ALL, rule(True, "b", 7, 0, "r")], False, {("b", 7, 0): "r"}),
    ([DENY_ALL, rule(True, "b", 7, 0, "r"), rule(True, "b", 7, 0, "w")], False, {("b", 7, 0): "rw"}),
    ([DENY_ALL, rule(True, "b", 7, 0, "rw"), rule(False, "b", 7, 0, "w")], False, {("b", 7, 0): "r"}),
    ([DENY_ALL, rule(True, "b", 7, 0, "rw"), rule(False, "b", 7, 0, "rwm")], False, {}),
    # A wildcard deny does not reach a narrower exception (the kernel matches keys exactly).
    ([DENY_ALL, rule(True, "b", 7, 0, "r"), rule(False, "b", 7, None, "r")], False, {("b", 7, 0): "r"}),
    ([DENY_ALL, rule(True, "c", 10, 200, "rwm"), DENY_ALL], False, {}),  # a reset drops what came before
    ([rule(True, "b", -1, -1, "r")], False, {("b", None, None): "rm"}),  # -1 is the wildcard; merged with m
])
def test_emulate_default_deny(rules, allow_all, extra):
    assert d.emulate(rules) == (allow_all, {**DEFAULTS, **{k: frozenset(v) for k, v in extra.items()}})


def test_emulate_allow_all_keeps_only_denials():
    # The defaults agree with allow-all: they remove nothing that is there, add nothing.
    assert d.emulate([ALLOW_ALL]) == (True, {})
    assert d.emulate([ALLOW_ALL, rule(False, "c", 1, 11, "w")]) == (True, {("c", 1, 11): frozenset("w")})
    assert d.emulate([ALLOW_ALL, rule(False, "c", 1, 3, "w")]) == (True, {})  # the defaults allow null again


@pytest.mark.parametrize(("text", "state"), [
    ("a *:* rwm\n", None),  # allow-all: its denials are not listed
    ("", (False, {})),
    ("c 1:3 rwm\nc 136:* rwm\nb *:* m\n", (False, {("c", 1, 3): frozenset("rwm"), ("c", 136, None):
                                                   frozenset("rwm"), ("b", None, None): frozenset("m")})),
    ("garbage\n", None),
])
def test_parse_list(text, state):
    assert d.parse_list(text) == state


def test_new_cgroup_gets_deny_all_first_then_the_allows():
    out = d.lines([DENY_ALL, rule(True, "b", 7, 0, "r")], None)
    assert out[0] == ("devices.deny", "a")
    assert sorted(out[1:]) == sorted([("devices.allow", "b 7:0 r")] +
                                     [("devices.allow", d.rule_line(*x)) for x in d.DEFAULT_ALLOWED])
    assert d.lines([], d.parse_list("a *:* rwm")) == d.lines([], None)


def test_allow_all_target_resets_then_denies():
    assert d.lines([ALLOW_ALL, rule(False, "c", 1, 11, "w")], (False, dict(DEFAULTS))) == \
        [("devices.allow", "a"), ("devices.deny", "c 1:11 w")]


def test_update_changes_only_what_differs_and_adds_before_it_removes():
    """A running container never loses /dev/null while its rules change: no reset, no default rewritten."""
    current = d.emulate([DENY_ALL, rule(True, "b", 7, 0, "rwm"), rule(True, "b", 7, 1, "r")])
    wanted = [DENY_ALL, rule(True, "b", 7, 0, "r"), rule(True, "b", 7, 2, "rw")]
    assert d.lines(wanted, current) == [("devices.allow", "b 7:2 rw"), ("devices.deny", "b 7:0 wm"),
                                        ("devices.deny", "b 7:1 r")]
    assert d.lines(wanted, d.emulate(wanted)) == []


def test_transition_reaches_the_target():
    """Applying the writes to the current state, as the kernel does, gives exactly the target."""
    current = d.emulate([DENY_ALL, rule(True, "c", 10, 200, "rwm"), rule(True, "b", 8, None, "r")])
    wanted = [DENY_ALL, rule(True, "c", 10, 200, "r"), rule(True, "b", 8, 1, "rw")]
    state = dict(current[1])
    for name, line in d.lines(wanted, current):
        kind, numbers, access = line.split()
        major, minor = (None if n == "*" else int(n) for n in numbers.split(":"))
        key, have = (kind, major, minor), state.get((kind, major, minor), frozenset())
        now = have | set(access) if name == "devices.allow" else have - set(access)
        state.pop(key, None)
        if now:
            state[key] = frozenset(now)
    assert (False, state) == d.emulate(wanted)


@pytest.mark.parametrize("bad", [{"type": "x"}, {"type": "c", "access": "rwx"}, {"type": "c", "major": "1"},
                                 {"type": "b", "minor": 1.5}])
def test_bad_rules_name_their_index(bad):
    with pytest.raises(InvalidSpec, match=r"devices\[1\]"):
        d.emulate([DENY_ALL, bad])


def test_a_list_that_did_not_become_the_target_refuses_the_container(tmp_path):
    """As runc: after the writes the kernel's list is read back; here a plain file keeps the old list."""
    from intermodal.errors import KernelError

    for name, text in (("devices.allow", ""), ("devices.deny", ""), ("devices.list", "a *:* rwm\n")):
        (tmp_path / name).write_text(text)
    with pytest.raises(KernelError, match=r"kept other rules than asked for \(a \*:\* rwm"):
        d.apply(str(tmp_path), {"devices": [DENY_ALL]})
    (tmp_path / "devices.list").write_text("a *:* rwm\n")
    d.apply(str(tmp_path), {"devices": [ALLOW_ALL]})  # allow-all is what it lists
