"""Shared fixtures: capability skips, engine roots per test, the busybox image."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `tests.support` importable from any test
CACHE = ROOT / "tests" / ".cache"
pytest_plugins = ["tests.support.registry"]  # registry, registry_factory, test_ca


def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.support.capabilities import has

    for marker in item.iter_markers("requires"):
        missing = [c for c in marker.args if not has(c)]
        if missing:
            pytest.skip(f"needs {', '.join(missing)} on this machine")


@pytest.fixture
def engine_root(tmp_path: Path):
    from tests.support.netns import isolated_networks

    root = tmp_path / "engine"
    root.mkdir()
    with isolated_networks(root):  # test table, bridge names and subnets; torn down after the test
        yield root


@pytest.fixture(scope="session", autouse=True)
def _host_network_leak_check():
    """The whole run must leave no nft table and no imod*/veth*/test link behind."""
    from tests.support.netns import gained_since, host_network_state

    before = host_network_state()
    yield
    gained = gained_since(before)
    assert not gained, f"the test run left these on the host: {gained}"


@pytest.fixture
def engine(engine_root: Path):
    from intermodal.engine import Engine

    return Engine(root=engine_root)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs tar of Debian's busybox-static (built once per session)."""
    from intermodal.tools.busybox import build_rootfs_tar
    from tests.support.capabilities import has

    if not has("busybox"):
        pytest.skip("needs busybox-static (scripts/setup installs it)")
    return build_rootfs_tar(tmp_path_factory.mktemp("busybox") / "busybox-rootfs.tar")


@pytest.fixture
def busybox_image(engine, busybox_tar: Path) -> str:
    """`busybox:latest` imported into this test's engine root; returns the reference."""
    engine.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    return "busybox:latest"


@pytest.fixture
def imod(engine_root: Path):
    """Run the real `imod` command against this test's engine root."""
    import subprocess

    exe = Path(sys.executable).parent / "imod"

    def run(*args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(exe), "--root", str(engine_root), *args], capture_output=True, input=input,
                              env={**os.environ, "IMOD_ROOT": str(engine_root)})
        if check and proc.returncode != 0:
            raise AssertionError(f"imod {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    return run
