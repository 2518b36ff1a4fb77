"""Namespaces: a container sees its own processes, hostname, and no capability to escape."""

from __future__ import annotations

import os

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def test_no_host_process_is_visible(busybox_bundle, created):
    out = created.run(busybox_bundle.sh("ls /proc | grep -E '^[0-9]+$'; echo self=$$")).stdout.split()
    assert out[-1] == "self=1"
    assert set(out[:-1]) <= {"1", "2", "3", "4", "5"}  # the shell, ls, grep (pids of the new namespace)
    assert str(os.getpid()) not in out[:-1] or os.getpid() < 6


def test_hostname_and_domainname(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c.update(hostname="box1", domainname="example.test"))
    result = created.run(busybox_bundle.sh("hostname; cat /proc/sys/kernel/domainname"))
    assert result.stdout.split() == ["box1", "example.test"]
    assert os.uname().nodename != "box1"


def test_mount_is_refused_without_cap_sys_admin(busybox_bundle, created):
    result = created.run(busybox_bundle.sh("mkdir -p /mnt && mount -t tmpfs none /mnt; echo rc=$?"))
    assert "rc=0" not in result.stdout and "rc=" in result.stdout
    assert "denied" in result.stderr or "not permitted" in result.stderr


def test_module_loading_is_refused(busybox_bundle, created):
    # The module file does not need to exist: without CAP_SYS_MODULE init_module/finit_module fail with EPERM first.
    (busybox_bundle.rootfs / "tmp" / "x.ko").write_bytes(b"\x7fELF not a module")
    result = created.run(busybox_bundle.sh("insmod /tmp/x.ko; echo rc=$?; grep CapEff /proc/self/status"))
    assert "rc=0" not in result.stdout
    cap_eff = int(result.stdout.split("CapEff:")[1].split()[0], 16)
    assert not cap_eff & (1 << 16) and not cap_eff & (1 << 21)  # CAP_SYS_MODULE, CAP_SYS_ADMIN


def test_network_namespace_has_only_loopback(busybox_bundle, created):
    out = created.run(busybox_bundle.sh("ls /sys/class/net")).stdout.split()
    assert out == ["lo"]


def test_loopback_of_a_new_network_namespace_is_up(busybox_bundle, created):
    # as runc does: 127.0.0.1 answers inside --network none
    result = created.run(busybox_bundle.sh("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; "
                                           "ping -c 1 -W 2 127.0.0.1 >/dev/null; echo ping=$?"))
    state, flags, ping = result.stdout.split()
    assert int(flags, 16) & 0x1, f"lo is down ({state})"
    assert ping == "ping=0"


def test_ipc_namespace_is_new(busybox_bundle, created):
    out = created.run(busybox_bundle.sh("readlink /proc/self/ns/ipc")).stdout.strip()
    assert out and out != os.readlink("/proc/self/ns/ipc")
