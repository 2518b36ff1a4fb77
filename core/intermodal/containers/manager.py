"""`engine.containers`: the container lifecycle every front end uses.

Each verb resolves a name, id or id prefix, takes the container's lock for
the state change, and never holds it while waiting for a container to exit
(the monitor needs that lock to record the exit).
"""

from __future__ import annotations

import _signal  # not `signal`, an enum module (~1 ms)
import time
from functools import cached_property

from intermodal.containers import status as st
from intermodal.containers.spec import ContainerSpec
from intermodal.containers.store import ContainerStore
from intermodal.errors import (
    ContainerNotFound,
    IncorrectState,
    InvalidArgument,
    RuntimeFailure,
)
from intermodal.records import Mutable

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from intermodal.containers.launch import PendingMonitor, Started
    from intermodal.containers.runtime_client import InProcessRuntime, OciRuntime
    from intermodal.engine import Engine

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10.0  # after SIGKILL, how long we wait for the exit to be recorded
# Once the container's process is gone, how long its live monitor may take to record the exit: it drains
# the output pipes (at most 2 s), then takes the container's lock, which commands hold only briefly.
RECORD_WAIT = 30.0
POLL = 0.01


class Container(Mutable):
    """One container as the store and the monitor last recorded it."""

    id: str
    record: dict[str, Any]
    state: dict[str, Any]
    manager: ContainerManager

    def __repr__(self) -> str:  # without the manager
        return f"Container(id={self.id!r}, record={self.record!r}, state={self.state!r})"

    @property
    def name(self) -> str:
        return self.record["Name"]

    @property
    def status(self) -> str:
        return self.state.get("Status", "created")

    @property
    def exit_code(self) -> int:
        return int(self.state.get("ExitCode", 0))

    @property
    def spec(self) -> ContainerSpec:
        return ContainerSpec.from_json(self.record["Spec"])

    def reload(self) -> Container:
        return self.manager.get(self.id)


class ContainerManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @cached_property
    def store(self) -> ContainerStore:
        return ContainerStore(self.engine.paths)

    def _runtime(self, record: dict[str, Any]) -> InProcessRuntime | OciRuntime:
        from intermodal.containers.runtime_client import runtime_for

        return runtime_for(record["Runtime"], self.engine.paths.run_root)

    # -- reading -----------------------------------------------------------------

    def get(self, name: str) -> Container:
        """Raises ContainerNotFound."""
        cid = self.store.resolve(name)
        return self._load(cid)

    def _load(self, cid: str) -> Container:
        return Container(cid, self.store.read_record(cid), st.effective(self.store.read_state(cid)), self)

    def exists(self, name: str) -> bool:
        try:
            self.store.resolve(name)
        except (ContainerNotFound, InvalidArgument):  # unknown, or an ambiguous id prefix
            return False
        return True

    def list(self, *, all: bool = True) -> list[Container]:
        found = []
        for cid in self.store.ids():
            try:
                c = self._load(cid)
            except ContainerNotFound:
                continue  # removed while we listed
            if all or c.status in st.LIVE:
                found.append(c)
        found.sort(key=lambda c: c.record.get("Created", ""), reverse=True)
        return found

    def inspect(self, name: str) -> dict[str, Any]:
        from intermodal.containers.inspect import inspect_container

        return inspect_container(self.get(name), self.store.dir(self.store.resolve(name)))

    def using_image(self, image_id: str) -> list[str]:
        return [c.name for c in self.list() if c.record.get("Image") == image_id]

    def volume_users(self, volume: str) -> list[str]:
        return [c.name for c in self.list() if any(m.get("Type") == "volume" and m.get("Source") == volume
                                                   for m in c.record.get("Mounts", ()))]

    # -- create and start ------------------------------------------------------------

    def create(self, spec: ContainerSpec, *, pull: str = "missing", pull_options: dict[str, Any] | None = None,
               runtime: str | None = None, cid: str | None = None) -> Container:
        """Raises ImageNotFound, AlreadyExists (name in use), InvalidArgument; registry errors when pulling;
        RuntimeFailure if *runtime* is not installed. *cid*: the id chosen ahead (PendingMonitor.cid).

        *pull* is Docker's policy (missing, always, never); *pull_options* go
        to `engine.images.pull` (tls_verify, cert_dir, authfile, credentials).
        *runtime* names the OCI runtime (`imod-runtime`, `runc`, `crun`, or a
        path); unset, the engine's default (runtime_client.choose_runtime).
        """
        from intermodal.containers.create import create_container

        return self._load(create_container(self.engine, self.store, spec, pull=pull, pull_options=pull_options,
                                           runtime=runtime, cid=cid))

    def start(self, name: str, *, attach: bool = False, stdin: int | None = None,
              monitor: PendingMonitor | None = None, console_size: tuple[int, int] | None = None
              ) -> Started | None:
        """Start a created or exited container; None if it was already running.

        Raises RuntimeFailure with Docker's exit code (126 not executable, 127
        not found) when the command cannot be started. *monitor*, from
        `run`, is a monitor process started ahead; it is used or cancelled.
        *console_size* (rows, columns) sizes a `--tty` container's terminal.
        """
        from intermodal.containers.launch import PendingMonitor

        try:
            cid = self.store.resolve(name)
            if monitor is None and st.effective(self.store.read_state(cid)).get("Status") not in st.LIVE:
                monitor = PendingMonitor(attach=attach, stdin=stdin)  # it starts while we prepare
            return self._start(cid, attach, stdin, monitor, console_size)
        finally:
            if monitor is not None and not monitor.used:
                monitor.cancel()

    def _start(self, cid: str, attach: bool, stdin: int | None, monitor: PendingMonitor | None,
               console_size: tuple[int, int] | None) -> Started | None:
        from intermodal.containers.launch import PendingMonitor

        with self.store.locked_existing(cid):
            record = self.store.read_record(cid)
            state = st.effective(self.store.read_state(cid))
            if state.get("Removing"):
                raise IncorrectState(f"container {record['Name']}", "being removed", "created or exited")
            if state.get("Status") in st.LIVE:
                if attach:
                    raise IncorrectState(f"container {record['Name']}", state["Status"], "created or exited")
                return None
            from intermodal.containers.prepare import prepare_start

            prepare_start(self, cid, record, console_size)
            monitor = monitor or PendingMonitor(attach=attach, stdin=stdin)
            started = monitor.go(self.store.dir(cid))
            info = started.info
            if started.ok:
                self.store.update_state(cid, Status="running", Running=True, Paused=False, Restarting=False,
                                        OOMKilled=False, Pid=info["pid"], PidStart=info["start"],
                                        MonitorPid=info["monitor"], MonitorStart=info["monitor_start"],
                                        StartedAt=st.now_rfc3339(), ExitCode=0, Error="", StopRequested=False,
                                        RestartCount=0, Health={"Status": "starting", "FailingStreak": 0,
                                                                "Log": []} if record.get("Healthcheck") else None)
                return started
            self.store.update_state(cid, Status="exited", Running=False, Pid=0, ExitCode=info.get("code", 125),
                                    Error=info.get("error", ""), FinishedAt=st.now_rfc3339())
        err = RuntimeFailure(f"could not start container {record['Name']}: {info.get('error')}")
        err.exit_code = int(info.get("code", 125))
        raise err

    def run(self, spec: ContainerSpec, *, attach: bool = False, stdin: int | None = None,
            console_size: tuple[int, int] | None = None, pull: str = "missing",
            pull_options: dict[str, Any] | None = None, runtime: str | None = None,
            monitor: PendingMonitor | None = None) -> tuple[Container, Started | None]:
        """create + start; on a start failure a `--rm` container is removed again.

        *monitor*: one started ahead by the caller (made with the same *attach* and *stdin*), else ours.
        """
        from intermodal.containers.launch import PendingMonitor

        if monitor is None:
            monitor = PendingMonitor(attach=attach, stdin=stdin, stage=True)  # it starts while we create
        try:
            container = self.create(spec, pull=pull, pull_options=pull_options, runtime=runtime, cid=monitor.cid)
        except BaseException:
            monitor.cancel()
            raise
        try:
            started = self.start(container.id, attach=attach, monitor=monitor, console_size=console_size)
        except RuntimeFailure:
            if spec.auto_remove:
                self._remove_stopped(container.id, volumes=True)
            raise
        return container, started

    # -- stop, kill, restart -------------------------------------------------------

    def stop(self, name: str, *, timeout: int | None = None) -> Container:
        """The stop signal, then SIGKILL after *timeout* seconds (-1: wait for ever)."""
        cid = self.store.resolve(name)
        with self.store.locked_existing(cid):
            record = self.store.read_record(cid)
            state = st.effective(self.store.read_state(cid))
            if state.get("Status") not in st.LIVE:
                return self._load(cid)
            self.store.update_state(cid, StopRequested=True)
        if timeout is None:
            spec_timeout = ContainerSpec.from_json(record["Spec"]).stop_timeout
            timeout = DEFAULT_STOP_TIMEOUT if spec_timeout is None else spec_timeout
        self._terminate(cid, record, int(record.get("StopSignal", _signal.SIGTERM)), timeout)
        return self._load(cid)

    def kill(self, name: str, sig: int = int(_signal.SIGKILL)) -> Container:
        cid = self.store.resolve(name)
        with self.store.locked_existing(cid):
            record = self.store.read_record(cid)
            state = st.effective(self.store.read_state(cid))
            if state.get("Status") not in ("running", "paused"):
                raise IncorrectState(f"container {record['Name']}", state.get("Status", "created"), "running")
            if sig in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, record.get("StopSignal")):
                self.store.update_state(cid, StopRequested=True)  # Docker: a killed container stays down
            self._runtime(record).kill(cid, sig)
        if sig == _signal.SIGKILL:
            self._wait_exited(cid, record, KILL_WAIT)
        return self._load(cid)

    def restart(self, name: str, *, timeout: int | None = None) -> Container:
        self.stop(name, timeout=timeout)
        self.start(name)
        return self.get(name)

    def _terminate(self, cid: str, record: dict[str, Any], sig: int, timeout: float) -> None:
        runtime = self._runtime(record)
        state = st.effective(self.store.read_state(cid))
        if state.get("Status") in ("running", "paused"):
            runtime.kill(cid, sig)
            if state.get("Status") == "paused":
                try:
                    runtime.resume(cid)  # a frozen process takes its signal once thawed
                except RuntimeFailure:
                    pass  # the runtime thawed it to deliver SIGKILL, and it is gone already
        if self._wait_exited(cid, record, None if timeout < 0 else timeout):
            return
        runtime.kill(cid, _signal.SIGKILL)
        if not self._wait_exited(cid, record, KILL_WAIT):
            raise RuntimeFailure(f"container {record['Name']} did not exit {KILL_WAIT:.0f}s after SIGKILL; "
                                 "it may be stuck in the kernel (D state); see `ps` on the host")

    def _wait_exited(self, cid: str, record: dict[str, Any], timeout: float | None) -> bool:
        """Wait until the exit is recorded (by the monitor, or by us if it is gone); False on timeout.

        Raises RuntimeFailure if the container's process is gone and its monitor lives on without
        recording the exit for RECORD_WAIT seconds (a hung monitor: waiting longer would never end).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        unrecorded_since = None
        while True:
            state = self.store.read_state(cid)
            if not state:
                return True  # removed meanwhile
            if state.get("Status") not in st.LIVE:
                return True
            if not st.monitor_alive(state):
                if not st.container_alive(state):
                    self._record_orphan_exit(cid, record)
                    return True
                unrecorded_since = None
            elif _exit_unrecorded(state):
                now = time.monotonic()
                unrecorded_since = now if unrecorded_since is None else unrecorded_since
                if now - unrecorded_since >= RECORD_WAIT:
                    raise RuntimeFailure(
                        f"container {record['Name']} has exited, but its monitor (pid {state.get('MonitorPid')}) "
                        f"has not recorded the exit in {RECORD_WAIT:g}s; see {self.store.dir(cid) / 'monitor.err'}"
                        f", and if the monitor hangs, end it (kill {state.get('MonitorPid')}): the next command "
                        "then records the exit")
            else:
                unrecorded_since = None
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL)

    def _record_orphan_exit(self, cid: str, record: dict[str, Any]) -> None:
        """The monitor is gone and so is the container: clean up the runtime and say what we know."""
        with self.store.lock(cid):
            state = self.store.read_state(cid)
            if not state or state.get("Status") not in st.LIVE or st.monitor_alive(state):
                return
            self._runtime(record).delete(cid, force=True)
            state.update({"Status": "exited", "Running": False, "Paused": False, "Restarting": False, "Pid": 0,
                          "ExitCode": st.UNKNOWN_EXIT, "FinishedAt": st.now_rfc3339(),
                          "Error": "the container's monitor died; its exit code is unknown"})
            self.store.write_state(cid, state)

    def update(self, name: str, *, restart: Any = None, memory: Any = None, cpus: Any = None,
               pids_limit: Any = None) -> Container:
        """`docker update`: change the restart policy and limits, live where the container runs.

        Takes ContainerSpec's values (RestartPolicy, bytes, CPUs, a count) or their text ("always",
        "512m", "1.5"); None leaves a field as it is, 0 lifts a limit (pids_limit: 0 or -1). The
        monitor applies a new restart policy at the container's next exit. Raises ContainerNotFound,
        InvalidArgument, RuntimeFailure (the kernel refused a limit, e.g. memory below the usage).
        """
        from intermodal.containers.update import normalise, update_container

        update_container(self, name, normalise(restart=restart, memory=memory, cpus=cpus, pids_limit=pids_limit))
        return self.get(name)

    # -- pause -----------------------------------------------------------------------

    def pause(self, name: str) -> None:
        self._set_paused(name, True)

    def unpause(self, name: str) -> None:
        self._set_paused(name, False)

    def _set_paused(self, name: str, paused: bool) -> None:
        cid = self.store.resolve(name)
        with self.store.locked_existing(cid):
            record = self.store.read_record(cid)
            state = st.effective(self.store.read_state(cid))
            wanted = "running" if paused else "paused"
            if state.get("Status") != wanted:
                raise IncorrectState(f"container {record['Name']}", state.get("Status", "created"), wanted)
            runtime = self._runtime(record)
            runtime.pause(cid) if paused else runtime.resume(cid)
            self.store.update_state(cid, Status="paused" if paused else "running", Paused=paused)

    # -- networks ------------------------------------------------------------------

    def connect(self, name: str, network: str, *, aliases: tuple[str, ...] | list[str] = (),
                ipv4_address: str | None = None) -> None:
        """`imod network connect`: recorded for the next start, and live where the namespace exists.

        Raises ContainerNotFound, NetworkNotFound, AlreadyExists, Conflict (address taken),
        InvalidArgument (a --network none/host/container:X container).
        """
        from intermodal.containers import net

        net.change(self.engine, self.store, name, network, add=True, aliases=tuple(aliases), ip=ipv4_address)

    def disconnect(self, name: str, network: str, *, force: bool = False) -> None:
        """`imod network disconnect`; with *force* no error if it is not connected. Raises as `connect`."""
        from intermodal.containers import net

        net.change(self.engine, self.store, name, network, add=False, force=force)

    # -- remove, rename --------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False, volumes: bool = False) -> str:
        """Remove a container (stopping it first with *force*); returns its name. Raises ContainerNotFound,
        Conflict (it runs, and no *force*), RuntimeFailure."""
        from intermodal.containers.removal import remove

        return remove(self, name, force=force, volumes=volumes)

    def remove_exited(self, name: str) -> None:
        """Remove a `--rm` container its monitor reported as exited (the monitor itself may still run)."""
        from intermodal.containers.removal import remove_exited

        remove_exited(self, name)

    def _remove_stopped(self, cid: str, *, volumes: bool) -> None:
        from intermodal.containers.removal import remove_stopped

        remove_stopped(self, cid, volumes=volumes)

    def rename(self, name: str, new_name: str) -> None:
        from intermodal.fsutil import check_name

        check_name(new_name, "container")
        cid = self.store.resolve(name)
        with self.store.locked_existing(cid):
            record = self.store.read_record(cid)
            self.store.rename(cid, record["Name"], new_name)
            record["Name"] = new_name
            record["Spec"]["name"] = new_name
            self.store.write_record(cid, record)

    # -- wait, logs, exec ---------------------------------------------------------------

    def wait(self, name: str, *, timeout: float | None = None) -> int:
        """Block until the container is not running; return its exit code."""
        cid = self.store.resolve(name)
        record = self.store.read_record(cid)
        if not self._wait_exited(cid, record, timeout):
            raise RuntimeFailure(f"container {record['Name']} still runs after {timeout}s")
        state = self.store.read_state(cid)
        return int(st.effective(state).get("ExitCode", 0)) if state else 0

    def logs(self, name: str, *, follow: bool = False, tail: int | None = None, since_ns: int | None = None,
             until_ns: int | None = None) -> Iterator[dict[str, Any]]:
        """Log records (`log`, `stream`, `time`), oldest first; with *follow*, until the container stops."""
        from intermodal.containers.output import logs

        return logs(self, name, follow=follow, tail=tail, since_ns=since_ns, until_ns=until_ns)

    def attach(self, name: str) -> Iterator[dict[str, Any]]:
        """`docker attach`, output only: the records the container writes from now on, until it stops.
        Raises ContainerNotFound, IncorrectState (not running); its input is not attached."""
        from intermodal.containers.output import attach

        return attach(self, name)

    def exec(self, name: str, command: list[str], *, env: tuple[tuple[str, str], ...] = (), workdir: str | None = None,
             user: str | None = None, tty: bool = False, detach: bool = False,
             console_size: tuple[int, int] | None = None) -> int:
        """Run a command in a running container with our stdio; its exit code (126/127 as Docker)."""
        import json

        from intermodal.containers.config import resolve_user

        cid = self.store.resolve(name)
        record = self.store.read_record(cid)
        state = st.effective(self.store.read_state(cid))
        if state.get("Status") != "running":
            raise IncorrectState(f"container {record['Name']}", state.get("Status", "created"), "running")
        directory = self.store.dir(cid)
        bundle = json.loads((directory / "bundle" / "config.json").read_bytes())
        process = dict(bundle["process"])
        process["args"] = list(command)
        process["terminal"] = tty
        process.pop("consoleSize", None)
        if tty and console_size:
            process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
        if env:
            keep = [e for e in process["env"] if e.partition("=")[0] not in dict(env)]
            process["env"] = keep + [f"{k}={v}" for k, v in env]
        if workdir:
            process["cwd"] = workdir
        if user:
            u = resolve_user(bundle["root"]["path"], user)
            process["user"] = {"uid": u.uid, "gid": u.gid, **({"additionalGids": list(u.additional_gids)}
                                                           if u.additional_gids else {})}
        return self._runtime(record).exec(cid, process, directory, detach=detach)

    def copy(self, src: str, dest: str, *, stdin: Any = None, stdout: Any = None) -> None:
        """`docker cp`: one of *src*/*dest* is CONTAINER:PATH; '-' on the host side is a tar stream."""
        from intermodal.containers.copy import ContainerFS, copy_in, copy_out, parse_cp_args

        direction, name, container_path, host_path = parse_cp_args(src, dest)
        cid = self.store.resolve(name)
        record = self.store.read_record(cid)
        directory = self.store.dir(cid)
        self.engine.images.store.layers.mount(record["DiffIds"], directory)  # idempotent; after a reboot it is not
        fs = ContainerFS.of(record, directory)
        if direction == "out":
            copy_out(fs, container_path, host_path, stdout)
        else:
            copy_in(fs, host_path, container_path, stdin)

    def commit(self, name: str, reference: str | None = None, *, changes: list[str] | None = None,
               message: str = "", author: str = "", pause: bool = True) -> Any:
        """The container's changes as a new image (returns its ImageRecord); `docker commit`."""
        from intermodal.containers.commit import commit_container

        return commit_container(self, name, reference, changes=changes or [], message=message, author=author,
                                pause=pause)

    def top(self, name: str, ps_args: list[str] | None = None) -> str:
        """`ps` output for the container's processes (default `-ef`, as Docker)."""
        cid = self.store.resolve(name)
        record = self.store.read_record(cid)
        state = st.effective(self.store.read_state(cid))
        if state.get("Status") not in ("running", "paused"):
            raise IncorrectState(f"container {record['Name']}", state.get("Status", "created"), "running")
        return self._runtime(record).ps(cid, ps_args or ["-ef"])

    def prune(self) -> list[str]:
        """Remove every container that is not running; returns their ids."""
        from intermodal.containers.removal import prune

        return prune(self)

    # -- after a reboot ---------------------------------------------------------------

    def start_restartable(self) -> list[str]:
        """Start the containers whose restart policy says so (`imod start --all-restartable`)."""
        from intermodal.containers.restart import restart_at_boot

        started = []
        for c in self.list():
            if c.status not in st.LIVE and restart_at_boot(c.spec.restart, bool(c.state.get("StopRequested"))):
                self.start(c.id)
                started.append(c.name)
        return started


def _exit_unrecorded(state: dict[str, Any]) -> bool:
    """The container's process is gone and the monitor owes the state an exit: it is not merely waiting
    out a restart back-off (`restarting` without a stop request: nothing runs, by design)."""
    if st.container_alive(state):
        return False
    return state.get("Status") != "restarting" or bool(state.get("StopRequested"))
