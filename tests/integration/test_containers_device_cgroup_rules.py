"""`imod run --device-cgroup-rule` on the real kernel: a rule without a node governs the nodes the container
makes itself (mknod is allowed for every device by default; opening the node is what the rule decides).

The block device 7:0 (/dev/loop0) is in no default rule, so whatever the container may do with its own
node of it comes from the rule alone; read and write are probed at open(2) without moving a byte.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root"), pytest.mark.usefixtures("clean_containers", "loop_device")]

LOOP = "/dev/loop0"
MAKE_AND_PROBE = ("mknod /tmp/mine b 7 0 && echo made; "
                  "dd if=/tmp/mine of=/dev/null bs=1 count=0 2>/dev/null && echo read-ok || echo read-denied; "
                  "(: > /tmp/mine) 2>/dev/null && echo write-ok || echo write-denied")
RUNTIMES = [
    pytest.param("imod-runtime"),
    pytest.param("runc", marks=pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")),
]


@pytest.fixture
def loop_device() -> None:
    if not os.path.exists(LOOP):
        pytest.skip(f"{LOOP} is not on this host")
    st = os.stat(LOOP)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 0)


def _run(imod, image: str, runtime: str, *flags: str) -> list[str]:
    out = imod("run", "--rm", "--network", "none", "--runtime", runtime, *flags, image, "sh", "-c", MAKE_AND_PROBE)
    return out.stdout.decode().split()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("rules", "expected"), [
    ((), ["made", "read-denied", "write-denied"]),  # the control: no rule, no access
    (("b 7:0 r",), ["made", "read-ok", "write-denied"]),
    (("b 7:* w",), ["made", "read-denied", "write-ok"]),  # any minor of major 7
    (("c 7:0 rw", "b 7:0 r"), ["made", "read-ok", "write-denied"]),  # the char rule does not touch b 7:0
    (("a *:* rw",), ["made", "read-ok", "write-ok"]),
])
def test_the_rule_decides_what_the_container_may_do_with_its_own_node(imod, busybox_image, runtime, rules,
                                                                      expected):
    flags = [arg for rule in rules for arg in ("--device-cgroup-rule", rule)]
    assert _run(imod, busybox_image, runtime, *flags) == expected


def test_privileged_ignores_the_rules_and_allows_every_device(imod, busybox_image):
    got = _run(imod, busybox_image, "imod-runtime", "--privileged", "--device-cgroup-rule", "b 7:0 r")
    assert got == ["made", "read-ok", "write-ok"]


def test_create_stores_the_rules_and_inspect_shows_them(imod, busybox_image):
    imod("create", "--name", "rules", "--network", "none", "--device-cgroup-rule", "b 07:0 wr",
         "--device-cgroup-rule", "c 10:* m", busybox_image, "true")
    (info,) = json.loads(imod("inspect", "rules").stdout)
    assert info["HostConfig"]["DeviceCgroupRules"] == ["b 7:0 rw", "c 10:* m"]
    imod("create", "--name", "plain", "--network", "none", busybox_image, "true")
    (info,) = json.loads(imod("inspect", "plain").stdout)
    assert info["HostConfig"]["DeviceCgroupRules"] is None  # as Docker shows a container without rules


def test_a_bad_rule_is_refused_naming_it_and_nothing_is_created(imod, busybox_image):
    proc = imod("run", "--name", "bad", "--network", "none", "--device-cgroup-rule", "b 7:0 r",
                "--device-cgroup-rule", "b 7:0 x", busybox_image, "true", check=False)
    assert proc.returncode != 0
    assert "invalid --device-cgroup-rule 'b 7:0 x'" in proc.stderr.decode()
    assert imod("ps", "-a", "-q").stdout.decode().split() == []
