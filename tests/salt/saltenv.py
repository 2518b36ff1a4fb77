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
        # Output to files, not pipes: the wait is for salt-call itself, never for a process that inherited
        # its output (a container monitor, a helper the engine forks).
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            code = subprocess.run([str(salt_bin("salt-call")), "--local", "--config-dir", str(self.conf),
                                   "--out", "json", "--log-level", "quiet", "--retcode-passthrough", *args],
                                  stdout=out, stderr=err, timeout=CALL_TIMEOUT, stdin=subprocess.DEVNULL).returncode
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(args, code, out.read(), err.read())
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


def by_id(data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise AssertionError(f"not a state return: {data!r}")
    return {ret["__id__"]: ret for ret in data.values()}
