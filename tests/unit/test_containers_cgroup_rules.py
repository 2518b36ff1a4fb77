"""`--device-cgroup-rule` (Docker's syntax, the kernel's devices.allow lines) and the OCI rules made of it."""

from __future__ import annotations

import pytest

from intermodal.containers import config
from intermodal.containers.devices import cgroup_rules, parse_cgroup_rule
from intermodal.containers.spec import ContainerSpec
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


# -- the option end to end: spec, OCI config, CLI, planner ---------------------------------------------


def test_the_spec_normalises_rules_once_each_in_order_and_keeps_them_through_json():
    spec = ContainerSpec.build("busybox", device_cgroup_rules=["b 7:0 wr", "c 01:3 r", "b 7:0 rw"])
    assert spec.device_cgroup_rules == ("b 7:0 rw", "c 1:3 r")
    assert ContainerSpec.build("busybox", device_cgroup_rules="c 1:3 r").device_cgroup_rules == ("c 1:3 r",)
    assert ContainerSpec.from_json(spec.to_json()) == spec
    old = ContainerSpec.build("busybox").to_json()
    del old["device_cgroup_rules"]  # a container stored before the option existed
    assert ContainerSpec.from_json(old).device_cgroup_rules == ()


def test_a_bad_rule_is_refused_naming_it():
    with pytest.raises(InvalidArgument, match=r"'c 1:3 rwx'.*e\.g\. 'c 1:3 rwm'"):
        ContainerSpec.build("busybox", device_cgroup_rules=["b 7:0 r", "c 1:3 rwx"])


def test_rules_follow_the_defaults_and_the_device_rules_as_moby():
    spec = ContainerSpec.build("busybox", devices=["/dev/null:/dev/n:r"], device_cgroup_rules=["b 7:* rw", "a *:* m"])
    rules = config.resources(spec)["devices"]
    defaults = [dict(r) for r in config.DEVICE_RULES]
    assert rules == [*defaults, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
                     {"allow": True, "type": "b", "major": 7, "access": "rw"},
                     {"allow": True, "type": "a", "access": "m"}]


def test_privileged_allows_everything_and_no_rule_is_added():
    spec = ContainerSpec.build("busybox", privileged=True, device_cgroup_rules=["b 7:0 r"])
    assert config.resources(spec)["devices"] == [{"allow": True, "access": "rwm"}]


@pytest.mark.parametrize("verb", ["run", "create"])
def test_the_flag_appends_for_run_and_create(verb):
    from intermodal.cli import containers as cli
    from intermodal.cli.parser import Parser

    parser = Parser(prog="imod")
    getattr(cli, verb).configure(parser)
    args = parser.parse_args(["--device-cgroup-rule", "b 7:0 r", "--device-cgroup-rule=c 10:* rwm", "busybox"])
    assert cli._spec(args).device_cgroup_rules == ("b 7:0 r", "c 10:* rwm")


def test_the_planner_compares_the_rules_as_a_set_and_recreates_on_a_change():
    from intermodal.declare import container

    image = {"config": {"Cmd": ["sh"]}}

    def plan(declared: list[str], stored: list[str]):
        current = container.Current("c" * 64, ContainerSpec.build("busybox", name="c1", device_cgroup_rules=stored),
                                    "sha256:" + "a" * 64, image, "running")
        declaration = container.declare({"name": "c1", "image": "busybox", "device_cgroup_rules": declared})
        return container.plan(declaration, current, image_id="sha256:" + "a" * 64, image_config=image)

    assert plan(["c 1:3 wr", "b 8:* r"], ["b 8:* r", "c 1:3 rw"]).actions == ()
    changed = plan(["c 1:3 r"], ["c 1:3 rw"])
    assert changed.actions == ("recreate", "start")
    assert list(changed.differences) == [
        ("device_cgroup_rules", frozenset({"c 1:3 r"}), frozenset({"c 1:3 rw"}))]
    assert plan([], ["c 1:3 rw"]).actions == ("recreate", "start")  # dropped from the declaration


def test_the_planner_refuses_a_bad_rule_naming_it():
    from intermodal.declare import container

    with pytest.raises(InvalidArgument, match="'b 8 r'"):
        container.declare({"name": "c1", "image": "busybox", "device_cgroup_rules": ["b 8 r"]})
