"""The connection and inventory plugins together, on a Debian container with its own Python.

The Debian rootfs is debootstrapped from this machine's apt mirror by the test command's set-up step
(scripts/test, cached in tests/.cache); here it is only imported. The playbook's hosts come from the
inventory plugin, its tasks run through the connection plugin: facts, template, copy, fetch, command,
become (su) to a user made in the container, remote_user, pipelining on and off.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.conftest import PLAYBOOK_TIMEOUT, PLAYBOOKS, ROOT
from tests.support.containers import clean_containers  # noqa: F401 - a fixture

CACHE = ROOT / "tests" / ".cache"
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.requires("root", "overlay", "runc"), pytest.mark.usefixtures("clean_containers"),
              pytest.mark.slow]


@pytest.fixture
def debian_tar() -> Path:
    tars = sorted(CACHE.glob("debian-*.tar"))
    if not tars:
        pytest.skip("needs the cached Debian rootfs: scripts/test makes it (python -m intermodal.tools.debian "
                    "OUT.tar --cache tests/.cache)")
    return tars[-1]


@pytest.fixture
def containers(engine, debian_tar: Path, tmp_path: Path) -> Path:
    """A running Debian container labelled tier=app, a stopped one, and the inventory source naming the root."""
    from intermodal.containers.spec import ContainerSpec

    engine.images.import_rootfs(debian_tar, "intermodal/debian:test", changes=['CMD ["/bin/sh"]'])
    engine.containers.run(ContainerSpec.build("intermodal/debian:test", name="app1", command=["sleep", "infinity"],
                                              labels={"tier": "app"}, network="none"))
    engine.containers.create(ContainerSpec.build("intermodal/debian:test", name="app2", command=["true"],
                                                 labels={"tier": "app"}, network="none"))
    source = tmp_path / "hosts.intermodal.yml"
    source.write_text(f"plugin: intermodal.containers.containers\nroot: {engine.paths.root}\n")
    return source


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local")}


def test_inventory_and_connection_configure_the_container(containers: Path, tmp_path: Path):
    """One test (importing the Debian image takes most of its time): the inventory, then a playbook on it."""
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(containers), "--list"], cwd=ROOT,
                          capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d) if len(d) == 1 else d)
    assert sorted(data["_meta"]["hostvars"]) == ["app1"]  # app2 is not running
    for group in ("running", "label_tier_app", "image_intermodal_debian_test"):
        assert data[group]["hosts"] == ["app1"], group
    assert data["_meta"]["hostvars"]["app1"]["ansible_connection"] == "intermodal.containers.imod"

    variables = {"tmp": str(tmp_path)}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(containers), "-vvv",
                           str(PLAYBOOKS / "plugins_debian.yml"), "-e", json.dumps(variables)],
                          cwd=ROOT, capture_output=True, text=True, env=_env(tmp_path), timeout=PLAYBOOK_TIMEOUT)
    out = proc.stdout
    assert proc.returncode == 0, f"{out[-8000:]}\n{proc.stderr[-3000:]}"
    assert re.search(r"app1\s*: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out), out[-2000:]
    tasks = _tasks(out)
    # ansible.cfg turns pipelining on: a module reaches Python on stdin, nothing is put...
    assert "PUT " not in tasks["template again"] and "EXEC " in tasks["template again"]
    # ... except where it cannot be: su does not pipeline, a remote_user task set it off.
    become = tasks["become the user, reads its own file"]
    assert re.search(r"PUT \S+ TO \S+/AnsiballZ_command\.py", become), become
    assert "'-u', 'app'" in tasks["as remote_user (imod exec --user), module put in a file, the file written to "
                                  "its home"]


def _tasks(out: str) -> dict[str, str]:
    """The -vvv output of each task, by name."""
    parts = re.split(r"^TASK \[(.*?)\] \**$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
