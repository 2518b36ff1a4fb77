"""`ansible-test sanity` on the collection as built by ansible-galaxy and installed at an ansible_collections path.

scripts/ansible-sanity builds, installs and runs it; scripts/setup made the virtualenv of each sanity check
(ansible-test's pinned pylint, yamllint, voluptuous, ...), so nothing is installed here. Every check that
applies runs: none is skipped. The only ignore entries are validate-modules' GPLv3 header check (the
collection is Apache-2.0), written by the script. About a minute.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
# The checks that have targets in this collection and must have run (the others have nothing to check).
EXPECTED = {"action-plugin-docs", "ansible-doc", "compile", "empty-init", "ignores", "import", "line-endings",
            "no-assert", "no-get-exception", "no-illegal-filenames", "no-smart-quotes", "pep8", "pylint",
            "replace-urlopen", "runtime-metadata", "shebang", "symlinks", "use-argspec-type-path", "use-compat-six",
            "validate-modules", "yamllint"}


def _ansible_core() -> str:
    from ansible.release import __version__

    return __version__


@pytest.fixture
def sanity_ready():
    if not (Path(sys.executable).parent / "ansible-test").exists():
        pytest.skip("needs ansible-core in the virtualenv (scripts/setup installs the [ansible] extra)")
    if not (VENV / f".sanity-{_ansible_core()}").exists():
        pytest.skip("needs the ansible-test sanity virtualenvs: run scripts/setup")


@pytest.mark.slow
@pytest.mark.usefixtures("sanity_ready")
def test_ansible_test_sanity_passes():
    proc = subprocess.run([str(ROOT / "scripts" / "ansible-sanity")], capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"ansible-test sanity failed ({proc.returncode}):\n{out[-12000:]}"
    ran = set(re.findall(r'Running sanity test "([^"]+)"', out))
    expected = EXPECTED | ({"shellcheck"} if shutil.which("shellcheck") else set())
    assert expected <= ran, f"checks that did not run: {sorted(expected - ran)}"
    assert "Installing requirements" not in out, "ansible-test installed packages: scripts/setup should have"
    assert "Skipping" not in out, out


def test_the_built_collection_holds_the_collection_and_the_engine_source(tmp_path: Path):
    """galaxy.yml's build_ignore keeps the tests and the local state out of the artifact; the engine's source
    stays in, a Python project pip builds offline: the engine role's default source."""
    import tarfile

    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    if not galaxy.exists():
        pytest.skip("needs ansible-core in the virtualenv (scripts/setup installs the [ansible] extra)")
    proc = subprocess.run([str(galaxy), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (artifact,) = tmp_path.glob("intermodal-containers-*.tar.gz")
    with tarfile.open(artifact) as tar:
        tops = {name.split("/", 1)[0] for name in tar.getnames()}
        names = tar.getnames()
    assert tops == {"FILES.json", "MANIFEST.json", "README.md", "core", "meta", "plugins", "pyproject.toml",
                    "roles"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or ".egg-info" in n]
    assert "plugins/doc_fragments/engine.py" in names and "plugins/connection/imod.py" in names
    unpacked = tmp_path / "collection"
    with tarfile.open(artifact) as tar:
        tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # < 3.11.4: none
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(wheels), str(unpacked)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheels.glob("intermodal-*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        assert {"intermodal/engine.py", "intermodal/cli/main.py", "intermodal/molecule/driver.json"} <= set(
            zf.namelist())
