"""linux.seccomp applied to the container's process (loaded last, right before exec)."""

from __future__ import annotations

import pytest

from intermodal.runtime import seccomp
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}


@pytest.mark.parametrize("nnp", [True, False], ids=["noNewPrivileges", "privileged-load"])
def test_profile_applies_to_the_process(busybox_bundle, created, nnp):
    busybox_bundle.mutate(lambda c: (c["linux"].__setitem__("seccomp", DENY_MKDIR),
                                     c["process"].__setitem__("noNewPrivileges", nnp)))
    result = created.run(busybox_bundle.sh("mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touched; "
                                           "grep Seccomp: /proc/self/status"))
    assert "rc=1" in result.stdout and "Permission denied" in result.stderr
    assert "touched" in result.stdout and "Seccomp:\t2" in result.stdout


def test_default_profile_runs_a_shell_and_blocks_unshare(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("seccomp", seccomp.default_profile()))
    result = created.run(busybox_bundle.sh("echo ok; unshare -U true; echo rc=$?"))
    assert result.stdout.startswith("ok\n") and "rc=0" not in result.stdout
