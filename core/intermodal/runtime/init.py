"""The container's processes between fork and exec: fail closed.

Two children, as in runc's nsexec:

* **stage 1** (forked by the runtime) waits until the parent has put it in
  the container's cgroups, enters the namespaces in the fixed order (a new
  user namespace first, with the parent writing its id maps), then clones
  stage 2 with CLONE_PARENT — a new pid namespace only applies to children
  (pid_namespaces(7)) — reports its pid and exits.
* **stage 2** is the container's process: it builds the root filesystem,
  pivots into it, applies the process settings, tells the parent "created",
  blocks on `exec.fifo` until `start`, then execs the user's program.

Any exception ends the process with a non-zero status after reporting the
error; nothing after a failed step runs, so a failed setns or mount never
runs the command on the host. Both are non-dumpable from the start, so the
container cannot open their /proc/PID/exe (the host's Python), fds or memory
(the CVE-2019-5736 class). This module imports only what is already loaded
in the parent: after pivot_root the host's files are gone.
"""

from __future__ import annotations

import _socket  # not `socket` (~4 ms: enum, selectors): the staged stage 1 is forked right after this import
import os

from intermodal.errors import IntermodalError
from intermodal.records import Mutable
from intermodal.runtime import capabilities, console, hooks, namespaces, process, rootfs, seccomp
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import Namespace, Process, Spec

MAX_MESSAGE = 1 << 16


class Context(Mutable):
    mode: str  # "create" or "exec"
    spec: Spec
    process: Process
    bundle: str
    rootfs: str
    namespaces: tuple[Namespace, ...]
    sock: int
    fifo_dir: int = -1  # create: O_PATH fd of the state directory holding exec.fifo
    console: int = -1  # connected --console-socket
    preserve_fds: int = 0
    new_userns: bool = False
    userns: bool = False
    new_mount_ns: bool = True
    cgroup_paths: dict[str, str] | None = None  # the manager's, shown at /sys/fs/cgroup
    stdio: tuple[int, int, int] | None = None  # fds to become 0, 1, 2 (default: inherited)
    state_json: bytes = b""  # the state createContainer and startContainer hooks read
    seccomp: tuple[bytes, int] | None = None  # linux.seccomp compiled by the parent (seccomp.prepare)


class Channel:
    """Messages on the SOCK_SEQPACKET pair shared with the parent (boundaries are kept)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: bytes) -> None:
        os.write(self.fd, message)

    def recv(self) -> bytes:
        data = os.read(self.fd, MAX_MESSAGE)
        if not data:
            raise ConnectionError("the runtime went away")
        if data.startswith(b"error "):
            raise ConnectionAbortedError(data[6:].decode(errors="replace"))
        return data

    def expect(self, wanted: bytes) -> None:
        got = self.recv()
        if got != wanted:
            raise ConnectionError(f"protocol: expected {wanted!r}, got {got[:40]!r}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def stage1(ctx: Context) -> None:
    """Never returns."""
    ch = Channel(ctx.sock)
    code = 1
    try:
        S.set_dumpable(False)
        if ctx.stdio is not None:
            for target, fd in enumerate(ctx.stdio):
                os.dup2(fd, target)
        ch.expect(b"go")  # the parent has applied the cgroups (a new cgroup namespace is rooted there)
        namespaces.enter(ctx.namespaces, after_user=lambda: _await_id_maps(ch))
        if namespaces.creates_network(ctx.namespaces):
            namespaces.bring_up_loopback()
        if ctx.new_userns:
            _become_root()
        pid = S.clone_parent()
        if pid == 0:
            stage2(ctx)
        ch.send(b"pid %d" % pid)
        code = 0
    except BaseException as exc:
        _report(ch, exc)
    os._exit(code)


def _await_id_maps(ch: Channel) -> None:
    ch.send(b"userns")
    ch.expect(b"go")


def _become_root() -> None:
    # Until it sets its ids, the process is the overflow user; root of the new namespace owns what it makes.
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError:
        pass  # 0 is not mapped: the mappings decide, the process keeps its full caps in the namespace


def stage2(ctx: Context) -> None:
    """The container process. Never returns: it execs or exits non-zero."""
    ch = Channel(ctx.sock)
    try:
        S.set_dumpable(False)
        ch.expect(b"go")  # the parent has our pid (stage 1's message is read before ours)
        os.setsid()
        if ctx.mode == "create":
            _build_container(ctx, ch)
        _run(ctx, ch)
    except BaseException as exc:
        _report(ch, exc)
    os._exit(1)


def _build_container(ctx: Context, ch: Channel) -> None:
    spec = ctx.spec
    if ctx.new_mount_ns:
        rootfs.prepare(spec, ctx.bundle, ctx.rootfs, userns=ctx.userns, cgroup_paths=ctx.cgroup_paths)
    ch.send(b"hooks")
    state = ch.recv()  # the parent ran prestart and createRuntime hooks; this is the state for ours
    hooks.run_all("createContainer", spec.hooks.create_container, state)
    if ctx.new_mount_ns:
        rootfs.pivot(ctx.rootfs)
    else:
        os.chroot(ctx.rootfs)
        os.chdir("/")
    if spec.hostname is not None:
        S.sethostname(spec.hostname)
    if spec.domainname is not None:
        S.setdomainname(spec.domainname)
    for key, value in spec.linux.sysctl.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    ctx.state_json = state


def _run(ctx: Context, ch: Channel) -> None:
    p = ctx.process
    slave = console.create(ctx.console, p.console_size, bind_console=ctx.mode == "create") if p.terminal else -1
    if ctx.mode == "create":
        rootfs.finish(ctx.spec, userns=ctx.userns)
    process.set_oom_score_adj(p.oom_score_adj)
    process.set_rlimits(p.rlimits)
    if slave >= 0:
        console.attach(slave)
    filters = ctx.spec.linux.seccomp
    if filters is not None and not p.no_new_privileges:
        _load_seccomp(ctx)  # without no_new_privs, loading needs CAP_SYS_ADMIN: before dropping caps
    capabilities.apply_bounding(p.capabilities)
    if p.capabilities is not None:
        capabilities.keep_caps_for_uid_change()
    process.set_user(p.user)
    capabilities.apply(p.capabilities)
    S.set_dumpable(False)  # changing ids resets it to suid_dumpable; stay non-dumpable until execve
    if p.user.umask is not None:
        os.umask(p.user.umask)
    process.chdir(p.cwd)
    env = process.environment(p.env)
    path = process.find_executable(p.args[0], env)
    ch.send(b"created")
    ch.close()
    keep = tuple(range(3, 3 + ctx.preserve_fds)) + ((ctx.fifo_dir,) if ctx.fifo_dir >= 0 else ())
    S.close_fds_from(3, keep)
    if ctx.mode == "create":
        _wait_for_start(ctx.fifo_dir)
        hooks.run_all("startContainer", ctx.spec.hooks.start_container, ctx.state_json)
    if p.no_new_privileges:
        S.set_no_new_privs()
        if filters is not None:
            _load_seccomp(ctx)  # as late as possible: the filter then covers only the user's program
    process.reset_signals()
    process.exec_process(path, p, env)


def _load_seccomp(ctx: Context) -> None:
    """The parent's compiled program (~1 ms), else compile here (~10 ms for Docker's profile)."""
    if ctx.seccomp is not None:
        seccomp.load_prepared(ctx.seccomp)
    else:
        seccomp.load(ctx.spec.linux.seccomp)


def _wait_for_start(fifo_dir: int) -> None:
    """Block until `start` opens the fifo for reading (runc's exec.fifo)."""
    fd = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=fifo_dir)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
        os.close(fifo_dir)


def _report(ch: Channel, exc: BaseException) -> None:
    text = str(exc) if isinstance(exc, IntermodalError) else f"{type(exc).__name__}: {exc}"
    message = ("error " + text).encode(errors="replace")[:MAX_MESSAGE]
    try:
        if ch.fd >= 0:
            ch.send(message)
            return
    except OSError:
        pass
    try:
        os.write(2, b"imod-runtime: " + message[6:] + b"\n")
    except OSError:
        pass


def socketpair() -> tuple[int, int]:
    """(parent end, child end) of the sync channel."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    return a.detach(), b.detach()
