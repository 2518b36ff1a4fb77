"""Linux capabilities for the container process (capabilities(7)).

Called in the container's init child (a forked Python process), in this order:

1. :func:`apply_bounding` while still root: drop every capability not in
   ``bounding`` (PR_CAPBSET_DROP needs CAP_SETPCAP, which root still has).
2. :func:`keep_caps_for_uid_change`, then setgroups/setgid/setuid: without
   PR_SET_KEEPCAPS, setuid from 0 to non-0 clears the permitted set.
3. :func:`apply`: capset(2) effective/permitted/inheritable, then raise the
   ambient set with prctl(PR_CAP_AMBIENT) (needs the cap in permitted and
   inheritable), so a non-root process keeps ambient caps across execve.
   Raising is best-effort, as in runc: a cap the kernel refuses is left out
   (``runc spec`` itself lists ambient caps that are not inheritable). The
   parent predicts those with :func:`warnings` and logs them before the
   fork, as runc logs "can't raise ambient capability" from its init.

``caps`` is OCI ``process.capabilities``: ``{"bounding": [...], "effective":
[...], "permitted": [...], "inheritable": [...], "ambient": [...]}``. ``None``
means "leave the capabilities as they are" (runc does the same). A missing set
inside the dict means empty. Names unknown to us raise ``InvalidSpec``; names
we know but the running kernel lacks (above cap_last_cap) are skipped, as runc
does. Imports only _ctypes (cabi) and os: this runs between fork and exec.
"""

from __future__ import annotations

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime import cabi  # ctypes' definitions on `_ctypes` (the package: ~1.5 ms per start)

# Index = capability number (include/uapi/linux/capability.h).
_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
_NUMBERS = {n: i for i, n in enumerate(_NAMES)}

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

# prctl(2) options and capset(2) header version.
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(cabi.Structure):
    _fields_ = [("version", cabi.c_uint32), ("pid", cabi.c_int)]


class _Data(cabi.Structure):
    _fields_ = [("effective", cabi.c_uint32), ("permitted", cabi.c_uint32),
                ("inheritable", cabi.c_uint32)]


def names() -> list[str]:
    """Every capability name we know, in number order."""
    return list(_NAMES)


def number(name: str) -> int:
    """``CAP_SYS_ADMIN`` -> 21. Unknown names raise ``InvalidSpec``."""
    try:
        return _NUMBERS[name]
    except KeyError:
        raise InvalidSpec(f"unknown capability {name!r}; known are CAP_CHOWN ... {_NAMES[-1]} "
                          "(see capabilities(7)): fix process.capabilities in config.json") from None


_LAST_CAP: int | None = None


def last_cap() -> int:
    """The highest capability number the running kernel knows (read once; forked children inherit it)."""
    global _LAST_CAP
    if _LAST_CAP is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _LAST_CAP = int(f.read())
        except (OSError, ValueError):
            _LAST_CAP = len(_NAMES) - 1
    return _LAST_CAP


def validate(caps: dict | None) -> None:
    """Check set names and capability names (pure; for validate.py)."""
    if caps is None:
        return
    for key, values in caps.items():
        if key not in SETS:
            raise InvalidSpec(f"process.capabilities.{key}: unknown set; known are {', '.join(SETS)}")
        for i, name in enumerate(values or []):
            if name not in _NUMBERS:
                raise InvalidSpec(f"process.capabilities.{key}[{i}]: unknown capability {name!r}; "
                                  "fix config.json (names as in capabilities(7), e.g. CAP_NET_RAW)")


def warnings(caps: dict | None, limit: int | None = None) -> list[str]:
    """What the kernel will not grant of *caps* and runc only warns about (pure but for cap_last_cap).

    * names we know but the running kernel does not (above cap_last_cap): left out of every set;
    * ambient names not in both permitted and inheritable: PR_CAP_AMBIENT_RAISE fails with EPERM
      (capabilities(7)), so :func:`apply` leaves them out.
    """
    if not caps:
        return []
    top = last_cap() if limit is None else limit
    found = []
    missing = sorted({n for v in caps.values() for n in v or () if n in _NUMBERS and _NUMBERS[n] > top},
                     key=number)
    if missing:
        found.append(f"process.capabilities: {', '.join(missing)} unknown to the running kernel (its last "
                     f"capability is {_name(top)}); left out of every set: drop them from config.json to silence this")
    usable = {k: {n for n in caps.get(k) or () if n in _NUMBERS and _NUMBERS[n] <= top} for k in SETS}
    lacking = sorted(usable["ambient"] - (usable["permitted"] & usable["inheritable"]), key=number)
    if lacking:
        where = ", ".join(f"{n} (not in {' nor '.join(k for k in ('permitted', 'inheritable') if n not in usable[k])})"
                          for n in lacking)
        found.append(f"process.capabilities.ambient: can't raise {where}: the kernel raises an ambient capability "
                     "only if it is also permitted and inheritable; the process runs without it (as with runc). "
                     "Add it to permitted and inheritable to keep it across exec, or drop it from ambient")
    return found


def to_mask(names_: list[str] | None, limit: int | None = None) -> int:
    """Bit mask of the named capabilities, leaving out those above ``limit``."""
    top = last_cap() if limit is None else limit
    mask = 0
    for name in names_ or []:
        n = number(name)
        if n <= top:
            mask |= 1 << n
    return mask


def apply_bounding(caps: dict | None) -> None:
    """Drop from the bounding set everything not in ``caps["bounding"]``."""
    if caps is None:
        return
    validate(caps)
    keep = to_mask(caps.get("bounding"))
    libc = _libc()
    for n in range(last_cap() + 1):
        if keep & (1 << n):
            continue
        if libc.prctl(PR_CAPBSET_DROP, n, 0, 0, 0) != 0:
            err = cabi.get_errno()
            raise KernelError(f"prctl(PR_CAPBSET_DROP, {_name(n)})", None, err,
                              "the runtime needs CAP_SETPCAP to drop bounding capabilities; run it as root")


def keep_caps_for_uid_change() -> None:
    """prctl(PR_SET_KEEPCAPS, 1): setuid(2) away from 0 then keeps permitted."""
    if _libc().prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise KernelError("prctl(PR_SET_KEEPCAPS)", None, cabi.get_errno())


def apply(caps: dict | None) -> list[str]:
    """After setuid/setgid: set effective/permitted/inheritable, then ambient; the ambient names not raised.

    Clears PR_SET_KEEPCAPS again (the container must not inherit it). A capset
    refusal raises ``KernelError``: running with other caps than asked is unsafe.
    An ambient cap the kernel refuses (EPERM: not in permitted and inheritable,
    or SECBIT_NO_CAP_AMBIENT_RAISE; EINVAL: a kernel without ambient caps) is
    left out, as runc does: ambient only adds, and :func:`warnings` said so.
    """
    if caps is None:
        return []
    validate(caps)
    libc = _libc()
    libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    eff, prm, inh = (to_mask(caps.get(k)) for k in ("effective", "permitted", "inheritable"))
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):  # version 3: two 32-bit words per set
        data[i].effective = (eff >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (prm >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inh >> (32 * i)) & 0xFFFFFFFF
    if libc.capset(cabi.byref(header), data) != 0:
        raise KernelError("capset", None, cabi.get_errno(),
                          "effective must be within permitted, and permitted within the bounding set; "
                          "fix process.capabilities in config.json")
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = cabi.get_errno()
        if err != 22:  # EINVAL: kernel < 4.3 without ambient caps; nothing to clear then
            raise KernelError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", None, err)
    amb = to_mask(caps.get("ambient"))
    return [_name(n) for n in range(last_cap() + 1)
            if amb & (1 << n) and libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n, 0, 0) != 0]


def read_status(pid: int | str = "self") -> dict[str, int]:
    """The five sets of a process from /proc/<pid>/status as masks (CapBnd...)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                out[key] = int(value.strip(), 16)
    return out


def mask_names(mask: int) -> list[str]:
    return [_name(n) for n in range(64) if mask & (1 << n)]


def _name(n: int) -> str:
    return _NAMES[n] if n < len(_NAMES) else f"CAP_{n}"


_LIBC: cabi.CDLL | None = None


def _libc() -> cabi.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = cabi.CDLL(None)
        _LIBC.prctl.argtypes = [cabi.c_int, cabi.c_ulong, cabi.c_ulong, cabi.c_ulong, cabi.c_ulong]
        _LIBC.prctl.restype = cabi.c_int
    return _LIBC


def preload() -> None:
    """Load libc's prctl binding now: after pivot_root the host's libraries are out of reach."""
    _libc()
