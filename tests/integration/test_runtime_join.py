"""Joining an existing namespace by path (linux.namespaces[].path)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def test_second_container_joins_the_first_ones_namespaces(busybox_bundle, busybox_rootfs, created):
    busybox_bundle.mutate(lambda c: c.update(hostname="first"))
    first = created.create(busybox_bundle.args("sleep", "30"))
    first.start()
    pid = first.record().pid
    net, pidns = os.readlink(f"/proc/{pid}/ns/net"), os.readlink(f"/proc/{pid}/ns/pid")
    second = _bundle.make_bundle(busybox_rootfs)
    try:
        def join(config: dict) -> None:
            config.pop("hostname")
            for ns in config["linux"]["namespaces"]:
                if ns["type"] in ("uts", "network", "ipc"):
                    ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else ns['type']}"

        second.mutate(join)
        out = created.run(second.sh("hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/pid")).stdout.split()
    finally:
        first.delete(force=True)
        shutil.rmtree(second.path, ignore_errors=True)
    assert out[0] == "first"
    assert out[1] == net
    assert out[2] != pidns  # not joined: a pid namespace of its own


def test_joining_a_missing_namespace_path_is_refused(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"]["namespaces"].__setitem__(0, {"type": "pid", "path": "/nonexistent"}))
    with pytest.raises(Exception, match=r"linux\.namespaces\[0\]\.path"):
        created.create(busybox_bundle)
