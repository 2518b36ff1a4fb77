"""A throwaway Salt configuration: config dir, file root and Salt's own root in one short temp dir.

Used by the tests and by bench/salt.py. `root_dir` keeps everything Salt
writes (pki, cache, sockets, logs) inside the temp dir, never under
/etc/salt or /var/cache/salt; the minion option `intermodal.root` names the
engine root the execution module and the states use. The temp dir is short
(/tmp/imod-salt-*) because Salt's unix sockets live under it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
CALL_TIMEOUT = 120


def salt_bin(name: str) -> Path | None:
    exe = BIN / name
    return exe if exe.exists() else None


@dataclass
class SaltEnv:
    base: Path
    engine_root: Path

    @property
    def conf(self) -> Path:
        return self.base / "conf"

    @property
    def srv(self) -> Path:
        return self.base / "srv"

    @classmethod
    def make(cls, engine_root: Path, minion_id: str = "imod-test", extra: str = "") -> SaltEnv:
        base = Path(tempfile.mkdtemp(prefix="imod-salt-", dir="/tmp"))
        env = cls(base, engine_root)
        env.conf.mkdir()
        env.srv.mkdir()
        (env.conf / "minion").write_text(textwrap.dedent(f"""\
            id: {minion_id}
            file_client: local
            root_dir: {base / 'root'}
            file_roots: {{base: [{env.srv}]}}
            log_level_logfile: warning
            intermodal.root: {engine_root}
            """) + extra)
        return env

    def sls(self, name: str, text: str) -> None:
        (self.srv / f"{name}.sls").write_text(textwrap.dedent(text))

    def call(self, *args: str, check: bool = True) -> tuple[int, Any]:
        """`salt-call --local ARGS --out json`; (exit code, the `local` value, or the error salt-call printed)."""
        proc = run_bounded([str(salt_bin("salt-call")), "--local", "--config-dir", str(self.conf), "--out", "json",
                            "--log-level", "quiet", "--retcode-passthrough", *args], timeout=CALL_TIMEOUT)
        try:
            data = json.loads(proc.stdout)["local"] if proc.stdout.strip() else None
        except (ValueError, KeyError):
            raise AssertionError(f"salt-call {' '.join(args)}: no JSON:\n{proc.stdout}\n{proc.stderr}") from None
        if data is None:
            data = proc.stderr.strip()
        if check and proc.returncode != 0:
            raise AssertionError(f"salt-call {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{json.dumps(data, indent=1)[-6000:]}\n{proc.stderr[-2000:]}")
        return proc.returncode, data

    def apply(self, sls: str, *args: str, check: bool = True) -> dict[str, dict[str, Any]]:
        """state.apply; the returns keyed by state id (`__id__`)."""
        _, data = self.call("state.apply", sls, *args, check=check)
        return by_id(data)

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def run_bounded(argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run *argv* and wait at most *timeout* seconds; a process that does not return fails with what it said.

    Output goes to files, not pipes: the wait is for the process itself, never for one that inherited its
    output (a container monitor, a helper the engine forks). On timeout the processes under it are listed
    (state, kernel wait channel, command), its Python threads' stacks are dumped (faulthandler on SIGABRT),
    it is killed, and AssertionError carries all of that.
    """
    import os
    import signal

    env = {**(os.environ if env is None else env), "PYTHONFAULTHANDLER": "1"}  # SIGABRT: every thread's stack
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            tree = process_tree(proc.pid)
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.seek(0)
            err.seek(0)
            raise AssertionError(f"{' '.join(argv)} did not return within {timeout}s.\nProcesses under it:\n{tree}\n"
                                 f"stdout:\n{out.read()[-4000:]}\nstderr (its threads' stacks at the end):\n"
                                 f"{err.read()[-12000:]}") from None
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def process_tree(pid: int) -> str:
    """PID, state, kernel wait channel and command line of *pid* and every process under it."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    lines, todo = [], [(pid, 0)]
    while todo and len(lines) < 200:
        p, depth = todo.pop()
        try:
            state = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()[0]
            wchan = Path(f"/proc/{p}/wchan").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:
            continue
        lines.append(f"{'  ' * depth}{p} {state} {wchan} {cmd}")
        todo += [(c, depth + 1) for c in children.get(p, ())]
    return "\n".join(lines)


def by_id(data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise AssertionError(f"not a state return: {data!r}")
    return {ret["__id__"]: ret for ret in data.values()}
