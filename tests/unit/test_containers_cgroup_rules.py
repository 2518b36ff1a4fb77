"""`--device-cgroup-rule` (Docker's syntax, the kernel's devices.allow lines) and the OCI rules made of it."""

from __future__ import annotations

import pytest

from intermodal.containers.devices import cgroup_rules, parse_cgroup_rule
from intermodal.errors import InvalidArgument
from intermodal.runtime.cgroups.v1 import devices as v1


@pytest.mark.parametrize(("text", "normal", "rule"), [
    ("c 1:3 rwm", "c 1:3 rwm", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
    ("b 8:* r", "b 8:* r", {"allow": True, "type": "b", "major": 8, "access": "r"}),
    ("c *:* m", "c *:* m", {"allow": True, "type": "c", "access": "m"}),
    ("  c 010:200   wr ", "c 10:200 rw", {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}),
    ("a *:* rwm", "a *:* rwm", {"allow": True, "type": "a", "access": "rwm"}),
])
def test_rules_normalise_and_become_oci_allow_rules(text, normal, rule):
    assert parse_cgroup_rule(text) == normal
    assert cgroup_rules((normal,)) == [rule]
    v1.check_rule(rule, 0)  # what the runtime accepts


def test_the_runtime_writes_the_rule_as_given():
    rules = [{"allow": False, "access": "rwm"}, *cgroup_rules((parse_cgroup_rule("b 7:* rw"),))]
    assert ("devices.allow", "b 7:* rw") in v1.lines(rules)


@pytest.mark.parametrize("text", ["", "c 1:3", "c 1 rwm", "x 1:3 r", "c 1:3 rwx", "c 1:3 rr", "c -1:3 r",
                                  "c 1:3:4 r", "a 1:3 r", "c 1:3 rwm extra"])
def test_bad_rules_are_refused_with_the_syntax(text):
    with pytest.raises(InvalidArgument, match="TYPE MAJOR:MINOR PERMISSIONS"):
        parse_cgroup_rule(text)
