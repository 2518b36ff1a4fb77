"""The order of the rootfs steps, with a recorder in place of mount(2) and pivot_root(2)."""

from __future__ import annotations

import os

import pytest

from intermodal.runtime import rootfs
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import default_config, parse


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mount(self, source, target, fstype, flags=0, data=None) -> None:
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount2(self, target, flags=0) -> None:
        self.calls.append(("umount2", target, flags))

    def pivot_root(self, new_root, put_old) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def mknod(self, path, mode, device) -> None:
        self.calls.append(("mknod", path))
        open(path, "w").close()  # a stand-in node so the following chown has a file


@pytest.fixture
def keep_cwd():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_pivot_detaches_the_old_root(tmp_path, keep_cwd):
    rec = Recorder()
    rootfs.pivot(str(tmp_path), sc=rec)
    assert rec.calls == [("pivot_root", ".", "."), ("mount", None, ".", None, S.MS_SLAVE | S.MS_REC, None),
                         ("umount2", ".", S.MNT_DETACH)]
    assert os.getcwd() == "/"


def test_mask_uses_tmpfs_for_directories_and_dev_null_for_files(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("secret")
    rec = Recorder()
    for name in ("dir", "file", "missing"):
        rootfs.mask(str(tmp_path / name), sc=rec)
    assert rec.calls == [("mount", "tmpfs", str(tmp_path / "dir"), "tmpfs", S.MS_RDONLY, None),
                         ("mount", "/dev/null", str(tmp_path / "file"), None, S.MS_BIND, None)]


def test_readonly_path_is_bound_then_remounted(tmp_path):
    rec = Recorder()
    rootfs.readonly(str(tmp_path), userns=False, sc=rec)
    rootfs.readonly(str(tmp_path / "missing"), userns=False, sc=rec)
    assert rec.calls == [("mount", str(tmp_path), str(tmp_path), None, S.MS_BIND | S.MS_REC, None),
                         ("mount", None, str(tmp_path), None,
                          S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | S.MS_REC, None)]


def test_finish_makes_the_root_readonly_last(monkeypatch):
    spec = parse(default_config())
    rec = Recorder()
    monkeypatch.setattr(rootfs, "mask", lambda path, sc: rec.calls.append(("mask", path)))
    monkeypatch.setattr(rootfs, "readonly", lambda path, userns, sc: rec.calls.append(("readonly", path)))
    rootfs.finish(spec, userns=False, sc=rec)
    assert rec.calls[0] == ("mask", "/proc/asound") and ("readonly", "/proc/sys") in rec.calls
    assert rec.calls[-1] == ("mount", None, "/", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY, None)


@pytest.mark.parametrize(("value", "flags"), [
    (None, S.MS_SLAVE | S.MS_REC), ("private", S.MS_PRIVATE), ("rshared", S.MS_SHARED | S.MS_REC),
    ("slave", S.MS_SLAVE)])
def test_propagation_flags(value, flags):
    assert rootfs.propagation_flags(value) == flags


def test_prepare_starts_with_propagation_and_the_rootfs_bind(tmp_path, monkeypatch):
    config = default_config()
    config["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    spec = parse(config)
    root = tmp_path / "rootfs"
    root.mkdir()
    rec = Recorder()
    monkeypatch.setattr(rootfs, "dev_symlinks", lambda r: None)
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: None)  # runs without root too
    rootfs.prepare(spec, str(tmp_path), str(root), userns=False, sc=rec)
    assert rec.calls[0] == ("mount", None, "/", None, S.MS_SLAVE | S.MS_REC, None)
    assert rec.calls[1] == ("mount", str(root), str(root), None, S.MS_BIND | S.MS_REC, None)
    assert rec.calls[2] == ("mount", "proc", str(root / "proc"), "proc", 0, None)
    assert [c[1] for c in rec.calls[3:]] == [str(root / "dev" / n) for n in
                                              ("null", "zero", "full", "random", "urandom", "tty")]
