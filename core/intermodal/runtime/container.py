"""The runtime's lifecycle API (create, start, state, kill, delete, run, exec, ps, list).

The CLI calls it, and the engine calls it in-process. The process that
calls :meth:`Runtime.create` becomes the parent of the container's pid 1
(the init clones it with CLONE_PARENT), so an in-process caller can
:meth:`Container.wait` for its exit status; a CLI `create` exits and leaves
the container to its own parent (conmon is a subreaper).
"""

from __future__ import annotations

import datetime
import logging
import os
import select
import signal
import time
from pathlib import Path

from intermodal.errors import IntermodalError, RuntimeFailure
from intermodal.fsutil import atomic_write, remove_tree
from intermodal.runtime import console, hooks, init, namespaces, state
from intermodal.runtime import spec as spec_mod
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import Process, Spec
from intermodal.runtime.state import FIFO, Record, Status, Store

log = logging.getLogger("intermodal.runtime")

# How long a set-up step of the child may take before we give up on it (bounded waits).
SETUP_TIMEOUT = 300.0
START_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0

# Devices every container may use, whatever linux.resources.devices denies (runc's AllowedDevices).
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]

# Exit statuses of containers we reaped on the way (delete --force) so wait() can still report them.
_reaped: dict[int, int] = {}


class Runtime:
    """One runtime root (default /run/imod-runtime) and the options that apply to every container."""

    def __init__(self, root: str | os.PathLike = state.DEFAULT_ROOT, *, systemd_cgroup: bool = False) -> None:
        self.store = Store(root)
        self.systemd_cgroup = systemd_cgroup

    def get(self, container_id: str) -> Container:
        self.store.load(container_id)  # raises ContainerNotFound
        return Container(self, container_id)

    def list(self) -> list[dict]:
        out = []
        for cid in self.store.ids():
            try:
                out.append(self.get(cid).state())
            except IntermodalError:
                continue  # deleted while we looked
        return out

    def create(self, container_id: str, bundle: str | os.PathLike, *, config: str | None = None,
               pid_file: str | None = None, console_socket: str | None = None, preserve_fds: int = 0,
               stdio: tuple[int, int, int] | None = None) -> Container:
        """Set the container up and leave its process blocked until :meth:`Container.start`.

        The container's stdin/stdout/stderr are ours, or the three fds of *stdio*.
        """
        bundle = os.path.abspath(bundle)
        spec = spec_mod.load(bundle, config)
        from intermodal.runtime import capabilities
        from intermodal.runtime.validate import validate

        for warning in validate(spec, Path(bundle)):
            log.warning("%s", warning)
        capabilities.validate(spec.process.capabilities if spec.process else None)
        if spec.process and spec.process.terminal and not console_socket:
            raise spec_mod.InvalidSpec("process.terminal is true but no --console-socket was given; "
                                       "pass one, or set terminal to false")
        directory = self.store.make(container_id)
        try:
            creation = _Creation(self, container_id, bundle, spec, directory, config)
            pid = creation.run(console_socket, preserve_fds, stdio)
        except BaseException:
            remove_tree(directory)
            raise
        if pid_file:
            atomic_write(Path(pid_file), str(pid).encode())
        return Container(self, container_id)

    def run(self, container_id: str, bundle: str | os.PathLike, *, detach: bool = False, **options) -> int:
        """create + start; unless *detach*, wait for the exit and delete, returning the exit code."""
        ctr = self.create(container_id, bundle, **options)
        try:
            ctr.start()
        except BaseException:
            ctr.delete(force=True)
            raise
        if detach:
            return 0
        try:
            code = ctr.wait()
        finally:
            ctr.delete(force=True)
        return code if code is not None else 0


class _Creation:
    """The parent's side of `create`: cgroups, id maps, hooks, state — undone if anything fails."""

    def __init__(self, runtime: Runtime, cid: str, bundle: str, spec: Spec, directory: Path,
                 config: str | None) -> None:
        self.runtime, self.cid, self.bundle, self.spec, self.directory = runtime, cid, bundle, spec, directory
        self.config = os.path.abspath(config) if config else ""
        self.rootfs = os.path.realpath(os.path.join(bundle, spec.root.path))
        self.created = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        self.manager = None

    def run(self, console_socket: str | None, preserve_fds: int, stdio: tuple[int, int, int] | None) -> int:
        from intermodal.runtime import cgroups

        fifo = self.directory / FIFO
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # writable by a non-root container user, whatever our umask
        fifo_dir = os.open(self.directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        console_fd = -1
        try:
            self.manager = cgroups.manager_for(self.spec.linux.cgroups_path, self.cid,
                                               systemd=self.runtime.systemd_cgroup)
            if self.spec.process.terminal:
                console_fd = console.connect(console_socket)
            ctx = self._context(fifo_dir, console_fd, preserve_fds)
            ctx.stdio = stdio
            ctx.cgroup_paths = self.manager.paths()
            pid = launch(ctx, self.manager, self._resources(), self.spec, self._hooks)
        except BaseException:
            if self.manager is not None:
                _destroy_cgroups(self.manager)
            raise
        finally:
            os.close(fifo_dir)
            if console_fd >= 0:
                os.close(console_fd)
        self.runtime.store.save(self._record(pid))
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
        resources = dict(self.spec.linux.resources or {})
        if "devices" in resources:
            extra = [{"allow": True, "type": d.type, "major": d.major, "minor": d.minor, "access": "rwm"}
                     for d in self.spec.linux.devices]
            resources["devices"] = list(resources["devices"]) + DEFAULT_DEVICE_RULES + extra
        return resources

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
        data = _state_json(self._record(pid, 0), Status.CREATING)
        hooks.run_all("prestart", self.spec.hooks.prestart, data)
        hooks.run_all("createRuntime", self.spec.hooks.create_runtime, data)
        return data


def _state_json(record: Record, current: Status) -> bytes:
    import json

    return json.dumps(state.oci_state(record, current) | {"pid": record.pid}).encode()


def _preload(spec: Spec) -> None:
    """Load every library the child needs while the host's files are still reachable."""
    from intermodal.runtime import capabilities, seccomp

    S.libc()
    capabilities._libc()
    if spec.linux.seccomp is not None:
        seccomp._lib()


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
           on_hooks=None) -> int:
    """Fork stage 1, drive it and stage 2 through set-up; return the container process's pid."""
    _preload(spec)
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
    ch = _ParentChannel(parent_fd)
    pid = 0
    try:
        pid = _drive(ch, ctx, stage1, manager, resources, on_hooks)
        return pid
    except BaseException as exc:
        for victim in (pid, stage1):
            if victim:
                _kill_and_reap(victim)
        try:
            ch.send(b"error " + str(exc).encode()[:1000])
        except OSError:
            pass
        raise
    finally:
        os.close(parent_fd)


def _drive(ch: _ParentChannel, ctx: init.Context, stage1: int, manager, resources: dict | None,
           on_hooks) -> int:
    if manager is not None:
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


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _destroy_cgroups(manager) -> None:
    try:
        manager.destroy()
    except IntermodalError as exc:
        log.warning("could not remove the container's cgroups: %s", exc)


class Container:
    def __init__(self, runtime: Runtime, container_id: str) -> None:
        self.runtime = runtime
        self.id = container_id

    @property
    def directory(self) -> Path:
        return self.runtime.store.dir(self.id)

    def record(self) -> Record:
        return self.runtime.store.load(self.id)

    def status(self) -> Status:
        return state.status(self.directory, self.record())

    def state(self) -> dict:
        rec = self.record()
        return state.oci_state(rec, state.status(self.directory, rec))

    def _manager(self, rec: Record):
        if not rec.cgroup_paths:
            return None
        from intermodal.runtime.cgroups import manager_from_paths

        return manager_from_paths(rec.cgroup_paths)

    def start(self) -> None:
        """Release the created process (it execs the user's program); then poststart hooks."""
        store = self.runtime.store
        with store.lock(self.id):
            rec = self.record()
            current = state.status(self.directory, rec)
            if not current.can_start():
                raise state.incorrect(self.id, current, "created")
            _release(self.directory, rec)
            rec.started = True
            store.save(rec)
        spec = spec_mod.load(rec.bundle, rec.config or None)
        _run_warn("poststart", spec.hooks.poststart, _state_json(rec, Status.RUNNING))

    def kill(self, sig: int = signal.SIGTERM, *, all_processes: bool = False) -> None:
        with self.runtime.store.lock(self.id):
            rec = self.record()
            current = state.status(self.directory, rec)
            if not current.can_kill() and not all_processes:
                raise state.incorrect(self.id, current, "created or running")
            if all_processes and (mgr := self._manager(rec)) is not None:
                for pid in mgr.pids():
                    _signal(pid, sig)
            if current.can_kill():
                os.kill(rec.pid, sig)

    def pause(self) -> None:
        self._freeze(True)

    def resume(self) -> None:
        self._freeze(False)

    def _freeze(self, frozen: bool) -> None:
        store = self.runtime.store
        with store.lock(self.id):
            rec = self.record()
            current = state.status(self.directory, rec)
            wanted = Status.RUNNING if frozen else Status.PAUSED
            if current is not wanted:
                raise state.incorrect(self.id, current, wanted.value)
            mgr = self._manager(rec)
            if mgr is None:
                raise RuntimeFailure(f"container {self.id} has no cgroup to freeze")
            mgr.freeze() if frozen else mgr.thaw()
            rec.paused = frozen
            store.save(rec)

    def delete(self, force: bool = False) -> None:
        """Remove a stopped (or created) container: processes, cgroups, state; then poststop hooks."""
        store = self.runtime.store
        with store.lock(self.id):
            rec = self.record()
            current = state.status(self.directory, rec)
            if not current.can_delete() and not force:
                raise state.incorrect(self.id, current, "stopped (or use --force)")
            mgr = self._manager(rec)
            if current is Status.PAUSED and mgr is not None:
                mgr.thaw()
            _stop_all(rec, mgr)
            if mgr is not None:
                mgr.destroy()
            try:
                spec = spec_mod.load(rec.bundle, rec.config or None)
            except IntermodalError:
                spec = None  # the bundle is gone: no hooks to run
            remove_tree(self.directory)
        if spec is not None:
            _run_warn("poststop", spec.hooks.poststop, _state_json(rec, Status.STOPPED))

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code of the container's process, once it exits.

        Only the process that created the container learns the code; any other
        caller waits for the exit and gets None. None also on timeout.
        """
        rec = self.record()
        if rec.pid in _reaped:
            return _reaped.pop(rec.pid)
        try:
            pidfd = os.pidfd_open(rec.pid)
        except ProcessLookupError:
            return None
        try:
            if not select.select([pidfd], [], [], timeout)[0]:
                return None
        finally:
            os.close(pidfd)
        try:
            _, status = os.waitpid(rec.pid, 0)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status)

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of the container (its cgroup says so)."""
        mgr = self._manager(self.record())
        return mgr is not None and mgr.oom_killed()

    def ps(self) -> list[int]:
        rec = self.record()
        mgr = self._manager(rec)
        if mgr is not None:
            return sorted(mgr.pids())
        return [rec.pid] if state.alive(rec) else []

    def exec(self, process: Process, *, detach: bool = False, pid_file: str | None = None,
             console_socket: str | None = None, preserve_fds: int = 0,
             stdio: tuple[int, int, int] | None = None) -> int:
        """Run *process* inside the container; the exit code, or with *detach* its pid."""
        with self.runtime.store.lock(self.id):
            rec = self.record()
            current = state.status(self.directory, rec)
            if not current.can_exec():
                raise state.incorrect(self.id, current, "created or running")
            spec = spec_mod.load(rec.bundle, rec.config or None)
            if process.terminal and not console_socket:
                raise spec_mod.InvalidSpec("process.terminal is true but no --console-socket was given")
            console_fd = console.connect(console_socket) if process.terminal else -1
            ctx = init.Context(
                mode="exec", spec=spec, process=process, bundle=rec.bundle, rootfs=rec.rootfs,
                namespaces=namespaces.container_namespaces(rec.pid, rec.namespaces), sock=-1, console=console_fd,
                preserve_fds=preserve_fds, userns="user" in rec.namespaces, new_mount_ns=False, stdio=stdio,
            )
            try:
                pid = launch(ctx, self._manager(rec), None, spec)
            finally:
                if console_fd >= 0:
                    os.close(console_fd)
        if pid_file:
            atomic_write(Path(pid_file), str(pid).encode())
        if detach:
            return pid
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)


def _release(directory: Path, rec: Record) -> None:
    """Open exec.fifo for reading: the blocked container process writes one byte and goes on to exec."""
    fifo = directory / FIFO
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not select.select([fd], [], [], 0.05)[0]:
            if not state.alive(rec):
                raise RuntimeFailure(f"container {rec.id} exited before it was started; see its stderr")
            if time.monotonic() >= deadline:
                raise RuntimeFailure(f"container {rec.id} did not take the start signal within {START_TIMEOUT:.0f}s")
        if os.read(fd, 1) != b"0":
            raise RuntimeFailure(f"container {rec.id} exited before it was started; see its stderr")
    finally:
        os.close(fd)
    os.unlink(fifo)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stop_all(rec: Record, mgr) -> None:
    """SIGKILL the init and anything left in the cgroup; wait (bounded) until they are gone."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while True:
        pids = set(mgr.pids()) if mgr is not None else set()
        live = state.alive(rec)
        if live:
            pids.add(rec.pid)
        _reap_ours(rec.pid)
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        if time.monotonic() >= deadline:
            raise RuntimeFailure(f"processes {sorted(pids)} of container {rec.id} survived SIGKILL for "
                                 f"{KILL_TIMEOUT:.0f}s (stuck in the kernel?); retry delete later")
        time.sleep(0.005)


def _reap_ours(pid: int) -> None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if done:
        _reaped[pid] = os.waitstatus_to_exitcode(status)


def _run_warn(phase: str, hook_list: tuple, data: bytes) -> None:
    """poststart/poststop: a failure is logged, not raised (runtime-spec: the runtime MUST log a warning)."""
    try:
        hooks.run_all(phase, hook_list, data)
    except (IntermodalError, OSError) as exc:
        log.warning("%s", exc)


def parse_signal(value: str | int) -> int:
    """`TERM`, `SIGTERM`, `15` -> 15."""
    text = str(value).upper()
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signal.Signals[name])
    except KeyError:
        from intermodal.errors import InvalidArgument

        raise InvalidArgument(f"unknown signal {value!r}; use a name like TERM or KILL, or a number") from None


__all__ = ["Container", "Runtime", "parse_signal"]
