"""The default seccomp profile, equal in effect to Docker's (moby profiles/seccomp).

Data, not code: ``ALLOWED`` syscalls for every container, ``RULES`` that
depend on the container's capabilities, the host architecture, the kernel
version or an argument. :func:`build` resolves them into an OCI
``linux.seccomp`` for one container. Everything not allowed returns EPERM;
``clone3`` returns ENOSYS without CAP_SYS_ADMIN so that libc falls back to
``clone``, whose namespace flags the argument filter can then inspect.

Only the parent (engine, ``imod-runtime spec``) imports this module; the
container's init child gets the resolved dict.
"""

from __future__ import annotations

import os

# Syscalls every container may make, grouped by what they are for.
_ALLOWED_TEXT = """
    read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
    open openat openat2 creat close close_range lseek _llseek
    stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx statfs statfs64 fstatfs fstatfs64
    access faccessat faccessat2 readlink readlinkat getcwd chdir fchdir getdents getdents64
    mkdir mkdirat mknod mknodat rmdir rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat
    chmod fchmod fchmodat chown chown32 fchown fchown32 fchownat lchown lchown32 umask
    truncate truncate64 ftruncate ftruncate64 fallocate fadvise64 fadvise64_64 readahead
    fsync fdatasync sync syncfs sync_file_range copy_file_range sendfile sendfile64 splice tee vmsplice
    utime utimes utimensat utimensat_time64 futimesat
    getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr
    removexattr lremovexattr fremovexattr
    dup dup2 dup3 fcntl fcntl64 flock ioctl pipe pipe2 name_to_handle_at
    select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2
    eventfd eventfd2 signalfd signalfd4 timerfd_create timerfd_settime timerfd_settime64
    timerfd_gettime timerfd_gettime64 inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    io_uring_setup io_uring_enter io_uring_register
    brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages membarrier
    mlock mlock2 mlockall munlock munlockall memfd_create memfd_secret pkey_alloc pkey_free pkey_mprotect
    execve execveat exit exit_group fork vfork wait4 waitid waitpid kill tkill tgkill
    pidfd_open pidfd_send_signal process_mrelease restart_syscall
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask sigreturn pause
    alarm getitimer setitimer timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
    timer_settime timer_settime64 nanosleep clock_nanosleep clock_nanosleep_time64
    clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_adjtime clock_adjtime64 adjtimex
    gettimeofday time times
    getpid getppid gettid getpgid getpgrp setpgid getsid setsid getpriority setpriority
    getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32 getresgid getresgid32
    getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
    setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32 setgroups setgroups32
    capget capset prctl seccomp getrlimit setrlimit ugetrlimit prlimit64 getrusage
    futex futex_time64 futex_waitv set_robust_list get_robust_list set_tid_address rseq
    get_thread_area set_thread_area
    sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam sched_setparam
    sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min
    sched_rr_get_interval sched_rr_get_interval_time64 ioprio_get ioprio_set getcpu
    socketcall socketpair bind connect listen accept accept4 getsockname getpeername getsockopt setsockopt
    send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64 shutdown
    ipc msgget msgctl msgsnd msgrcv semget semctl semop semtimedop semtimedop_time64 shmget shmctl shmat shmdt
    mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64
    mq_notify mq_getsetattr
    uname sysinfo getrandom landlock_create_ruleset landlock_add_rule landlock_restrict_self
"""
ALLOWED = frozenset(_ALLOWED_TEXT.split())

# Docker's default capabilities: what `default_profile(None)` assumes.
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# clone(2) flags that create namespaces: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
AF_VSOCK = 40

_S390 = ("s390", "s390x")

# Each rule: names, and optionally action (default allow), errno, args as
# (index, op, value[, valueTwo]), caps (all needed), no_caps (any excludes it),
# arches (host must be one), not_arches, min_kernel.
RULES: tuple[dict, ...] = (
    {"names": ("ptrace", "process_vm_readv", "process_vm_writev"), "min_kernel": (4, 8)},
    {"names": ("socket",), "args": ((0, "SCMP_CMP_NE", AF_VSOCK),)},
    # personality(2): only PER_LINUX, PER_LINUX32, UNAME26 variants and the query 0xffffffff.
    *({"names": ("personality",), "args": ((0, "SCMP_CMP_EQ", v),)}
      for v in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)),
    {"names": ("sync_file_range2", "swapcontext"), "arches": ("ppc64le",)},
    {"names": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
               "set_tls"), "arches": ("arm", "arm64")},
    {"names": ("arch_prctl",), "arches": ("amd64", "x32")},
    {"names": ("modify_ldt",), "arches": ("amd64", "x32", "x86")},
    {"names": ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"), "arches": _S390},
    {"names": ("riscv_flush_icache",), "arches": ("riscv64",)},
    {"names": ("open_by_handle_at",), "caps": ("CAP_DAC_READ_SEARCH",)},
    {"names": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
               "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
               "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
               "umount2", "unshare"), "caps": ("CAP_SYS_ADMIN",)},
    # Without CAP_SYS_ADMIN: clone only without namespace flags (s390 swaps the first two arguments).
    {"names": ("clone",), "args": ((0, "SCMP_CMP_MASKED_EQ", CLONE_NS_FLAGS, 0),),
     "no_caps": ("CAP_SYS_ADMIN",), "not_arches": _S390},
    {"names": ("clone",), "args": ((1, "SCMP_CMP_MASKED_EQ", CLONE_NS_FLAGS, 0),),
     "no_caps": ("CAP_SYS_ADMIN",), "arches": _S390},
    # clone3 passes flags in memory, which seccomp cannot read: ENOSYS makes libc fall back to clone.
    {"names": ("clone3",), "action": "SCMP_ACT_ERRNO", "errno": 38, "no_caps": ("CAP_SYS_ADMIN",)},
    {"names": ("reboot",), "caps": ("CAP_SYS_BOOT",)},
    {"names": ("chroot",), "caps": ("CAP_SYS_CHROOT",)},
    {"names": ("delete_module", "init_module", "finit_module"), "caps": ("CAP_SYS_MODULE",)},
    {"names": ("acct",), "caps": ("CAP_SYS_PACCT",)},
    {"names": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
     "caps": ("CAP_SYS_PTRACE",)},
    {"names": ("iopl", "ioperm"), "caps": ("CAP_SYS_RAWIO",)},
    {"names": ("settimeofday", "stime", "clock_settime", "clock_settime64"), "caps": ("CAP_SYS_TIME",)},
    {"names": ("vhangup",), "caps": ("CAP_SYS_TTY_CONFIG",)},
    {"names": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"), "caps": ("CAP_SYS_NICE",)},
    {"names": ("syslog",), "caps": ("CAP_SYSLOG",)},
    {"names": ("bpf",), "caps": ("CAP_BPF",)},
    {"names": ("perf_event_open",), "caps": ("CAP_PERFMON",)},
)

# Host architecture (Docker's names) -> the ABIs a container may use there.
ARCHITECTURES = {
    "amd64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "x86": ("SCMP_ARCH_X86",),
    "arm64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "arm": ("SCMP_ARCH_ARM",),
    "mips64": ("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "mips64n32": ("SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "mipsel64": ("SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "mipsel64n32": ("SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    "s390": ("SCMP_ARCH_S390",),
    "ppc64le": ("SCMP_ARCH_PPC64LE",),
    "ppc64": ("SCMP_ARCH_PPC64",),
    "riscv64": ("SCMP_ARCH_RISCV64",),
}

# uname -m -> Docker's architecture names (GOARCH, with 386 called x86).
_MACHINE = {
    "x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "mips64": "mips64", "s390x": "s390x", "ppc64le": "ppc64le", "ppc64": "ppc64", "riscv64": "riscv64",
}


def host_arch() -> str:
    machine = os.uname().machine
    return _MACHINE.get(machine, machine)


def kernel_version() -> tuple[int, int]:
    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def selected(rule: dict, caps: set[str], arch: str, kernel: tuple[int, int]) -> bool:
    """Whether ``rule`` applies to a container with ``caps`` on ``arch``/``kernel``."""
    if any(c not in caps for c in rule.get("caps", ())):
        return False
    if any(c in caps for c in rule.get("no_caps", ())):
        return False
    if "arches" in rule and arch not in rule["arches"]:
        return False
    if arch in rule.get("not_arches", ()):
        return False
    return kernel >= rule.get("min_kernel", (0, 0))


def build(capabilities: list[str] | None = None, *, arch: str | None = None,
          kernel: tuple[int, int] | None = None) -> dict:
    """The profile as OCI ``linux.seccomp`` for these capabilities."""
    caps = set(DEFAULT_CAPS if capabilities is None else capabilities)
    arch = arch or host_arch()
    kernel = kernel or kernel_version()
    syscalls: list[dict] = [{"names": sorted(ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    for rule in RULES:
        if not selected(rule, caps, arch, kernel):
            continue
        entry: dict = {"names": list(rule["names"]), "action": rule.get("action", "SCMP_ACT_ALLOW")}
        if "errno" in rule:
            entry["errnoRet"] = rule["errno"]
        if "args" in rule:
            entry["args"] = [{"index": a[0], "op": a[1], "value": a[2], "valueTwo": a[3] if len(a) > 3 else 0}
                             for a in rule["args"]]
        syscalls.append(entry)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,  # EPERM
        "architectures": list(ARCHITECTURES.get(arch, ())),
        "syscalls": syscalls,
    }
