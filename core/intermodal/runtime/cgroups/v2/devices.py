"""v2 device access: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices controller; the kernel asks a BPF program attached
to the cgroup on every open/mknod of a device node
(Documentation/admin-guide/cgroup-v2.rst, "Device controller"). We build that
program from the same rules as the v1 controller (spec rules, then runc's
default devices), load it with bpf(2) and attach it to the container's cgroup
directory, replacing the one a previous ``set`` attached.

Semantics, as the v1 controller's: an "all devices" rule (type ``a``) resets
to allow-all or deny-all; other rules are exceptions, the last matching one
wins. An allow rule matches when every requested access is in it; a deny rule
when any requested access is in it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from intermodal.errors import KernelError
from intermodal.runtime.cgroups.v1.devices import check_rule, with_defaults

NAME = "devices"

# bpf(2) commands, program and attach types (include/uapi/linux/bpf.h).
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 5, 8, 9, 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_NR_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "i386": 357, "armv7l": 386, "ppc64le": 361,
           "s390x": 351, "riscv64": 280}

# struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; }
_TYPE = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# Instruction opcodes used below.
_LDX_W, _MOV32_REG, _AND32_IMM, _RSH32_IMM, _JNE_IMM, _JEQ_IMM, _MOV64_IMM, _EXIT = (
    0x61, 0xBC, 0x54, 0x74, 0x55, 0x15, 0xB7, 0x95)
_R0, _R1, _TYPE_R, _ACC_R, _MAJ_R, _MIN_R, _TMP = 0, 1, 2, 3, 4, 5, 6


def applies(resources: dict) -> bool:
    return True  # a container without rules still gets deny-all plus the defaults


def effective(rules: list[dict] | None) -> tuple[bool, list[tuple[bool, str, int | None, int | None, int]]]:
    """(default allow?, exceptions in order) after resets, spec rules then defaults (pure)."""
    default = False
    exceptions: list[tuple[bool, str, int | None, int | None, int]] = []
    for i, r in enumerate(with_defaults(rules)):
        kind, access = check_rule(r, i)
        if kind == "a":
            default, exceptions = bool(r.get("allow")), []
            continue
        mask = sum(_ACCESS[c] for c in access)
        exceptions.append((bool(r.get("allow")), kind, _wild(r.get("major")), _wild(r.get("minor")), mask))
    return default, exceptions


def program(rules: list[dict] | None) -> bytes:
    """The eBPF instructions for ``rules`` (pure; see the module docstring)."""
    default, exceptions = effective(rules)
    out = [
        _ins(_LDX_W, _TYPE_R, _R1, 0, 0),      # r2 = access_type
        _ins(_MOV32_REG, _ACC_R, _TYPE_R, 0, 0),  # r3 = access_type
        _ins(_AND32_IMM, _TYPE_R, 0, 0, 0xFFFF),  # r2 = type
        _ins(_RSH32_IMM, _ACC_R, 0, 0, 16),     # r3 = requested access
        _ins(_LDX_W, _MAJ_R, _R1, 4, 0),        # r4 = major
        _ins(_LDX_W, _MIN_R, _R1, 8, 0),        # r5 = minor
    ]
    for allow, kind, major, minor, mask in reversed(exceptions):  # the last matching rule wins
        block: list[tuple] = [(_JNE_IMM, _TYPE_R, 0, None, _TYPE[kind])]
        if allow:
            if mask != 7:  # every requested bit must be in the rule: (req & ~mask) == 0
                block += [(_MOV32_REG, _TMP, _ACC_R, 0, 0), (_AND32_IMM, _TMP, 0, 0, ~mask & 7),
                          (_JNE_IMM, _TMP, 0, None, 0)]
        else:  # any requested bit in the rule: (req & mask) != 0
            block += [(_MOV32_REG, _TMP, _ACC_R, 0, 0), (_AND32_IMM, _TMP, 0, 0, mask),
                      (_JEQ_IMM, _TMP, 0, None, 0)]
        if major is not None:
            block.append((_JNE_IMM, _MAJ_R, 0, None, major))
        if minor is not None:
            block.append((_JNE_IMM, _MIN_R, 0, None, minor))
        block += [(_MOV64_IMM, _R0, 0, 0, 1 if allow else 0), (_EXIT, 0, 0, 0, 0)]
        for pos, (code, dst, src, off, imm) in enumerate(block):
            if off is None:  # a "no match" jump: to the first instruction after this block
                off = len(block) - pos - 1
            out.append(_ins(code, dst, src, off, imm))
    out += [_ins(_MOV64_IMM, _R0, 0, 0, 1 if default else 0), _ins(_EXIT, 0, 0, 0, 0)]
    return b"".join(out)


def apply(path: str, resources: dict) -> list[str]:
    insns = program(resources.get("devices"))
    prog = _load(insns)
    cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = _query(cg)
        _attach_cmd(BPF_PROG_ATTACH, cg, prog, BPF_F_ALLOW_MULTI, path)
        for prog_id in old:  # the new program is in place: drop the ones a previous set() attached
            fd, _ = _bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("=I", prog_id))
            if fd >= 0:
                _attach_cmd(BPF_PROG_DETACH, cg, fd, 0, path)
                os.close(fd)
    finally:
        os.close(cg)
        os.close(prog)
    return []


def attached(path: str) -> list[int]:
    """IDs of the device programs attached to ``path`` (for tests and debugging)."""
    cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _query(cg)
    finally:
        os.close(cg)


# -- bpf(2) -----------------------------------------------------------------------------


def _wild(n: int | None) -> int | None:
    return None if n is None or n < 0 else n


def _ins(code: int, dst: int, src: int, off: int, imm: int) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_LIBC: ctypes.CDLL | None = None


def _bpf(cmd: int, attr: bytes) -> tuple[int, bytes]:
    """bpf(cmd, attr) -> (result or -errno, attr as the kernel left it: queries answer there)."""
    global _LIBC
    nr = _NR_BPF.get(os.uname().machine)
    if nr is None:
        return -errno.ENOSYS, b""
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(attr.ljust(128, b"\0"), 128)
    rc = _LIBC.syscall(ctypes.c_long(nr), ctypes.c_long(cmd), buf, ctypes.c_uint(128))
    return (-ctypes.get_errno() if rc < 0 else rc), buf.raw


def _load(insns: bytes) -> int:
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack("=IIQQIIQ", BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8, ctypes.addressof(code),
                       ctypes.addressof(lic), 1, len(log), ctypes.addressof(log))
    fd, _ = _bpf(BPF_PROG_LOAD, attr)
    if fd < 0:
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise KernelError("bpf(BPF_PROG_LOAD) device filter", None, -fd,
                          f"the kernel refused the cgroup device program {detail[0]!r}; "
                          "it needs CONFIG_CGROUP_BPF and root")
    return fd


def _query(cg: int) -> list[int]:
    ids = (ctypes.c_uint32 * 64)()
    attr = struct.pack("=IIIIQI", cg, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)
    rc, answer = _bpf(BPF_PROG_QUERY, attr)
    if rc < 0:
        return []
    count = struct.unpack_from("=I", answer, 24)[0]
    return list(ids[:count])


def _attach_cmd(cmd: int, cg: int, prog: int, flags: int, path: str) -> None:
    rc, _ = _bpf(cmd, struct.pack("=IIII", cg, prog, BPF_CGROUP_DEVICE, flags))
    if rc < 0:
        op = "BPF_PROG_ATTACH" if cmd == BPF_PROG_ATTACH else "BPF_PROG_DETACH"
        raise KernelError(f"bpf({op}) device filter to", path, -rc,
                          "device rules on cgroup v2 need CONFIG_CGROUP_BPF")
