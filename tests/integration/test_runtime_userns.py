"""A user namespace with uid/gid mappings written by the parent."""

from __future__ import annotations

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _userns(config: dict) -> None:
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = MAP
    config["linux"]["gidMappings"] = MAP


def test_root_in_the_container_is_an_unprivileged_host_uid(busybox_bundle, created):
    busybox_bundle.mutate(_userns)
    script = ("id -u; cat /proc/self/uid_map /proc/self/gid_map; stat -c %u /bin/busybox; "
              "touch /tmp/mine; echo x > /etc/hostname; echo rc=$?")
    result = created.run(busybox_bundle.sh(script))
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines[:4] == ["0", "0 100000 65536", "0 100000 65536", "65534"]  # host root is unmapped: nobody
    assert lines[4] == "rc=1"  # container root cannot write a host-root-owned file
    assert (busybox_bundle.rootfs / "tmp" / "mine").stat().st_uid == 100000


def test_non_root_user_inside_a_user_namespace(busybox_bundle, created):
    busybox_bundle.mutate(_userns)
    busybox_bundle.mutate(lambda c: c["process"].update(user={"uid": 1000, "gid": 1000}))
    created.run(busybox_bundle.sh("touch /tmp/u1000"))
    st = (busybox_bundle.rootfs / "tmp" / "u1000").stat()
    assert (st.st_uid, st.st_gid) == (101000, 101000)


def test_exec_joins_the_user_namespace(busybox_bundle, created):
    import tempfile

    from intermodal.runtime.spec import parse_process

    busybox_bundle.mutate(_userns)
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    ctr.start()
    with tempfile.TemporaryFile() as out:
        proc = parse_process({"args": ["sh", "-c", "id -u; cat /proc/self/uid_map"], "env": ["PATH=/bin"]})
        assert ctr.exec(proc, stdio=(0, out.fileno(), out.fileno())) == 0
        out.seek(0)
        lines = [" ".join(line.split()) for line in out.read().decode().splitlines()]
    assert lines == ["0", "0 100000 65536"]
    ctr.delete(force=True)
