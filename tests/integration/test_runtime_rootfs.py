"""The root filesystem: read-only root, masked and read-only paths, mounts with options, devices."""

from __future__ import annotations

import os

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def test_readonly_rootfs_refuses_writes(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["root"].__setitem__("readonly", True))
    result = created.run(busybox_bundle.sh("touch /newfile; echo rc=$?; touch /dev/shm/ok && echo shm-ok"))
    assert "rc=1" in result.stdout and "Read-only file system" in result.stderr
    assert "shm-ok" in result.stdout  # mounts on top stay writable
    assert not (busybox_bundle.rootfs / "newfile").exists()


def test_masked_paths_are_empty(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"]["maskedPaths"].append("/proc/cpuinfo"))
    script = ("wc -c < /proc/keys; wc -c < /proc/cpuinfo; ls /sys/firmware | wc -l; "
              "if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo absent; fi")
    out = created.run(busybox_bundle.sh(script)).stdout.split()
    assert out[:3] == ["0", "0", "0"]
    # This machine's kernel may be built without /proc/kcore; where it exists it must read as empty.
    assert out[3] == ("0" if os.path.exists("/proc/kcore") else "absent")
    assert os.path.getsize("/proc/keys") > 0 or os.path.exists("/proc/keys")


def test_readonly_paths_refuse_writes(busybox_bundle, created):
    script = ("echo 1 > /proc/sys/vm/drop_caches; echo rc=$?; "
              "if [ -e /proc/sysrq-trigger ]; then echo h > /proc/sysrq-trigger; echo sysrq=$?; fi; "
              "grep -E ' /proc/(sys|sysrq-trigger) ' /proc/self/mounts")
    result = created.run(busybox_bundle.sh(script))
    assert "rc=1" in result.stdout and "sysrq=0" not in result.stdout
    assert result.stdout.count(" ro,") == 1 + os.path.exists("/proc/sysrq-trigger")


def test_pivot_root_hides_the_host(busybox_bundle, created):
    out = created.run(busybox_bundle.sh("ls /; cat /proc/self/mountinfo")).stdout
    assert "bin" in out.split() and "work" not in out.split()
    assert "/tmp/imod-rt" not in out.split("\n", 1)[0]


def test_bind_mount_readonly_with_options(busybox_bundle, created, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "hello").write_text("from the host\n")
    busybox_bundle.mutate(lambda c: c["mounts"].append(
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro", "nosuid", "nodev"]}))
    script = "cat /data/hello; touch /data/x; echo rc=$?; grep ' /data ' /proc/self/mounts"
    result = created.run(busybox_bundle.sh(script))
    assert result.stdout.startswith("from the host\nrc=1\n")
    options = result.stdout.split()[-3].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(options)


def test_tmpfs_mount_with_size_and_mode(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["mounts"].append(
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec"]}))
    out = created.run(busybox_bundle.sh("stat -c %a /scratch; grep ' /scratch ' /proc/self/mounts")).stdout
    assert out.startswith("1777\n") and "noexec" in out and "size=1024k" in out


def test_default_devices_and_dev_links(busybox_bundle, created):
    script = ("for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; "
              "readlink /dev/fd; readlink /dev/ptmx")
    lines = created.run(busybox_bundle.sh(script)).stdout.splitlines()
    assert lines[:6] == ["/dev/null character special file 1:3", "/dev/zero character special file 1:5",
                         "/dev/full character special file 1:7", "/dev/random character special file 1:8",
                         "/dev/urandom character special file 1:9", "/dev/tty character special file 5:0"]
    assert lines[6:] == ["/proc/self/fd", "pts/ptmx"]


def test_extra_device_from_config(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("devices", [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0}]))
    out = created.run(busybox_bundle.sh("stat -c '%a %t:%T' /dev/mynull; echo hi > /dev/mynull && echo ok")).stdout
    assert out.split("\n")[:2] == ["600 1:3", "ok"]


def test_symlink_destination_cannot_escape_the_rootfs(busybox_bundle, created, tmp_path):
    (busybox_bundle.rootfs / "escape").symlink_to("/../../../../tmp/outside")
    busybox_bundle.mutate(lambda c: c["mounts"].append(
        {"destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": []}))
    created.run(busybox_bundle.sh("touch /escape/file"))
    assert not os.path.exists("/tmp/outside")
    assert (busybox_bundle.rootfs / "tmp" / "outside").is_dir()
