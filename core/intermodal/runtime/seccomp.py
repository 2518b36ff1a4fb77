"""seccomp filters from OCI ``linux.seccomp``, compiled and loaded by libseccomp.

Binding: a small ctypes layer over ``libseccomp.so.2`` (Debian package
libseccomp2, installed by scripts/setup). Why not the others:

- Debian's ``python3-seccomp`` (the official Cython binding) is built for
  Debian's Python 3.11. Its .so does import into this venv's pyenv 3.11.7
  (same ABI; 0.5 ms), but only by putting /usr/lib/python3/dist-packages on
  the path, which brings every other Debian module with it, and it breaks as
  soon as the venv's Python is not 3.11. It also cannot hand us the compiled
  program for :func:`prepare`.
- PyPI ``pyseccomp`` is the same ctypes idea, unmaintained since 2021.

libseccomp itself is the maintained part (it knows every architecture's
syscall table); the layer is the ten functions we call. It costs nothing
extra to import in the init child: `_ctypes` (cabi.py) is already loaded there for the
other syscalls, and the library is opened only in :func:`load`.

Call order (runc's, libcontainer/init_linux.go): with
``process.noNewPrivileges`` true, set PR_SET_NO_NEW_PRIVS and call
:func:`load` right before execve; otherwise call :func:`load` earlier, while
the process still has CAP_SYS_ADMIN (before dropping capabilities and
changing uid), because loading a filter without no_new_privs needs it. We
never let libseccomp set no_new_privs on its own (SCMP_FLTATR_CTL_NNP=0): the
spec decides.

Fast path: compiling Docker's profile costs ~10 ms. :func:`prepare` does it in
the parent before fork (and caches it); the child then calls
:func:`load_prepared`, ~1 ms, same ordering rules.
"""

from __future__ import annotations

import errno as _errno
import os

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime import cabi  # ctypes' definitions on `_ctypes` (the package: ~1.5 ms per start)

# scmp_filter_attr (seccomp.h)
_ATTR_ACT_BADARCH = 2
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7

_FLAG_ATTRS = {
    "SECCOMP_FILTER_FLAG_TSYNC": _ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _ATTR_CTL_SSB,
}

# enum scmp_compare
OPS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

_ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS, "SCMP_ACT_TRAP": ACT_TRAP, "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE, "SCMP_ACT_LOG": ACT_LOG, "SCMP_ACT_ALLOW": ACT_ALLOW,
}


class _Version(cabi.Structure):  # struct scmp_version
    _fields_ = [("major", cabi.c_uint), ("minor", cabi.c_uint), ("micro", cabi.c_uint)]


class _ArgCmp(cabi.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", cabi.c_uint), ("op", cabi.c_int),
                ("datum_a", cabi.c_uint64), ("datum_b", cabi.c_uint64)]


def action(name: str, errno_ret: int | None, where: str) -> int:
    """OCI action name (+ errnoRet) to the libseccomp action value."""
    if name == "SCMP_ACT_NOTIFY":
        raise InvalidSpec(f"{where}: SCMP_ACT_NOTIFY (a seccomp agent) is not supported by imod-runtime; "
                          "use another action or another runtime")
    try:
        base = _ACTIONS[name]
    except KeyError:
        raise InvalidSpec(f"{where}: unknown seccomp action {name!r}; known are "
                          f"{', '.join(sorted(_ACTIONS))}: fix config.json") from None
    if errno_ret is not None and base not in (ACT_ERRNO, ACT_TRACE):
        raise InvalidSpec(f"{where}: errnoRet only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}; "
                          "fix config.json")
    if base == ACT_ERRNO:
        return base | ((_errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if base == ACT_TRACE:
        return base | ((_errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return base


def arch_name(oci: str) -> str:
    """``SCMP_ARCH_X86_64`` -> libseccomp's ``x86_64``."""
    if not oci.startswith("SCMP_ARCH_"):
        raise InvalidSpec(f"linux.seccomp.architectures: {oci!r} is not an SCMP_ARCH_* name; fix config.json")
    return oci[len("SCMP_ARCH_"):].lower()


def rule_conditions(args: list[dict] | None, where: str) -> list[list[tuple[int, int, int, int]]]:
    """OCI ``args`` to groups of (index, op, a, b) conditions, one group per rule.

    Conditions in one group are ANDed. libseccomp cannot AND two conditions on
    the same argument, so when an index repeats, each condition becomes a rule
    of its own (ORed), as runc does.
    """
    conds: list[tuple[int, int, int, int]] = []
    for i, a in enumerate(args or []):
        op = a.get("op")
        if op not in OPS:
            raise InvalidSpec(f"{where}.args[{i}].op: unknown {op!r}; known are {', '.join(OPS)}")
        index = a.get("index", 0)
        if not 0 <= index <= 5:
            raise InvalidSpec(f"{where}.args[{i}].index: {index} is not an argument index 0..5; fix config.json")
        conds.append((index, OPS[op], a.get("value", 0) & 0xFFFFFFFFFFFFFFFF,
                      a.get("valueTwo", 0) & 0xFFFFFFFFFFFFFFFF))
    if not conds:
        return [[]]
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def load(seccomp: dict | None) -> None:
    """Compile OCI ``linux.seccomp`` and load it into the calling process.

    ``None`` loads nothing. Unknown syscall names are skipped (a profile lists
    syscalls of newer kernels and other architectures); rules whose action is
    the default action are skipped (libseccomp refuses them). Raises
    ``InvalidSpec`` for a malformed profile, ``KernelError`` when libseccomp
    or the kernel refuses it (without no_new_privs, loading needs
    CAP_SYS_ADMIN).
    """
    if seccomp is None:
        return
    lib = _lib()
    ctx = _compile(lib, seccomp)
    try:
        _check(lib.seccomp_load(ctx), "seccomp_load",
               "without process.noNewPrivileges the filter must be loaded while the process has CAP_SYS_ADMIN")
    finally:
        lib.seccomp_release(ctx)


def export_bpf(seccomp: dict) -> bytes:
    """The compiled BPF program (struct sock_filter array), without loading it."""
    lib = _lib()
    ctx = _compile(lib, seccomp)
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
        lib.seccomp_release(ctx)


def _compile(lib: cabi.CDLL, seccomp: dict) -> int:
    """A libseccomp filter context for ``seccomp``; the caller releases it."""
    default = action(seccomp.get("defaultAction", ""), seccomp.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise KernelError("seccomp_init", None, _errno.EINVAL, "libseccomp refused the default action")
    try:
        _check(lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "seccomp_attr_set(NNP)")
        # A syscall from an architecture not listed is killed (libseccomp's default
        # SCMP_FLTATR_ACT_BADARCH, as with runc): list every ABI the container may use.
        for flag in seccomp.get("flags") or []:
            if flag not in _FLAG_ATTRS:
                raise InvalidSpec(f"linux.seccomp.flags: unknown flag {flag!r}; known are {', '.join(_FLAG_ATTRS)}")
            _check(lib.seccomp_attr_set(ctx, _FLAG_ATTRS[flag], 1), f"seccomp_attr_set({flag})")
        for oci in seccomp.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch_name(oci).encode())
            if token == 0:
                raise InvalidSpec(f"linux.seccomp.architectures: libseccomp does not know {oci}; fix config.json")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc not in (0, -_errno.EEXIST):
                _check(rc, f"seccomp_arch_add({oci})")
        for i, rule in enumerate(seccomp.get("syscalls") or []):
            _add_rule(lib, ctx, default, rule, f"linux.seccomp.syscalls[{i}]")
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def _add_rule(lib: cabi.CDLL, ctx: int, default: int, rule: dict, where: str) -> None:
    act = action(rule.get("action", ""), rule.get("errnoRet"), f"{where}.action")
    if act == default:
        return
    groups = rule_conditions(rule.get("args"), where)
    for name in rule.get("names") or []:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            continue  # not a syscall on any architecture libseccomp knows: skip, like runc
        for conds in groups:
            arr = (_ArgCmp * max(len(conds), 1))(*[_ArgCmp(*c) for c in conds])
            rc = lib.seccomp_rule_add_array(ctx, act, nr, len(conds), arr)
            if rc not in (0, -_errno.EEXIST):
                _check(rc, f"seccomp_rule_add({name})", f"{where}: libseccomp refused the rule; fix config.json")


# seccomp(2) flags (linux/seccomp.h) for the OCI flag names.
_KERNEL_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
# __NR_seccomp per machine, for loading a prepared program with flags (prctl takes none).
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277, "i686": 354, "i386": 354, "armv7l": 383, "ppc64le": 358,
               "s390x": 348, "riscv64": 277}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _SECCOMP_SET_MODE_FILTER = 22, 2, 1
_PREPARED: dict[str, tuple[bytes, int]] = {}


def prepare(seccomp: dict | None, cache_dir: str | None = None) -> tuple[bytes, int] | None:
    """Compile in the parent, before fork: ``(bpf, flags)`` for :func:`load_prepared`.

    Compiling Docker's profile takes ~10 ms; this moves it out of the child and
    caches it, in this process and (with ``cache_dir``) on disk, keyed by the
    profile, the libseccomp version and the machine. The program is exactly
    what :func:`load` would give the kernel (libseccomp's own export).
    ``cache_dir`` must be writable by root only (e.g. under the runtime's
    ``--root``): whoever can write there chooses the container's filter.
    """
    if seccomp is None:
        return None
    from intermodal import cjson  # json's bytes, without importing json (and re)

    sha256 = _sha256()

    flags = 0
    for flag in seccomp.get("flags") or []:
        if flag not in _KERNEL_FLAGS:
            raise InvalidSpec(f"linux.seccomp.flags: unknown flag {flag!r}; known are {', '.join(_KERNEL_FLAGS)}")
        flags |= _KERNEL_FLAGS[flag]
    lib = _lib()
    ver = lib.seccomp_version()
    key = sha256(cjson.dumps([seccomp, ver.contents.major, ver.contents.minor, ver.contents.micro,
                              os.uname().machine], sort_keys=True).encode()).hexdigest()
    if key in _PREPARED:
        return _PREPARED[key]
    path = os.path.join(cache_dir, f"{key}.bpf") if cache_dir else None
    bpf = None
    if path:
        try:
            with open(path, "rb") as f:
                bpf = f.read()
        except OSError:
            bpf = None
    if not bpf:
        bpf = export_bpf(seccomp)
        if path:
            from pathlib import Path

            from intermodal.fsutil import atomic_write

            atomic_write(Path(path), bpf, 0o600)
    _PREPARED[key] = (bpf, flags)
    return bpf, flags


def _sha256():
    """SHA-256 without hashlib, which loads OpenSSL (~2 ms in every launcher); the same digest."""
    try:
        from _sha256 import sha256  # CPython 3.11's builtin module (3.12+: _sha2)
    except ImportError:
        from hashlib import sha256
    return sha256


class _SockFprog(cabi.Structure):
    _fields_ = [("len", cabi.c_ushort), ("filter", cabi.c_void_p)]


def load_prepared(prepared: tuple[bytes, int] | None) -> None:
    """Load a program from :func:`prepare` into this process (no libseccomp call).

    Same ordering rules as :func:`load` (no_new_privs or CAP_SYS_ADMIN).
    """
    if prepared is None:
        return
    bpf, flags = prepared
    buf = cabi.string_buffer(bpf)
    prog = _SockFprog(len(bpf) // 8, cabi.addressof(buf))
    libc = cabi.CDLL(None)
    if flags:
        nr = _NR_SECCOMP.get(os.uname().machine)
        if nr is None:
            raise KernelError("seccomp", None, _errno.ENOSYS, "filter flags on this machine need load() instead")
        libc.syscall.restype = cabi.c_long
        rc = libc.syscall(cabi.c_long(nr), cabi.c_ulong(_SECCOMP_SET_MODE_FILTER), cabi.c_ulong(flags),
                          cabi.byref(prog))
    else:
        rc = libc.prctl(_PR_SET_SECCOMP, cabi.c_ulong(_SECCOMP_MODE_FILTER), cabi.byref(prog), 0, 0)
    if rc != 0:
        raise KernelError("seccomp(SECCOMP_SET_MODE_FILTER)", None, cabi.get_errno(),
                          "without process.noNewPrivileges the filter must be loaded while the process has "
                          "CAP_SYS_ADMIN")


def default_profile(capabilities: list[str] | None = None) -> dict:
    """Docker's default profile in OCI form, cap-conditional rules resolved.

    ``capabilities`` are the container's (bounding) capabilities; ``None``
    means Docker's default set. Built for this host's architecture.
    """
    from intermodal.runtime.seccomp_default import build

    return build(capabilities)


_NR_SCMP_ERROR = -1
_LIB: cabi.CDLL | None = None


def _lib() -> cabi.CDLL:
    global _LIB
    if _LIB is None:
        try:
            lib = cabi.CDLL("libseccomp.so.2")
        except OSError:
            raise KernelError("dlopen", "libseccomp.so.2", _errno.ENOENT,
                              "install libseccomp2 (scripts/setup does) to use seccomp filters") from None
        lib.seccomp_init.argtypes = [cabi.c_uint32]
        lib.seccomp_init.restype = cabi.c_void_p
        lib.seccomp_release.argtypes = [cabi.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_attr_set.argtypes = [cabi.c_void_p, cabi.c_int, cabi.c_uint32]
        lib.seccomp_arch_resolve_name.argtypes = [cabi.c_char_p]
        lib.seccomp_arch_resolve_name.restype = cabi.c_uint32
        lib.seccomp_arch_add.argtypes = [cabi.c_void_p, cabi.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [cabi.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [cabi.c_void_p, cabi.c_uint32, cabi.c_int, cabi.c_uint,
                                               cabi.POINTER(_ArgCmp)]
        lib.seccomp_load.argtypes = [cabi.c_void_p]
        lib.seccomp_export_bpf.argtypes = [cabi.c_void_p, cabi.c_int]
        lib.seccomp_version.restype = cabi.POINTER(_Version)
        _LIB = lib
    return _LIB


def preload() -> None:
    """Load libseccomp now: after pivot_root the host's libraries are out of reach.

    Raises KernelError if libseccomp is not installed."""
    _lib()


def _check(rc: int, op: str, hint: str = "") -> None:
    if rc < 0:
        raise KernelError(op, None, -rc, hint)
