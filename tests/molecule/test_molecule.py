"""`molecule test` of the example role's scenarios on the intermodal driver.

The driver's instances are containers of a test engine root (IMOD_ROOT), reached through the
intermodal.containers.imod connection plugin: create, converge, idempotence, verify, destroy.
`default` runs in busybox with the host's Python lent read-only; `default-driver` the same on Molecule's
own `default` driver with the intermodal playbooks as its create/destroy; `debian` in a Debian image that
debootstrap makes from this machine's apt mirror (the tar cached in tests/.cache, so only the
first run downloads).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.test_site import network_settings
from tests.support.containers import clean_containers  # noqa: F401 - a fixture, used below
from tests.support.netns import cleanup_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"), pytest.mark.slow,
              pytest.mark.usefixtures("clean_containers")]


@pytest.fixture(autouse=True)
def _needs_molecule():
    if not (BIN / "molecule").exists():
        pytest.skip("needs molecule in the virtualenv (scripts/setup installs the [molecule] extra)")
    if not (ROOT / "collections" / "ansible_collections" / "intermodal" / "containers").exists():
        pytest.skip("needs the collections/ link that scripts/setup makes")


def test_drivers_lists_intermodal():
    proc = subprocess.run([str(BIN / "molecule"), "drivers"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "intermodal" in proc.stdout.split()


@pytest.mark.parametrize("scenario", ["default", "default-driver",
                                      pytest.param("debian", marks=pytest.mark.requires("debootstrap"))])
def test_molecule_test_of_the_webserver_role(scenario: str, engine_root: Path, tmp_path: Path):
    from intermodal.engine import Engine

    settings = network_settings(engine_root)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "IMOD_ROOT": str(engine_root),
           "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
           "MOLECULE_INTERMODAL_CACHE": str(ROOT / "tests" / ".cache")}
    try:
        proc = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, capture_output=True,
                              text=True, env=env, timeout=420)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"molecule test failed ({proc.returncode}):\n{out[-8000:]}"
        for step in ("create", "converge", "idempotence", "verify", "destroy"):
            assert f"{step}: Executed: Successful" in out.replace(" ➜ ", ": "), f"{step} did not run:\n{out[-4000:]}"
        assert Engine(root=engine_root).containers.list() == []  # destroy removed the instance
    finally:
        engine = Engine(root=engine_root)
        if engine.paths.containers.is_dir():
            for c in engine.containers.list():
                engine.containers.remove(c.id, force=True, volumes=True)
        cleanup_engine(engine, settings["table"])


def _molecule(engine_root: Path, tmp_path: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "IMOD_ROOT": str(engine_root),
           "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")}
    return subprocess.run([str(BIN / "molecule"), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=420)


def _exec(engine_root: Path, name: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "imod"), "--root", str(engine_root), "exec", name, "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)


def _capabilities(engine_root: Path, name: str) -> int:
    status = _exec(engine_root, name, "cat /proc/self/status").stdout
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)


CAP_CHOWN, CAP_NET_ADMIN, CAP_SYS_ADMIN = 0, 12, 21


def test_platforms_take_the_docker_drivers_container_options(engine_root: Path, tmp_path: Path):
    """`molecule create -s options`: each option is checked on the running instance, then destroy."""
    from intermodal.engine import Engine

    settings = network_settings(engine_root)
    engine = Engine(root=engine_root)
    try:
        # Molecule keeps a scenario's state (created or not) in ~/.cache/molecule: destroy resets it.
        reset = _molecule(engine_root, tmp_path, "destroy", "-s", "options")
        assert reset.returncode == 0, (reset.stdout + reset.stderr)[-6000:]
        created = _molecule(engine_root, tmp_path, "create", "-s", "options")
        assert created.returncode == 0, (created.stdout + created.stderr)[-6000:]
        a = engine.containers.inspect("options-a")
        assert a["State"]["Running"] and a["Config"]["Labels"]["purpose"] == "options"
        assert _exec(engine_root, "options-a", 'echo "$GREETING"').stdout == "hello from options-a\n"
        assert _exec(engine_root, "options-a", "hostname; pwd").stdout == "alpha\n/scenario\n"
        assert "molecule-intermodal" in _exec(engine_root, "options-a", "cat molecule.yml").stdout
        assert _exec(engine_root, "options-a", "touch /scenario/x").returncode != 0  # read-only bind
        assert " /scratch tmpfs " in _exec(engine_root, "options-a", "cat /proc/mounts").stdout
        assert _capabilities(engine_root, "options-a") >> CAP_SYS_ADMIN & 1  # privileged
        assert a["HostConfig"]["PidsLimit"] == 64
        assert engine.containers.inspect("options-b")["State"]["Running"]
        caps = _capabilities(engine_root, "options-b")
        assert caps >> CAP_NET_ADMIN & 1 and not caps >> CAP_CHOWN & 1 and not caps >> CAP_SYS_ADMIN & 1
        assert _exec(engine_root, "options-b", "touch /x").returncode != 0  # read_only
        assert "192.0.2.10" in _exec(engine_root, "options-b", "grep registry.example /etc/hosts").stdout
        assert "nameserver 192.0.2.53" in _exec(engine_root, "options-b", "cat /etc/resolv.conf").stdout
        assert "init" in _exec(engine_root, "options-b", "cat /proc/1/comm").stdout  # docker-init, not sh
        # Both on the platform network, which create made: b reaches a by its address there.
        address = a["NetworkSettings"]["Networks"]["molecule-options"]["IPAddress"]
        assert _exec(engine_root, "options-b", f"ping -c1 -W5 {address}").returncode == 0

        destroyed = _molecule(engine_root, tmp_path, "destroy", "-s", "options")
        assert destroyed.returncode == 0, (destroyed.stdout + destroyed.stderr)[-6000:]
        assert engine.containers.list() == []
        assert [n.name for n in engine.networks.list() if not n.default] == []
    finally:
        if engine.paths.containers.is_dir():
            for c in engine.containers.list():
                engine.containers.remove(c.id, force=True, volumes=True)
        cleanup_engine(engine, settings["table"])


def test_a_platform_option_the_driver_lacks_fails_naming_it(engine_root: Path, tmp_path: Path):
    scenario = tmp_path / "project" / "molecule" / "intermodal-unknown-option"
    scenario.mkdir(parents=True)
    (scenario / "molecule.yml").write_text(
        "driver: {name: molecule-intermodal}\n"
        "platforms:\n  - {name: unknown-a, image: 'intermodal/busybox:latest', sysctls: {net.ipv4.ip_forward: 1}}\n"
        "provisioner: {name: ansible}\n")
    try:
        proc = _molecule(engine_root, tmp_path, "create", "-s", "intermodal-unknown-option", cwd=tmp_path / "project")
    finally:  # Molecule's state of the scenario, named after the (temporary) project's path
        for state in (Path.home() / ".ansible" / "tmp").glob("molecule.*.intermodal-unknown-option"):
            shutil.rmtree(state, ignore_errors=True)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, out[-4000:]
    assert "platform unknown-a: the intermodal driver has no option sysctls" in out
    from intermodal.engine import Engine

    assert not Engine(root=engine_root).containers.exists("unknown-a")
