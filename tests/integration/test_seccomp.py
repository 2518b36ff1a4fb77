"""seccomp filters on the real kernel, each loaded in a forked child."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess

import pytest

from intermodal.runtime import seccomp
from tests.support import bundle as _bundle
from tests.support.child import run_in_child

pytestmark = pytest.mark.requires("root")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

SYS_keyctl, SYS_unshare, SYS_clone, SYS_clone3, SYS_mount = 250, 272, 56, 435, 165
CLONE_NEWUTS, CLONE_NEWUSER, SIGCHLD = 0x04000000, 0x10000000, 17
X86_64 = os.uname().machine == "x86_64"
needs_x86_64 = pytest.mark.skipif(not X86_64, reason="raw syscall numbers here are x86_64's")

ALLOW_ALL_BUT_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] if X86_64 else [],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
}


def _syscall(nr: int, *args: int) -> int:
    """Raw syscall; returns -errno on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args))
    return -ctypes.get_errno() if rc == -1 else rc


def _prepared_loader(profile):
    prepared = seccomp.prepare(profile)  # in the parent, as the runtime would before fork
    return lambda _profile: seccomp.load_prepared(prepared)


LOADERS = pytest.mark.parametrize("loader", ["load", "prepared"])


def _loader(kind: str, profile: dict):
    return seccomp.load if kind == "load" else _prepared_loader(profile)


@LOADERS
def test_profile_denies_mkdir_with_eperm(tmp_path, loader):
    load = _loader(loader, ALLOW_ALL_BUT_MKDIR)

    def child():
        load(ALLOW_ALL_BUT_MKDIR)
        (tmp_path / "file").write_text("still works")
        try:
            os.mkdir(tmp_path / "dir")
        except OSError as exc:
            return exc.errno
        return "mkdir succeeded"

    assert run_in_child(child) == errno.EPERM
    assert (tmp_path / "file").read_text() == "still works"
    assert not (tmp_path / "dir").exists()


def test_errno_ret_and_no_new_privs_order(tmp_path):
    profile = {**ALLOW_ALL_BUT_MKDIR,
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS}]}

    def child():
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS, as init does with noNewPrivileges
        seccomp.load(profile)
        try:
            os.mkdir(tmp_path / "dir")
        except OSError as exc:
            return exc.errno
        return "mkdir succeeded"

    assert run_in_child(child) == errno.EROFS


@needs_x86_64
@LOADERS
def test_default_profile_without_sys_admin_denies_kernel_surfaces(tmp_path, loader):
    load = _loader(loader, seccomp.default_profile())

    def child():
        load(seccomp.default_profile())  # Docker's default capabilities: no CAP_SYS_ADMIN
        return {
            "keyctl": _syscall(SYS_keyctl, 0, 0, 0, 0, 0),
            "unshare_user": _syscall(SYS_unshare, CLONE_NEWUSER),
            "mount": _syscall(SYS_mount, 0, 0, 0, 0, 0),
            "getpid_ok": os.getpid() > 0,
            "write_ok": (tmp_path / "ok").write_text("x") == 1,
        }

    got = run_in_child(child)
    assert got == {"keyctl": -errno.EPERM, "unshare_user": -errno.EPERM, "mount": -errno.EPERM,
                   "getpid_ok": True, "write_ok": True}


@needs_x86_64
@LOADERS
def test_default_profile_clone_flag_filter(loader):
    load = _loader(loader, seccomp.default_profile())

    def child():
        load(seccomp.default_profile())
        out = {}
        pid = _syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            os._exit(0)  # only if the filter failed: leave at once
        out["clone_newuts"] = pid if pid < 0 else "allowed"
        if pid > 0:
            os.waitpid(pid, 0)
        pid = _syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)  # a plain fork passes the mask
        if pid == 0:
            os._exit(7)
        out["plain_clone_status"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) if pid > 0 else pid
        out["clone3"] = _syscall(SYS_clone3, 0, 0)  # ENOSYS so that libc falls back to clone
        return out

    assert run_in_child(child) == {"clone_newuts": -errno.EPERM, "plain_clone_status": 7, "clone3": -errno.ENOSYS}


@needs_x86_64
def test_default_profile_with_sys_admin_allows_namespaces():
    caps = ["CAP_SYS_ADMIN", "CAP_CHOWN"]

    def child():
        seccomp.load(seccomp.default_profile(caps))
        return _syscall(SYS_unshare, CLONE_NEWUTS)

    assert run_in_child(child) == 0


BUSYBOX = "/bin/busybox" if os.path.exists("/bin/busybox") else "busybox"


@pytest.mark.requires("busybox")
def test_busybox_works_under_default_profile(tmp_path):
    """Normal work under the profile: a shell, files, pipes, fork/exec, background jobs."""
    script = (f"cd {tmp_path} && mkdir d && echo hello > d/f && cat d/f | tr a-z A-Z && ls d "
              "&& (sleep 0 &) && sleep 0 & wait; id -u; echo end")
    proc = subprocess.run([BUSYBOX, "sh", "-c", script], capture_output=True, timeout=30,
                          preexec_fn=lambda: seccomp.load(seccomp.default_profile()))
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert out.split() == ["HELLO", "f", "0", "end"]


@needs_x86_64
def test_default_profile_socket_filter():
    """AF_INET sockets work; AF_VSOCK (arg 0 == 40) is refused by the argument rule."""
    import socket

    def child():
        seccomp.load(seccomp.default_profile())
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
        try:
            socket.socket(40, socket.SOCK_STREAM).close()
        except OSError as exc:
            return exc.errno
        return "vsock allowed"

    assert run_in_child(child) == errno.EPERM


@pytest.mark.requires("busybox")
def test_busybox_mount_refused_under_default_profile(tmp_path):
    """As root (with CAP_SYS_ADMIN) `mount` still fails: the profile was built without it."""
    (tmp_path / "m").mkdir()
    proc = subprocess.run([BUSYBOX, "mount", "-t", "tmpfs", "none", str(tmp_path / "m")], capture_output=True,
                          timeout=30, preexec_fn=lambda: seccomp.load(seccomp.default_profile()))
    assert proc.returncode != 0
    assert b"permission denied" in proc.stderr  # busybox's words for EPERM from mount(2)
    assert not os.path.ismount(tmp_path / "m")


def test_multiple_architectures_compile_into_arch_checks():
    """Each listed ABI gets its own section in the BPF program (AUDIT_ARCH_* checks)."""
    if not X86_64:
        pytest.skip("checks x86 ABIs")
    bpf = seccomp.export_bpf(ALLOW_ALL_BUT_MKDIR)
    consts = {int.from_bytes(bpf[i + 4:i + 8], "little") for i in range(0, len(bpf), 8)}
    assert 0xC000003E in consts  # AUDIT_ARCH_X86_64
    assert 0x40000003 in consts  # AUDIT_ARCH_I386
    only_native = seccomp.export_bpf({**ALLOW_ALL_BUT_MKDIR, "architectures": ["SCMP_ARCH_X86_64"]})
    consts = {int.from_bytes(only_native[i + 4:i + 8], "little") for i in range(0, len(only_native), 8)}
    assert 0x40000003 not in consts


def test_prepared_program_is_cached_on_disk_and_flags_load(tmp_path):
    profile = {**ALLOW_ALL_BUT_MKDIR, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}
    first = seccomp.prepare(profile, cache_dir=str(tmp_path / "cache"))
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == first[0] and first[1] == 2
    seccomp._PREPARED.clear()
    assert seccomp.prepare(profile, cache_dir=str(tmp_path / "cache")) == first

    def child():
        seccomp.load_prepared(first)
        try:
            os.mkdir(tmp_path / "d")
        except OSError as exc:
            return exc.errno
        return "mkdir succeeded"

    assert run_in_child(child) == errno.EPERM


# -- in a real container, through the runtime --------------------------------------------


@pytest.mark.requires("busybox")
def test_default_profile_in_a_container(busybox_bundle, created):
    caps = busybox_bundle.config["process"]["capabilities"]["bounding"]
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("seccomp", seccomp.default_profile(caps)))
    r = created.run(busybox_bundle.sh(
        "mkdir /tmp/x && echo mkdir=$?; mount -t tmpfs none /tmp/x; echo mount=$?; "
        "unshare -U true; echo unshare=$?; echo end"))
    assert r.code == 0, r.stderr
    assert r.stdout.split() == ["mkdir=0", "mount=1", "unshare=1", "end"]
    assert "unshare(0x10000000): Operation not permitted" in r.stderr
