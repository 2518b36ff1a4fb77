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
