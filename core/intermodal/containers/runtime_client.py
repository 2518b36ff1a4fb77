"""The seam between the engine and an OCI runtime, spoken through the OCI CLI.

Every runtime that implements the OCI command line (`create`, `start`,
`state`, `kill`, `delete`, `exec`, `pause`, `resume`) fits: runc, and
intermodal's own `imod-runtime` once it is complete (crun 1.8 refuses this
machine's hybrid cgroup layout). The runtime is chosen once per container at
create time (``IMOD_RUNTIME`` names a binary) and kept in its record, so the
same runtime that created a container also deletes it.

The monitor starts containers (`create`/`start`) itself, from the argv
prefix this module gives it; everything else goes through here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from intermodal.errors import RuntimeFailure

DEFAULT_RUNTIMES = ("runc",)


def choose_runtime() -> str:
    """The runtime binary for new containers: $IMOD_RUNTIME, else runc."""
    wanted = os.environ.get("IMOD_RUNTIME")
    for name in ([wanted] if wanted else DEFAULT_RUNTIMES):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeFailure(f"no OCI runtime found (looked for {wanted or ', '.join(DEFAULT_RUNTIMES)}); "
                         "install runc (scripts/setup does) or set IMOD_RUNTIME to a runtime binary")


class OciRuntime:
    def __init__(self, binary: str, state_root: Path) -> None:
        self.binary = binary
        self.state_root = state_root

    @property
    def base(self) -> list[str]:
        """The argv prefix every call starts with (the monitor uses it too)."""
        return [self.binary, "--root", str(self.state_root)]

    def _run(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
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
        return json.loads(proc.stdout)

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
            entry = json.loads(line)
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
