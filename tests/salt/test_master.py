"""A real salt-master and salt-minion on 127.0.0.1: the key accepted, `salt '*' state.apply` converges, then
is idempotent. Config, keys and sockets in a temp dir, free ports, every process stopped by its group's PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from tests.salt.saltenv import SaltEnv, by_id, run_bounded, salt_bin

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

MINION = "imod-minion"
START_WAIT = 90  # seconds for the minion's key to appear and for it to answer
STOP_WAIT = 15


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Daemons:
    """salt-master and salt-minion, each in its own process group (its leader's PID) so that stopping the
    group stops the workers they fork."""

    def __init__(self, env: SaltEnv) -> None:
        self.env = env
        self.procs: list[subprocess.Popen] = []
        publish, ret = _free_ports(2)
        self.master_conf = env.base / "master-conf"
        self.master_conf.mkdir()
        (self.master_conf / "master").write_text(textwrap.dedent(f"""\
            interface: 127.0.0.1
            publish_port: {publish}
            ret_port: {ret}
            root_dir: {env.base / 'master-root'}
            file_roots: {{base: [{env.srv}]}}
            log_level_logfile: info
            worker_threads: 2
            """))
        self.minion_conf = env.base / "minion-conf"
        self.minion_conf.mkdir()
        (self.minion_conf / "minion").write_text(textwrap.dedent(f"""\
            id: {MINION}
            master: 127.0.0.1
            master_port: {ret}
            publish_port: {publish}
            root_dir: {env.base / 'minion-root'}
            log_level_logfile: info
            acceptance_wait_time: 1
            random_reauth_delay: 0
            intermodal.root: {env.engine_root}
            """))

    def start(self) -> None:
        for exe, conf in (("salt-master", self.master_conf), ("salt-minion", self.minion_conf)):
            self.procs.append(subprocess.Popen([str(salt_bin(exe)), "--config-dir", str(conf), "--log-level", "quiet"],
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, start_new_session=True))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop_group(proc)

    def salt(self, *args: str, wait: int = 60) -> subprocess.CompletedProcess:
        """The `salt` CLI, waiting up to *wait* seconds for the minion's return."""
        return self._run("salt", "--timeout", str(wait), "--out", "json", "--static", *args, timeout=wait + 60)

    def key(self, *args: str) -> subprocess.CompletedProcess:
        return self._run("salt-key", *args, timeout=30)

    def _run(self, exe: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
        """Bounded: a CLI that does not return fails with its output and its threads' stacks."""
        return run_bounded([str(salt_bin(exe)), "--config-dir", str(self.master_conf), *args], timeout=timeout)

    def logs(self) -> str:
        out = []
        for name in ("master", "minion"):  # Salt's default log files, under each root_dir
            path = self.env.base / f"{name}-root" / "var" / "log" / "salt" / name
            out.append(f"--- {name}\n" + (path.read_text()[-3000:] if path.exists() else "(none)"))
        return "\n".join(out)


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_WAIT), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; workers of its group may still be stopping.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.1)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(what: str, check, daemons: Daemons) -> None:
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {START_WAIT}s\n{daemons.logs()}")


@pytest.fixture
def daemons(engine_root: Path):
    if salt_bin("salt-master") is None or salt_bin("salt-minion") is None:
        pytest.skip("needs salt-master and salt-minion in the virtualenv (the [salt] extra)")
    env = SaltEnv.make(engine_root)
    d = Daemons(env)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        left = [p.pid for p in d.procs if _group_alive(p.pid)]
        env.remove()
        assert not left, f"salt process groups still alive: {left}"


def test_highstate_from_a_master(daemons: Daemons, busybox_archive: Path):
    def key_pending() -> bool:
        proc = daemons.key("--list", "unaccepted", "--out", "json")
        return proc.returncode == 0 and MINION in json.loads(proc.stdout or "{}").get("minions_pre", [])

    _until("the minion's key was not offered to the master", key_pending, daemons)
    accepted = daemons.key("--accept", MINION, "--yes", "--out", "json")
    assert accepted.returncode == 0, accepted.stderr

    def answers() -> bool:
        proc = daemons.salt(MINION, "intermodal.version", wait=5)
        return proc.returncode == 0 and json.loads(proc.stdout or "{}").get(MINION, {}).get("Root") == str(
            daemons.env.engine_root)

    _until("the minion did not answer intermodal.version", answers, daemons)
    daemons.env.sls("top", "base:\n  '*':\n    - app\n")
    daemons.env.sls("app", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        app-data:
          intermodal_volume.present:
            - labels: {{app: web}}
        web:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
            - binds: [app-data:/data]
            - require:
              - intermodal_image: busybox
              - intermodal_volume: app-data
        """)

    def highstate(*args: str) -> dict:
        proc = daemons.salt("*", "state.apply", *args)
        assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n{daemons.logs()}"
        return by_id(json.loads(proc.stdout)[MINION])

    check = highstate("test=True")
    assert {k: r["result"] for k, r in check.items()} == {"busybox": None, "app-data": None, "web": None}
    first = highstate()
    assert all(r["result"] is True for r in first.values()), first
    assert first["web"]["changes"] == {"state": {"old": "absent", "new": "running"}}
    assert first["app-data"]["changes"] == check["app-data"]["changes"]
    again = highstate()
    assert all(r["result"] is True and r["changes"] == {} for r in again.values()), again
    ps = daemons.salt("*", "intermodal.ps")
    assert [c["Name"] for c in json.loads(ps.stdout)[MINION]] == ["web"]
