"""Host devices: `--device HOST[:CONTAINER][:PERMS]`, and every host device under `--privileged`, as Docker."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "busybox"), pytest.mark.usefixtures("clean_containers")]

LOOP = "/dev/loop0"  # a block device no container gets by default


@pytest.fixture
def loop_device():
    if not os.path.exists(LOOP):
        pytest.skip(f"{LOOP} is not on this host")
    return os.stat(LOOP)


def test_device_appears_under_its_container_path(imod, busybox_image, loop_device):
    out = imod("run", "--rm", "--network", "none", "--device", f"{LOOP}:/dev/disk0", busybox_image,
               "stat", "-c", "%F %t:%T %a", "/dev/disk0")
    expected = f"block special file {os.major(loop_device.st_rdev):x}:{os.minor(loop_device.st_rdev):x} " \
               f"{loop_device.st_mode & 0o777:o}"
    assert out.stdout.decode().strip() == expected
    out = imod("run", "--rm", "--network", "none", busybox_image, "ls", LOOP, check=False)
    assert out.returncode == 1  # not without --device
    imod("create", "--name", "shown", "--network", "none", "--device", f"{LOOP}:/dev/disk0:r", busybox_image)
    devices = json.loads(imod("container", "inspect", "shown").stdout)[0]["HostConfig"]["Devices"]
    assert devices == [{"PathOnHost": LOOP, "PathInContainer": "/dev/disk0", "CgroupPermissions": "r"}]


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")
def test_device_permissions_go_to_the_device_cgroup(imod, busybox_image, loop_device):
    """With runc, which applies the permissions as given (read only here); intermodal's runtime allows
    the devices of linux.devices fully."""
    out = imod("run", "--rm", "--network", "none", "--runtime", "runc", "--device", f"{LOOP}:{LOOP}:r",
               busybox_image, "sh", "-c", f"dd if={LOOP} of=/dev/null count=0 && echo read; "
               f"echo x > {LOOP} || echo refused", check=False)
    assert out.stdout == b"read\nrefused\n" and b"Operation not permitted" in out.stderr


def test_privileged_gets_every_host_device_but_the_container_own_ones(imod, busybox_image, loop_device):
    out = imod("run", "--rm", "--network", "none", "--privileged", busybox_image, "sh", "-c",
               f"test -b {LOOP} && echo block; readlink /dev/ptmx")
    lines = out.stdout.decode().split()
    assert lines[:2] == ["block", "pts/ptmx"]  # the host's ptmx would open the host's terminals


@pytest.mark.parametrize("value, words", [("/etc/passwd", b"not a character or block device"),
                                          ("/dev/nonexistent", b"No such file"),
                                          ("/dev/fuse:/dev/fuse:rwx", b"permissions"),
                                          ("dev/fuse", b"absolute")])
def test_bad_devices_are_refused(imod, busybox_image, value, words):
    proc = imod("create", "--network", "none", "--device", value, busybox_image, check=False)
    assert proc.returncode == 125 and words in proc.stderr, proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""
