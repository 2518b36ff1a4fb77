"""The container process's own settings, applied in the child just before exec.

Everything here runs after pivot_root, so it may use only modules already
imported (os, resource) and the container's own files.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum, ~1 ms of every container start
import errno
import os
import resource

from intermodal.errors import KernelError
from intermodal.runtime.spec import Process, Rlimit, User

RLIMITS = {
    "RLIMIT_CPU": resource.RLIMIT_CPU, "RLIMIT_FSIZE": resource.RLIMIT_FSIZE, "RLIMIT_DATA": resource.RLIMIT_DATA,
    "RLIMIT_STACK": resource.RLIMIT_STACK, "RLIMIT_CORE": resource.RLIMIT_CORE, "RLIMIT_RSS": resource.RLIMIT_RSS,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC, "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_MEMLOCK": resource.RLIMIT_MEMLOCK, "RLIMIT_AS": resource.RLIMIT_AS, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimits(rlimits: tuple[Rlimit, ...]) -> None:
    for rl in rlimits:
        try:
            resource.setrlimit(RLIMITS[rl.type], (_limit(rl.soft), _limit(rl.hard)))
        except (ValueError, OSError) as exc:
            # Python turns EPERM into ValueError("not allowed to raise maximum limit").
            raise KernelError(f"setrlimit {rl.type} {rl.soft}:{rl.hard} ({exc})", None, errno.EPERM,
                              "raising a hard limit needs CAP_SYS_RESOURCE; lower it in config.json") from None


def _limit(value: int) -> int:
    # OCI writes "unlimited" as 2**64-1; Python's resource module wants RLIM_INFINITY (-1).
    return resource.RLIM_INFINITY if value >= (1 << 63) or value < 0 else value


def set_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise KernelError.from_oserror("write oom_score_adj", exc, "lowering it needs CAP_SYS_RESOURCE") from None


def set_user(user: User) -> None:
    """setgroups, setgid, setuid — in that order: after setuid we could not change groups."""
    try:
        os.setgroups(list(user.additional_gids))
    except PermissionError:
        # In a user namespace whose setgroups is denied, only an empty list was possible anyway.
        if user.additional_gids:
            raise
    try:
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        raise KernelError.from_oserror(f"set uid {user.uid} gid {user.gid}", exc,
                                       "the ids must be mapped in the container's user namespace") from None


def environment(env: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def find_executable(name: str, env: dict[str, str]) -> str:
    """Resolve args[0] with the *container's* PATH (execvpe would use ours)."""
    if "/" in name:
        _check_executable(name)
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise KernelError(f"exec {name!r}", None, errno.ENOENT,
                      "executable file not found in the container's $PATH; fix process.args")


def _check_executable(path: str) -> None:
    """Fail at create, as runc does, not after start: a missing file, a directory, no exec permission.

    Runs after set_user, so access(2) answers for the container's user.
    """
    if not os.path.exists(path):
        raise KernelError("exec", path, errno.ENOENT, "the file does not exist in the container")
    if os.path.isdir(path):
        raise KernelError("exec", path, errno.EISDIR, "process.args[0] must name a program, not a directory")
    if not os.access(path, os.X_OK):
        raise KernelError("exec", path, errno.EACCES, "the file is not executable (chmod +x it)")


def chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise KernelError.from_oserror("chdir", exc, "process.cwd must exist in the container") from None


def exec_process(path: str, process: Process, env: dict[str, str]) -> None:
    try:
        os.execve(path, list(process.args), env)
    except OSError as exc:
        raise KernelError.from_oserror("exec", exc) from None


def reset_signals() -> None:
    """Ignored signals survive execve(2): Python ignores SIGPIPE and SIGXFSZ, and an in-process caller
    (the engine's monitor ignores SIGINT, SIGHUP, SIGTERM...) may ignore more; restore them all."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN or sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            continue  # real-time signals the C library reserves
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def kill_and_reap(pid: int) -> None:
    """SIGKILL our child *pid* and wait for it; gone already counts as done."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
