"""The main job: `ansible-playbook site.yml` from the repository root, on a test engine root and port.

First run converges (the engine role, a base image built from busybox-static, an image built from the
web server role's Dockerfile template, a network, a volume, a healthy container), the page answers on
127.0.0.1, a second run changes nothing, `-e state=absent` removes it all.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.ansible.conftest import PLAYBOOK_TIMEOUT, ROOT, ansible_playbook
from tests.support.netns import cleanup_engine, engine_settings, free_subnets, leaks, snapshot

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"), pytest.mark.slow,
              pytest.mark.usefixtures("clean_containers")]


def network_settings(root: Path) -> dict:
    """The root's test network names (its own nft table and bridges), made here unless a fixture made them."""
    config = root / "networks" / "config.json"
    return json.loads(config.read_text()) if config.exists() else engine_settings(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _site(tmp_path: Path, variables: dict, *args: str) -> str:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    proc = subprocess.run([str(ansible_playbook()), "site.yml", "-e", json.dumps(variables), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=PLAYBOOK_TIMEOUT)
    assert proc.returncode == 0, f"site.yml failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _changed(stdout: str) -> int:
    found = re.search(r"localhost\s*:.*\bchanged=(\d+).*\bfailed=0\b", stdout)
    assert found, f"no recap with failed=0 in:\n{stdout[-3000:]}"
    return int(found.group(1))


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode()


def test_site_converges_then_changes_nothing_then_goes(engine_root: Path, tmp_path: Path):
    from intermodal.engine import Engine

    settings = network_settings(engine_root)
    before = snapshot()
    port = _free_port()
    variables = {"intermodal_root": str(engine_root), "web_port": port, "web_subnet": free_subnets(1)[0],
                 "webserver_context_dir": str(tmp_path / "context"),
                 "intermodal_engine_unit_dir": str(tmp_path / "units"), "intermodal_engine_link_cli": False}
    ours = [settings["table"], settings["bridge_prefix"], settings["default_bridge"]]  # other tests run beside
    try:
        first = _site(tmp_path, variables)
        assert _changed(first) > 0
        assert _get(port) == "hello from intermodal\n"
        unit = (tmp_path / "units" / "intermodal.service").read_text()
        assert f"--root {engine_root} start --all-restartable" in unit
        assert (tmp_path / "units" / "multi-user.target.wants" / "intermodal.service").is_symlink()
        engine = Engine(root=engine_root)
        web = engine.containers.inspect("web")
        assert web["State"]["Health"]["Status"] == "healthy"
        ours.append(settings["veth_prefix"])

        assert _changed(_site(tmp_path, variables)) == 0
        assert _get(port) == "hello from intermodal\n"

        _site(tmp_path, variables, "-e", "state=absent")
        assert not engine.containers.exists("web")
        assert engine.images.list() == []
        assert [n.name for n in engine.networks.list() if not n.default] == []
        with pytest.raises(OSError):
            _get(port)
    finally:
        engine = Engine(root=engine_root)
        if engine.paths.containers.is_dir():
            for c in engine.containers.list():
                engine.containers.remove(c.id, force=True, volumes=True)
        cleanup_engine(engine, settings["table"])
    left = [leak for leak in leaks(before, settings["table"]) if any(name in leak for name in ours)]
    assert not left, f"left behind by site.yml: {left}"


# -- the engine role on its own: kernel checks, argument specs, an install into a fresh venv ------------

ROLE_PLAY = """\
- name: The engine role alone
  hosts: localhost
  gather_facts: false
  roles: [intermodal.containers.engine]
"""


def _role(tmp_path: Path, variables: dict) -> subprocess.CompletedProcess:
    play = tmp_path / "engine-role.yml"
    play.write_text(ROLE_PLAY)
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    local = {"intermodal_engine_unit_dir": str(tmp_path / "units"), "intermodal_engine_link_cli": False}
    return subprocess.run([str(ansible_playbook()), str(play), "-e", json.dumps({**local, **variables})], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=PLAYBOOK_TIMEOUT)


def test_engine_role_fails_naming_the_missing_kernel_features(tmp_path: Path):
    (tmp_path / "filesystems").write_text("nodev\tsysfs\nnodev\tproc\n\text4\n")  # no overlay
    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "net").touch()  # the others are missing
    (tmp_path / "cgroup").mkdir()
    proc = _role(tmp_path, {"intermodal_engine_kernel_filesystems": str(tmp_path / "filesystems"),
                            "intermodal_engine_kernel_ns_dir": str(tmp_path / "ns"),
                            "intermodal_engine_kernel_cgroup_dir": str(tmp_path / "cgroup")})
    out = " ".join(proc.stdout.split())  # the message is folded over lines in the output
    assert proc.returncode == 2, out[-3000:]
    assert "intermodal cannot run containers on this host, the kernel lacks: overlayfs: not in" in out
    for ns in ("mnt", "pid", "uts", "ipc"):
        assert f"namespaces: no {ns} namespace" in out
    assert "no net namespace" not in out
    assert f"cgroups: no cgroup v2 or v1 hierarchy under {tmp_path / 'cgroup'}" in out
    assert "Fix these" in out
    assert not (tmp_path / "units").exists()  # it stopped before installing anything


def test_engine_role_rejects_an_argument_of_the_wrong_type(tmp_path: Path):
    proc = _role(tmp_path, {"intermodal_engine_unit": "perhaps", "intermodal_engine_packages": {"python3": 1}})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Validating arguments against arg spec 'main'" in out
    assert "intermodal_engine_unit" in out and "unable to convert to bool" in out
    assert "intermodal_engine_packages" in out and "list" in out
    assert not (tmp_path / "units").exists()


def test_engine_role_installs_a_wheel_into_a_fresh_venv_once(tmp_path: Path):
    """A wheel of this source, installed offline (the dependencies are not: no index in a test)."""
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(wheels), str(ROOT)], capture_output=True, text=True,
                           timeout=PLAYBOOK_TIMEOUT)
    if build.returncode != 0 and "setuptools" in build.stderr:
        pytest.skip(f"the wheel needs setuptools>=77 in the venv (the [test] extra): {build.stderr[-500:]}")
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("intermodal-*.whl"))
    venv = tmp_path / "venv"
    variables = {"intermodal_engine_venv": str(venv), "intermodal_engine_source": str(wheel),
                 "intermodal_engine_pip_args": ["--no-deps", "--no-index"], "intermodal_engine_link_cli": True,
                 "intermodal_engine_cli_link": str(tmp_path / "bin" / "imod"),
                 "intermodal_engine_root": str(tmp_path / "engine"), "intermodal_engine_set_interpreter": False}
    (tmp_path / "bin").mkdir()

    first = _role(tmp_path, variables)
    assert first.returncode == 0, first.stdout[-4000:]
    assert _changed(first.stdout) > 0
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.metadata as m, intermodal.engine as e; print(m.version('intermodal'), "
                            "e.__file__)"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    version, where = probe.stdout.split()
    assert version == "0.1.0" and where.startswith(str(venv))  # the venv's copy, not this checkout
    assert os.readlink(tmp_path / "bin" / "imod") == str(venv / "bin" / "imod")
    unit = (tmp_path / "units" / "intermodal.service").read_text()
    assert f"ExecStart={venv}/bin/imod --root {tmp_path / 'engine'} start --all-restartable" in unit

    second = _role(tmp_path, variables)
    assert second.returncode == 0, second.stdout[-4000:]
    assert _changed(second.stdout) == 0

    missing = _role(tmp_path, {**variables, "intermodal_engine_venv": str(tmp_path / "venv2"),
                               "intermodal_engine_source": str(tmp_path / "no-such-source")})
    out = " ".join(missing.stdout.split())
    assert missing.returncode == 2, out[-3000:]
    assert f"intermodal_engine_source {tmp_path / 'no-such-source'} is not on localhost" in out
    assert not (tmp_path / "venv2").exists()
