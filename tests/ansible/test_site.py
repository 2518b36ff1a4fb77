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
