"""The parent's side of starting a container process: `create` and `exec`.

Forks the init's first stage (init.py), puts it in the cgroups, writes the
id maps of a new user namespace, runs the runtime-namespace hooks and waits
for "created"; kills and reaps everything it started if any step fails. A
create may instead take a stage 1 staged ahead in its cgroups (staging.py).
Imported only by `create` and `exec`, so `state`, `start`, `kill` and
`delete` do not pay for it.
"""

from __future__ import annotations

import os
import select

from intermodal.errors import IntermodalError, RuntimeFailure
from intermodal.runtime import console, hooks, init, namespaces, state
from intermodal.runtime import syscalls as S
from intermodal.runtime.process import kill_and_reap
from intermodal.runtime.spec import Spec
from intermodal.runtime.state import FIFO, Record, Status, state_json

TYPE_CHECKING = False  # not `typing`: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from intermodal.runtime.staging import Staged

# How long a set-up step of the child may take before we give up on it (bounded waits).
SETUP_TIMEOUT = 300.0

# Under the runtime's root (0700, root only: whoever writes there chooses containers' filters);
# no state.json inside, so it is no container.
SECCOMP_CACHE = ".seccomp-cache"


class Creation:
    """The parent's side of `create`: cgroups, id maps, hooks, state — undone if anything fails."""

    def __init__(self, store: state.Store, systemd_cgroup: bool, cid: str, bundle: str, spec: Spec,
                 directory: str, config: str | None) -> None:
        self.store, self.systemd_cgroup = store, systemd_cgroup
        self.cid, self.bundle, self.spec, self.directory = cid, bundle, spec, directory
        self.config = os.path.abspath(config) if config else ""
        self.rootfs = os.path.realpath(os.path.join(bundle, spec.root.path))
        self.created = _now_rfc3339()
        self.manager = None

    def run(self, console_socket: str | None, preserve_fds: int, stdio: tuple[int, int, int] | None,
            staged: Staged | None = None) -> int:
        from intermodal.runtime import cgroups

        fifo = os.path.join(self.directory, FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # writable by a non-root container user, whatever our umask
        fifo_dir = os.open(self.directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        console_fd = -1
        try:
            self.manager = cgroups.manager_for(self.spec.linux.cgroups_path, self.cid,
                                               systemd=self.systemd_cgroup)
            if self.spec.process.terminal:
                console_fd = console.connect(console_socket)
            ctx = self._context(fifo_dir, console_fd, preserve_fds)
            ctx.stdio = stdio
            ctx.cgroup_paths = self.manager.paths()
            pid = launch(ctx, self.manager, self._resources(), self.spec, self._hooks,
                         seccomp_cache=os.path.join(self.store.root_dir, SECCOMP_CACHE), staged=staged)
            try:
                self.store.save(self._record(pid))
            except BaseException:
                kill_and_reap(pid)
                raise
        except BaseException:
            if staged is not None:
                staged.discard()  # first: while it is in them, the cgroups cannot be removed
            if self.manager is not None:
                _destroy_cgroups(self.manager)
            raise
        finally:
            os.close(fifo_dir)
            if console_fd >= 0:
                os.close(console_fd)
        return pid

    def _context(self, fifo_dir: int, console_fd: int, preserve_fds: int) -> init.Context:
        linux = self.spec.linux
        user, mount = linux.namespace("user"), linux.namespace("mount")
        return init.Context(
            mode="create", spec=self.spec, process=self.spec.process, bundle=self.bundle, rootfs=self.rootfs,
            namespaces=linux.namespaces, sock=-1, fifo_dir=fifo_dir, console=console_fd,
            preserve_fds=preserve_fds, new_userns=user is not None and user.path is None, userns=user is not None,
            new_mount_ns=mount is not None and mount.path is None,
        )

    def _resources(self) -> dict:
        # As written: the cgroup backends add runc's default device rules, and a
        # linux.devices node gets only the access its rules grant (as runc).
        return dict(self.spec.linux.resources or {})

    def _record(self, pid: int, start_time: int | None = None) -> Record:
        if start_time is None:
            found = state.proc_stat(pid)
            if found is None:
                raise RuntimeFailure(f"the container process {pid} exited during create; see the container's stderr")
            start_time = found[1]
        return Record(
            id=self.cid, pid=pid, start_time=start_time, bundle=self.bundle, rootfs=self.rootfs,
            created=self.created, annotations=dict(self.spec.annotations),
            cgroup_paths=self.manager.paths() if self.manager else {},
            namespaces=[ns.type for ns in self.spec.linux.namespaces], config=self.config,
        )

    def _hooks(self, pid: int) -> bytes:
        """prestart and createRuntime hooks (runtime namespace); returns the state for the child's hooks."""
        data = state_json(self._record(pid, 0), Status.CREATING)
        hooks.run_all("prestart", self.spec.hooks.prestart, data)
        hooks.run_all("createRuntime", self.spec.hooks.create_runtime, data)
        return data


def _preload(spec: Spec) -> None:
    """Load every library the child needs while the host's files are still reachable."""
    from intermodal.runtime import capabilities, seccomp

    S.libc()
    capabilities.preload()
    if spec.linux.seccomp is not None:
        seccomp.preload()


class _ParentChannel:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def recv(self, timeout: float = SETUP_TIMEOUT) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            raise RuntimeFailure(f"the container process did not answer within {timeout:.0f}s during set-up")
        try:
            data = os.read(self.fd, init.MAX_MESSAGE)
        except ConnectionResetError:
            data = b""
        if not data:
            raise RuntimeFailure("the container process died during set-up without saying why; "
                                 "check the kernel log (dmesg) and the container's stderr")
        if data.startswith(b"error "):
            raise RuntimeFailure(data[6:].decode(errors="replace"))
        return data

    def expect(self, wanted: bytes) -> bytes:
        data = self.recv()
        if not data.startswith(wanted):
            raise RuntimeFailure(f"protocol error with the container process: wanted {wanted!r}, got {data[:40]!r}")
        return data


def launch(ctx: init.Context, manager, resources: dict | None, spec: Spec,
           on_hooks=None, seccomp_cache: str | None = None, staged: Staged | None = None) -> int:
    """Fork stage 1, drive it and stage 2 through set-up; return the container process's pid.

    *seccomp_cache*: a root-only directory where compiled seccomp programs are kept (seccomp.prepare).
    *staged*: a stage 1 staged ahead (staging.py), taken if it fits, else discarded.
    """
    _preload(spec)
    if spec.linux.seccomp is not None:
        from intermodal.runtime import seccomp

        # Compiled here, before fork, and cached: the child only loads it (off the start's critical path).
        ctx.seccomp = seccomp.prepare(spec.linux.seccomp, seccomp_cache)
    handed = _take_staged(staged, ctx, manager)
    stage1, parent_fd = handed or _fork_stage1(ctx)
    ch = _ParentChannel(parent_fd)
    pid = 0
    try:
        pid = _drive(ch, ctx, stage1, manager, resources, on_hooks, applied=handed is not None)
        return pid
    except BaseException as exc:
        for victim in (pid, stage1):
            if victim:
                kill_and_reap(victim)
        try:
            ch.send(b"error " + str(exc).encode()[:1000])
        except OSError:
            pass
        raise
    finally:
        os.close(parent_fd)


def _take_staged(staged: Staged | None, ctx: init.Context, manager) -> tuple[int, int] | None:
    """(pid, channel) of the staged stage 1 if it fits this create; else None (it is discarded)."""
    if staged is None or not staged.claim(manager, ctx.preserve_fds):
        return None
    try:
        return staged.hand_over(ctx)
    except (OSError, ValueError):
        staged.discard()  # it died after the claim, or the context holds what marshal cannot write: forked as ever
        return None


def _fork_stage1(ctx: init.Context) -> tuple[int, int]:
    parent_fd, child_fd = init.socketpair()
    ctx.sock = child_fd
    try:
        stage1 = os.fork()
    except OSError:
        os.close(parent_fd)
        os.close(child_fd)
        raise
    if stage1 == 0:
        try:
            os.close(parent_fd)
            init.stage1(ctx)
        finally:
            os._exit(1)
    os.close(child_fd)
    return stage1, parent_fd


def _drive(ch: _ParentChannel, ctx: init.Context, stage1: int, manager, resources: dict | None,
           on_hooks, applied: bool = False) -> int:
    """*applied*: stage 1 is in the cgroups already (staged): only the resources are set."""
    if manager is not None:
        if not applied:
            manager.apply(stage1)
        if resources is not None:
            manager.set(resources)
    ch.send(b"go")
    msg = ch.recv()
    if msg == b"userns":
        namespaces.write_id_maps(stage1, ctx.spec.linux.uid_mappings, ctx.spec.linux.gid_mappings)
        ch.send(b"go")
        msg = ch.recv()
    if not msg.startswith(b"pid "):
        raise RuntimeFailure(f"protocol error with the container process: got {msg[:40]!r}")
    pid = int(msg[4:])
    os.waitpid(stage1, 0)
    ch.send(b"go")
    if ctx.mode == "create":
        ch.expect(b"hooks")
        ch.send(on_hooks(pid) if on_hooks else b"{}")
    ch.expect(b"created")
    return pid


def _now_rfc3339() -> str:
    """What ``datetime.now(UTC).isoformat()`` gives, with Z, without importing datetime (~1 ms per launcher)."""
    import time

    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    micro = nanoseconds // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (f".{micro:06d}" if micro else "") + "Z"


def _destroy_cgroups(manager) -> None:
    try:
        manager.destroy()
    except IntermodalError as exc:
        import logging  # only when there is something to say: ~5 ms to import in every launcher

        logging.getLogger("intermodal.runtime").warning("could not remove the container's cgroups: %s", exc)


def exec_process(rec: Record, spec: Spec, process, manager, *, console_socket: str | None,
                 preserve_fds: int, stdio: tuple[int, int, int] | None) -> int:
    """Start *process* in the namespaces and cgroups of the container *rec*; its pid."""
    if process.terminal and not console_socket:
        from intermodal.errors import InvalidSpec

        raise InvalidSpec("process.terminal is true but no --console-socket was given")
    console_fd = console.connect(console_socket) if process.terminal else -1
    ctx = init.Context(
        mode="exec", spec=spec, process=process, bundle=rec.bundle, rootfs=rec.rootfs,
        namespaces=namespaces.container_namespaces(rec.pid, rec.namespaces), sock=-1, console=console_fd,
        preserve_fds=preserve_fds, userns="user" in rec.namespaces, new_mount_ns=False, stdio=stdio,
    )
    try:
        return launch(ctx, manager, None, spec)
    finally:
        if console_fd >= 0:
            os.close(console_fd)
