"""Mount option parsing and safe destinations (pure logic and a temporary directory)."""

from __future__ import annotations

import os

import pytest

from intermodal.runtime import mounts
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import Mount


@pytest.mark.parametrize(("options", "flags", "propagation", "data"), [
    ((), 0, 0, ""),
    (("ro", "nosuid", "nodev", "noexec"), S.MS_RDONLY | S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC, 0, ""),
    (("ro", "rw"), 0, 0, ""),
    (("rbind", "rprivate"), S.MS_BIND | S.MS_REC, S.MS_PRIVATE | S.MS_REC, ""),
    (("bind", "rslave"), S.MS_BIND, S.MS_SLAVE | S.MS_REC, ""),
    (("nosuid", "mode=755", "size=65536k"), S.MS_NOSUID, 0, "mode=755,size=65536k"),
    (("newinstance", "ptmxmode=0666", "gid=5"), 0, 0, "newinstance,ptmxmode=0666,gid=5"),
    (("strictatime", "relatime", "norelatime"), S.MS_STRICTATIME, 0, ""),
    (("tmpcopyup", "Z", "nosuid"), S.MS_NOSUID, 0, ""),
])
def test_parse_options(options, flags, propagation, data):
    parsed = mounts.parse_options(options)
    assert (parsed.flags, parsed.propagation, parsed.data) == (flags, propagation, data)


@pytest.mark.parametrize(("mount", "expected"), [
    (Mount("/a", "bind", "/x"), True), (Mount("/a", None, "/x", ("rbind",)), True),
    (Mount("/a", "none", "/x", ("bind", "ro")), True), (Mount("/a", "tmpfs", "tmpfs"), False),
])
def test_is_bind(mount, expected):
    assert mounts.is_bind(mount) is expected


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "real").mkdir()
    os.symlink("/real", r / "abs")  # absolute: means ROOT/real, never the host's /real
    os.symlink("../../../../..", r / "up")  # climbing out stops at ROOT
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("etc", r / "rel")
    return str(r)


@pytest.mark.parametrize(("unsafe", "inside"), [
    ("/etc/passwd", "etc/passwd"), ("/abs/x", "real/x"), ("/up/etc", "etc"), ("/../../etc", "etc"),
    ("/rel/hosts", "etc/hosts"), ("/missing/deeper", "missing/deeper"), ("/./etc/./x", "etc/x"), ("/", ""),
])
def test_secure_join_stays_inside(root, unsafe, inside):
    assert mounts.secure_join(root, unsafe) == os.path.join(root, inside) if inside else root


def test_secure_join_refuses_symlink_loops(root):
    with pytest.raises(Exception, match="Too many levels"):
        mounts.secure_join(root, "/loop1/x")


def test_ensure_target_makes_files_and_directories(tmp_path):
    mounts.ensure_target(str(tmp_path / "d" / "e"), True)
    mounts.ensure_target(str(tmp_path / "f" / "file"), False)
    assert (tmp_path / "d" / "e").is_dir() and (tmp_path / "f" / "file").is_file()
