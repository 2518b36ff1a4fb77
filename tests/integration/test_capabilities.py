"""Capability sets on the real kernel, each changed in a forked child."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess

import pytest

from intermodal.runtime import capabilities as caps
from tests.support import bundle as _bundle
from tests.support.child import run_in_child

pytestmark = pytest.mark.requires("root")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

# What this process holds (a sandbox may already lack some, e.g. CAP_SYS_RESOURCE).
ALL = caps.mask_names(caps.read_status()["CapBnd"])
SYS_ADMIN = caps.number("CAP_SYS_ADMIN")
BUSYBOX = "/bin/busybox" if os.path.exists("/bin/busybox") else "busybox"


def _mount_tmpfs(target: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", target.encode(), b"tmpfs", 0, None) == 0:
        libc.umount2(target.encode(), 0)
        return 0
    return ctypes.get_errno()


def test_dropping_sys_admin_makes_mount_fail_and_kept_cap_works(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    owned = tmp_path / "owned"
    owned.write_text("x")
    without = [n for n in ALL if n != "CAP_SYS_ADMIN"]
    spec = {"bounding": without, "effective": without, "permitted": without, "inheritable": [], "ambient": []}

    def child():
        caps.apply_bounding(spec)
        caps.apply(spec)
        os.chown(owned, 4321, 4321)  # CAP_CHOWN was kept
        return {"mount": _mount_tmpfs(str(target)), "status": caps.read_status()}

    got = run_in_child(child)
    assert got["mount"] == errno.EPERM
    assert os.stat(owned).st_uid == 4321
    for key in ("CapBnd", "CapEff", "CapPrm"):
        assert not got["status"][key] & (1 << SYS_ADMIN), key
        assert got["status"][key] & (1 << caps.number("CAP_CHOWN")), key
    assert not os.path.ismount(target)


def test_control_mount_works_with_sys_admin(tmp_path):
    """The same mount with the capability kept succeeds (so the test above can fail)."""
    (tmp_path / "m").mkdir()
    spec = {k: ALL for k in ("bounding", "effective", "permitted")}

    def child():
        caps.apply_bounding(spec)
        caps.apply(spec)
        return _mount_tmpfs(str(tmp_path / "m"))

    assert run_in_child(child) == 0


def test_bounding_set_read_back_from_proc():
    keep = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    def child():
        caps.apply_bounding({"bounding": keep})
        return caps.read_status()["CapBnd"]

    assert caps.mask_names(run_in_child(child)) == ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def test_non_root_user_keeps_ambient_cap_across_exec():
    """keepcaps + setuid + ambient: an unprivileged exec'd busybox still has CAP_NET_BIND_SERVICE."""
    spec = {k: ["CAP_NET_BIND_SERVICE"] for k in caps.SETS}

    def preexec():
        caps.apply_bounding(spec)
        caps.keep_caps_for_uid_change()
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        caps.apply(spec)

    proc = subprocess.run([BUSYBOX, "sh", "-c", "id -u; grep ^Cap /proc/self/status"], capture_output=True,
                          timeout=30, preexec_fn=preexec)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split("\n")
    assert lines[0] == "65534"
    status = {k.strip(): int(v, 16) for k, v in (x.split(":") for x in lines[1:] if x)}
    bit = 1 << caps.number("CAP_NET_BIND_SERVICE")
    assert status["CapAmb"] == bit and status["CapEff"] == bit and status["CapPrm"] == bit
    assert status["CapBnd"] == bit


def test_bind_low_port_as_non_root_with_cap():
    spec = {k: ["CAP_NET_BIND_SERVICE"] for k in ("bounding", "effective", "permitted")}

    def child():
        caps.apply_bounding(spec)
        caps.keep_caps_for_uid_change()
        os.setgid(65534)
        os.setuid(65534)
        caps.apply(spec)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 1023))  # bind only, no traffic
        caps.apply({"effective": [], "permitted": []})
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 1022))
            except PermissionError as exc:
                return exc.errno
        return "bound without the capability"

    assert run_in_child(child) == errno.EACCES


def test_ambient_the_kernel_refuses_is_left_out_and_the_rest_raised():
    """runc's rule (`runc spec` lists ambient caps that are not inheritable): raise what the kernel allows."""
    spec = {"bounding": ALL, "effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_CHOWN"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}

    def child():
        return caps.apply(spec), caps.read_status()

    refused, status = run_in_child(child)
    assert refused == ["CAP_KILL"]
    assert caps.mask_names(status["CapAmb"]) == ["CAP_CHOWN"]
    assert caps.mask_names(status["CapPrm"]) == ["CAP_CHOWN", "CAP_KILL"]
    assert caps.warnings(spec) and "CAP_KILL (not in inheritable)" in caps.warnings(spec)[0]


# -- in a real container, through the runtime --------------------------------------------


@pytest.mark.requires("busybox")
def test_container_without_the_caps_cannot_mount_or_load_modules(busybox_bundle, created):
    """Docker's default caps (no CAP_SYS_ADMIN, no CAP_SYS_MODULE), no seccomp: the kernel refuses."""
    assert "CAP_SYS_ADMIN" not in busybox_bundle.config["process"]["capabilities"]["bounding"]
    (busybox_bundle.rootfs / "tmp" / "fake.ko").write_bytes(b"\x7fELF not really a module")
    r = created.run(busybox_bundle.sh(
        "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m; echo mount=$?; insmod /tmp/fake.ko; echo insmod=$?; "
        "grep CapBnd /proc/self/status"))
    assert "mount=1" in r.stdout, r.stderr
    assert "permission denied" in r.stderr  # busybox mount's words for EPERM
    if os.path.exists("/proc/modules"):  # a kernel built without module support says ENOSYS to everyone
        assert "insmod=1" in r.stdout and "Operation not permitted" in r.stderr, r.stderr
    else:
        assert "insmod=1" not in r.stdout
    bnd = int(r.stdout.split("CapBnd:")[1].split()[0], 16)
    assert caps.mask_names(bnd) == sorted(busybox_bundle.config["process"]["capabilities"]["bounding"],
                                          key=caps.number)
