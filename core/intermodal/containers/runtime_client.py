"""The seam between the engine and an OCI runtime: one interface, two ways to drive it.

intermodal's own runtime (`intermodal.runtime`, CLI `imod-runtime`) is the
default and is called in-process (`InProcessRuntime`): no interpreter
start-up per verb, and the monitor that creates a container is its parent
and reaps it. Any runtime with the OCI command line (`create`, `start`,
`state`, `kill`, `delete`, `exec`, `pause`, `resume`, `ps`) fits through
`OciRuntime`: runc, crun (crun 1.8 refuses this machine's hybrid cgroup
layout), or `imod-runtime` by path.

The runtime is chosen once per container at create time and kept in its
record (`Runtime`: ``imod-runtime``, or a binary's path), so the runtime that
created a container also deletes it. The choice, first that is set:
``--runtime`` (per container), ``$IMOD_RUNTIME``, ``runtime`` in
``ROOT/engine.json``, else ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from intermodal import cjson  # json's C half, without re and enum
from intermodal.errors import IntermodalError, RuntimeFailure

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    import subprocess
    from typing import Any

BUILTIN = "imod-runtime"
CONFIG_FILE = "engine.json"  # under the engine root: {"runtime": "runc"}


def choose_runtime(wanted: str | None = None, root: Path | None = None) -> str:
    """The runtime for a new container, as its record keeps it: ``imod-runtime`` or a binary's absolute path.

    Raises RuntimeFailure if the runtime asked for is not installed."""
    name = wanted or os.environ.get("IMOD_RUNTIME") or (configured_runtime(root) if root else None) or BUILTIN
    if name == BUILTIN:
        return BUILTIN
    import shutil

    path = shutil.which(name)
    if path is None:
        raise RuntimeFailure(f"OCI runtime {name!r} not found; install it (runc, crun), give its path, "
                             f"or leave --runtime/IMOD_RUNTIME unset for intermodal's own ({BUILTIN})")
    return os.path.abspath(path)


def default_runtime(root: Path) -> str:
    """The name new containers get without --runtime (for `imod info`; not checked for being installed)."""
    try:
        name = os.environ.get("IMOD_RUNTIME") or configured_runtime(root) or BUILTIN
    except RuntimeFailure:
        name = BUILTIN + " (ROOT/engine.json unreadable)"
    return os.path.basename(name)


def configured_runtime(root: Path) -> str | None:
    """The engine-wide default in ROOT/engine.json, if that file says one."""
    path = root / CONFIG_FILE
    try:
        data = cjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise RuntimeFailure(f"cannot read {path} ({err}); fix it or remove it") from None
    value = data.get("runtime") if isinstance(data, dict) else None
    if value is not None and not isinstance(value, str):
        raise RuntimeFailure(f'{path}: "runtime" must be a name or path, like "runc"; fix it')
    return value or None


def runtime_for(name: str, run_root: Path) -> InProcessRuntime | OciRuntime:
    """The runtime a container's record names; each keeps its state under RUN_ROOT/runtime/<name>."""
    state_root = run_root / "runtime" / os.path.basename(name)
    if name == BUILTIN:
        return InProcessRuntime(state_root)
    return OciRuntime(name, state_root)


def cli_argv() -> list[str]:
    """How to run our runtime's CLI (the healthcheck's `exec` uses it): the script beside our Python."""
    script = Path(sys.executable).parent / BUILTIN
    if script.exists():
        return [str(script)]
    import shutil

    found = shutil.which(BUILTIN)
    return [found] if found else [os.path.realpath(sys.executable), "-m", "intermodal.runtime.cli"]


class InProcessRuntime:
    """intermodal's runtime, called in-process with the same verbs as `OciRuntime`."""

    inprocess = True

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self.binary = BUILTIN

    @property
    def base(self) -> list[str]:
        """The CLI over the same state (for the monitor's healthcheck `exec`)."""
        return [*cli_argv(), "--root", str(self.state_root)]

    def _runtime(self):
        from intermodal.runtime.container import Runtime

        return Runtime(self.state_root)

    def _get(self, cid: str):
        return self._runtime().get(cid)  # raises ContainerNotFound

    def state(self, cid: str) -> dict[str, Any] | None:
        from intermodal.errors import ContainerNotFound

        try:
            return self._get(cid).state()
        except ContainerNotFound:
            return None

    def kill(self, cid: str, sig: int, *, all_processes: bool = False) -> bool:
        """Send *sig*; False if the container is already gone."""
        from intermodal.errors import ContainerNotFound, IncorrectState

        try:
            self._get(cid).kill(sig, all_processes=all_processes)
        except (ContainerNotFound, IncorrectState, ProcessLookupError):
            return False
        except (IntermodalError, OSError) as err:
            raise RuntimeFailure(f"could not send signal {sig} to container {cid[:12]}: {err}") from None
        return True

    def delete(self, cid: str, *, force: bool = False) -> None:
        if not (self.state_root / cid).exists():
            return
        from intermodal.errors import ContainerNotFound

        try:
            self._runtime().delete(cid, force=force)
        except ContainerNotFound:
            return  # another process deleted it meanwhile
        except (IntermodalError, OSError) as err:
            raise RuntimeFailure(f"could not delete container {cid[:12]} from the runtime: {err}; "
                                 "stop it first, or use --force") from None

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """Change a running container's limits (OCI linux.resources: memory, cpu, pids) in its cgroup."""
        try:
            rec = self._get(cid).record()
            if not rec.cgroup_paths:
                raise RuntimeFailure(f"container {cid[:12]} has no cgroup whose limits could change")
            from intermodal.runtime.cgroups import manager_from_paths

            manager_from_paths(rec.cgroup_paths).update(resources)
        except (IntermodalError, OSError) as err:
            raise RuntimeFailure(f"could not update the limits of container {cid[:12]}: {err}") from None

    def ps(self, cid: str, ps_args: list[str]) -> str:
        from intermodal.runtime.ps import table

        return table(self._call(cid, "ps"), ps_args)

    def pause(self, cid: str) -> None:
        self._call(cid, "pause")

    def resume(self, cid: str) -> None:
        self._call(cid, "resume")

    def _call(self, cid: str, verb: str) -> Any:
        try:
            return getattr(self._get(cid), verb)()
        except (IntermodalError, OSError) as err:
            raise RuntimeFailure(f"{verb} of container {cid[:12]} failed: {err}") from None

    def exec(self, cid: str, process: dict[str, Any], workdir: Path, *, detach: bool = False) -> int:
        """Run *process* in the container with our stdio; its exit code (126/127 as Docker when it cannot run).

        A terminal (`process.terminal`) comes back over a console socket and
        is copied to and from ours, as `runc exec -t` does without one.
        """
        from intermodal.runtime import spec as spec_mod

        proc = spec_mod.parse_process(process)
        console = _ExecConsole(workdir) if proc.terminal else None
        try:
            ctr = self._get(cid)
            pid = ctr.exec(proc, detach=True, console_socket=console.address if console else None)
        except (IntermodalError, OSError) as err:
            if console:
                console.close()
            code = command_exit_code(str(err))
            failure = RuntimeFailure(f"cannot run {process['args'][0]!r} in container {cid[:12]}: {err}")
            failure.exit_code = code or 126
            raise failure from None
        if detach:
            if console:
                console.close()
            return 0
        if console:
            try:
                console.copy(pid)
            finally:
                console.close()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


class _ExecConsole:
    """`exec -t` without a caller's console socket: receive the pty master and copy it to our terminal."""

    def __init__(self, workdir: Path) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.address = f"@intermodal-exec-{os.getpid()}-{os.urandom(4).hex()}"
        self.sock.bind("\0" + self.address[1:])
        self.sock.listen(1)
        self.master = -1

    def copy(self, pid: int) -> None:
        import select
        import termios
        import tty

        from intermodal.runtime.console import receive

        conn, _ = self.sock.accept()
        with conn:
            self.master, _path = receive(conn)
        saved = termios.tcgetattr(0) if os.isatty(0) else None
        if saved is not None:
            tty.setraw(0)
        try:
            inputs = [0, self.master]
            while True:
                ready, _, _ = select.select(inputs, [], [])
                if 0 in ready:
                    data = os.read(0, 65536)
                    if data:
                        os.write(self.master, data)
                    else:
                        inputs.remove(0)
                if self.master in ready:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:  # EIO: the process closed its side
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)

    def close(self) -> None:
        self.sock.close()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


class OciRuntime:
    """Another OCI runtime (runc, crun), driven through its command line."""

    inprocess = False

    def __init__(self, binary: str, state_root: Path) -> None:
        self.binary = binary
        self.state_root = state_root

    @property
    def base(self) -> list[str]:
        """The argv prefix every call starts with (the monitor uses it too)."""
        return [self.binary, "--root", str(self.state_root)]

    def _run(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        import subprocess

        proc = subprocess.run([*self.base, *args], capture_output=True, input=input)
        if check and proc.returncode != 0:
            raise RuntimeFailure(f"{os.path.basename(self.binary)} {args[0]} failed: {_message(proc.stderr)}")
        return proc

    def state(self, cid: str) -> dict[str, Any] | None:
        """The runtime's view (`status`: created, running, paused, stopped), or None if it has no such container."""
        if not (self.state_root / cid).exists():
            return None
        proc = self._run("state", cid, check=False)
        if proc.returncode != 0:
            return None
        return cjson.loads(proc.stdout)

    def kill(self, cid: str, sig: int, *, all_processes: bool = False) -> bool:
        """Send *sig*; False if the container is already gone."""
        args = ["kill", *(["--all"] if all_processes else []), cid, str(sig)]
        proc = self._run(*args, check=False)
        if proc.returncode == 0:
            return True
        text = _message(proc.stderr)
        if "not running" in text or "does not exist" in text or "process already finished" in text:
            return False
        raise RuntimeFailure(f"could not send signal {sig} to container {cid[:12]}: {text}")

    def delete(self, cid: str, *, force: bool = False) -> None:
        if not (self.state_root / cid).exists():
            return
        proc = self._run("delete", *(["--force"] if force else []), cid, check=False)
        if proc.returncode != 0 and (self.state_root / cid).exists():
            raise RuntimeFailure(f"could not delete container {cid[:12]} from the runtime: {_message(proc.stderr)}; "
                                 "stop it first, or use --force")

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """`runc update --resources -`: the OCI linux.resources to change, on stdin."""
        self._run("update", "--resources", "-", cid, input=cjson.dumps(resources).encode())

    def ps(self, cid: str, ps_args: list[str]) -> str:
        """The runtime runs the host's `ps` and keeps the container's processes (`runc ps ID ARGS`)."""
        return self._run("ps", cid, *ps_args).stdout.decode(errors="replace")

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def exec(self, cid: str, process: dict[str, Any], workdir: Path, *, detach: bool = False) -> int:
        """Run *process* (an OCI `process` object) in the container with our stdio; returns its exit code.

        The runtime's own errors go to a log file, so that a process that
        could not be started gives Docker's 126/127 and not the runtime's 1.
        """
        import subprocess

        from intermodal.containers.store import write_json

        token = os.urandom(4).hex()
        process_file, log_file = workdir / f"exec-{token}.json", workdir / f"exec-{token}.log"
        write_json(process_file, process)
        try:
            args = [self.binary, "--root", str(self.state_root), "--log", str(log_file), "--log-format", "json",
                    "exec", "--process", str(process_file), *(["--detach"] if detach else []), cid]
            code = subprocess.run(args, stderr=subprocess.PIPE if detach else None).returncode
            error = runtime_log_error(log_file) if code != 0 else None
        finally:
            process_file.unlink(missing_ok=True)
            log_file.unlink(missing_ok=True)
        if error is None:
            return code
        return command_exit_code(error) or 126


def runtime_log_error(path: Path) -> str | None:
    """The last error a runtime wrote to its JSON log (`--log-format json`)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = cjson.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return None


def command_exit_code(message: str) -> int | None:
    text = message.lower()
    if "executable file not found" in text or "no such file or directory" in text:
        return 127
    if "permission denied" in text or "exec format error" in text or "is a directory" in text:
        return 126
    return None


def _message(stderr: bytes) -> str:
    """The runtime's error without its log decoration (`time=... level=error msg="..."`)."""
    text = stderr.decode(errors="replace").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no error message"
    last = lines[-1]
    marker = 'msg="'
    if marker in last:
        last = last.split(marker, 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return last
