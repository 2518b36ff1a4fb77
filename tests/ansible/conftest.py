"""Real `ansible-playbook` runs against this host, from the repository root, one engine root per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - a fixture for the container playbook

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
PLAYBOOK_TIMEOUT = 300


def ansible_playbook() -> Path | None:
    exe = Path(sys.executable).parent / "ansible-playbook"
    return exe if exe.exists() else None


@pytest.fixture(autouse=True)
def _needs_ansible():
    if ansible_playbook() is None:
        pytest.skip("needs ansible-core in the virtualenv (scripts/setup installs the [ansible] extra)")
    link = ROOT / "collections" / "ansible_collections" / "intermodal" / "containers"
    if not link.exists():
        pytest.skip("needs the collections/ link that scripts/setup makes")


@pytest.fixture
def playbook(engine_root: Path, tmp_path: Path):
    """Run a playbook of tests/ansible/playbooks with `root` and *extra* vars; assert it succeeded."""

    def run(name: str, *args: str, check: bool = True, **extra: object) -> subprocess.CompletedProcess:
        variables = {"root": str(engine_root), "tmp": str(tmp_path), **extra}
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
               "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
        proc = subprocess.run([str(ansible_playbook()), str(PLAYBOOKS / name), "-e", json.dumps(variables), *args],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=PLAYBOOK_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
        return proc

    return run


@pytest.fixture
def clean_networks(engine_root: Path):
    """Whatever a playbook left, removed through the engine (containers first, then bridges and firewall rules)."""
    yield
    from intermodal.engine import Engine

    engine = Engine(root=engine_root)
    if engine.paths.containers.is_dir():
        for c in engine.containers.list():
            engine.containers.remove(c.id, force=True, volumes=True)
    left = []
    for net in engine.networks.list():
        if not net.default:
            left.append(net.name)
            engine.networks.remove(net.id)
    assert not left, f"networks left behind by the playbook: {left}"
