"""Namespace order and flags, with a recorder in place of the kernel."""

from __future__ import annotations

from intermodal.runtime import namespaces
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import IdMapping, Namespace


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def setns(self, fd: int, nstype: int, path: str | None = None) -> None:
        self.calls.append(("setns", nstype, path))

    def unshare(self, flags: int) -> None:
        self.calls.append(("unshare", flags))


def test_order_is_user_first_mount_last():
    given = [Namespace(t) for t in ("mount", "pid", "network", "user", "cgroup", "uts", "ipc")]
    assert [ns.type for ns in namespaces.ordered(given)] == [
        "user", "ipc", "uts", "network", "pid", "cgroup", "mount"]


def test_joins_first_then_new_user_then_the_rest_at_once(tmp_path):
    paths = {}
    for name in ("net", "ipc"):
        paths[name] = str(tmp_path / name)
        (tmp_path / name).write_text("")
    given = (Namespace("mount"), Namespace("network", paths["net"]), Namespace("user"), Namespace("pid"),
             Namespace("ipc", paths["ipc"]), Namespace("uts"))
    rec = Recorder()
    namespaces.enter(given, after_user=lambda: rec.calls.append(("maps written",)), sc=rec)
    assert rec.calls == [
        ("setns", S.CLONE_NEWIPC, paths["ipc"]),
        ("setns", S.CLONE_NEWNET, paths["net"]),
        ("unshare", S.CLONE_NEWUSER),
        ("maps written",),
        ("unshare", S.CLONE_NEWNS | S.CLONE_NEWPID | S.CLONE_NEWUTS),
    ]


def test_nothing_to_create_means_no_unshare():
    rec = Recorder()
    namespaces.enter((), sc=rec)
    assert rec.calls == []


def test_container_namespaces_are_proc_paths():
    got = namespaces.container_namespaces(42, ["network", "mount", "pid"])
    assert [(ns.type, ns.path) for ns in got] == [
        ("network", "/proc/42/ns/net"), ("mount", "/proc/42/ns/mnt"), ("pid", "/proc/42/ns/pid")]


def test_id_map_text_is_one_line_per_mapping():
    text = namespaces._map_text((IdMapping(0, 100000, 1), IdMapping(1, 200000, 65535)))
    assert text == b"0 100000 1\n1 200000 65535\n"
