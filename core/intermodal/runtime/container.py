"""The runtime's lifecycle API (create, start, state, kill, delete, run, exec, ps, list).

The CLI calls it, and the engine calls it in-process. The process that
calls :meth:`Runtime.create` becomes the parent of the container's pid 1
(the init clones it with CLONE_PARENT), so an in-process caller can
:meth:`Container.wait` for its exit status; a CLI `create` exits and leaves
the container to its own parent (conmon is a subreaper).
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum (parse_signal imports it, for the CLI)
import os
import select
import time

from intermodal import cjson
from intermodal.errors import ContainerNotFound, IntermodalError, RuntimeFailure
from intermodal.fsutil import atomic_write, remove_tree
from intermodal.runtime import state
from intermodal.runtime.state import FIFO, Record, Status, Store, state_json

TYPE_CHECKING = False  # not `typing` (~3 ms): the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from intermodal.runtime.spec import Process
    from intermodal.runtime.staging import Staged

# Only `create` and `exec` import the spec parser and the launcher (launch.py); `state`, `start`,
# `kill` and `delete` are called once per container by podman/conmon and stay cheap to start.
START_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0

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

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Delete a container; with *force* also the leftovers of a create that was killed midway
        (a directory without state) and a missing container (like runc, not an error then)."""
        try:
            ctr = self.get(container_id)
        except ContainerNotFound:
            if not force:
                raise
            try:
                with self.store.lock(container_id):
                    if not os.path.exists(self.store.path(container_id, state.STATE_FILE)):
                        remove_tree(self.store.path(container_id))
            except ContainerNotFound:
                pass
            return
        try:
            ctr.delete(force=force)
        except ContainerNotFound:
            if not force:
                raise
            # Deleted by another process between our look and our lock (the engine's monitor and
            # `imod rm` may both clean up): with --force a missing container is no error, as in runc.

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
               stdio: tuple[int, int, int] | None = None, staged: Staged | None = None) -> Container:
        """Set the container up and leave its process blocked until :meth:`Container.start`.

        The container's stdin/stdout/stderr are ours, or the three fds of *stdio*. *staged*: a stage 1
        the caller staged ahead in the container's cgroups (staging.Staged, the monitor's launcher):
        taken if it fits, else discarded; the caller discards it in any case once the create is done.
        """
        from intermodal.runtime import spec as spec_mod

        bundle = os.path.abspath(bundle)
        spec = spec_mod.load(bundle, config)
        from intermodal.runtime import capabilities
        from intermodal.runtime.validate import validate

        for warning in validate(spec, bundle):
            warn(warning)
        capabilities.validate(spec.process.capabilities if spec.process else None)
        if spec.process and spec.process.terminal and not console_socket:
            raise spec_mod.InvalidSpec("process.terminal is true but no --console-socket was given; "
                                       "pass one, or set terminal to false")
        directory = self.store.create(container_id)
        try:
            from intermodal.runtime.launch import Creation

            creation = Creation(self.store, self.systemd_cgroup, container_id, bundle, spec, directory, config)
            pid = creation.run(console_socket, preserve_fds, stdio, staged)
        except BaseException:
            remove_tree(directory)
            raise
        if pid_file:
            atomic_write(pid_file, str(pid).encode())
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


class Container:
    def __init__(self, runtime: Runtime, container_id: str) -> None:
        self.runtime = runtime
        self.id = container_id

    @property
    def directory(self) -> str:
        return self.runtime.store.path(self.id)

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
        _lifecycle_hooks(rec, "poststart", Status.RUNNING)

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
            if sig == signal.SIGKILL and current is Status.PAUSED and (mgr := self._manager(rec)) is not None:
                mgr.thaw()  # a frozen task cannot act on SIGKILL until it is thawed
                rec.paused = False
                self.runtime.store.save(rec)

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
            remove_tree(self.directory)
        _lifecycle_hooks(rec, "poststop", Status.STOPPED)

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
            from intermodal.runtime import spec as spec_mod

            spec = spec_mod.load(rec.bundle, rec.config or None)
            from intermodal.runtime.launch import exec_process

            pid = exec_process(rec, spec, process, self._manager(rec), console_socket=console_socket,
                               preserve_fds=preserve_fds, stdio=stdio)
        if pid_file:
            atomic_write(pid_file, str(pid).encode())
        if detach:
            return pid
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)


def _release(directory: str, rec: Record) -> None:
    """Open exec.fifo for reading: the blocked container process writes one byte and goes on to exec."""
    fifo = os.path.join(directory, FIFO)
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


def _lifecycle_hooks(rec: Record, key: str, current: Status) -> None:
    """poststart/poststop: read only the hooks (no full parse); a failure is logged, not raised
    (runtime-spec: the runtime MUST log a warning and go on)."""
    try:
        with open(rec.config or os.path.join(rec.bundle, "config.json"), "rb") as f:
            items = (cjson.loads(f.read()).get("hooks") or {}).get(key)
    except (OSError, ValueError, AttributeError):
        return  # the bundle is gone or unreadable: no hooks to run
    if not items:
        return
    from intermodal.runtime import hooks, spec

    try:
        hooks.run_all(key, spec.parse_hooks(items), state_json(rec, current))
    except (IntermodalError, OSError) as exc:
        warn(str(exc))


def warn(message: str) -> None:
    import logging

    logging.getLogger("intermodal.runtime").warning("%s", message)


def parse_signal(value: str | int) -> int:
    """`TERM`, `SIGTERM`, `15` -> 15."""
    text = str(value).upper()
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    import signal as signals  # for its Signals enum: the CLI's kill, not the start

    try:
        return int(signals.Signals[name])
    except KeyError:
        from intermodal.errors import InvalidArgument

        raise InvalidArgument(f"unknown signal {value!r}; use a name like TERM or KILL, or a number") from None


__all__ = ["Container", "Runtime", "parse_signal"]
