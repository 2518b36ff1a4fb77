"""Salt tests: real salt-call (and salt-master/salt-minion) runs, one engine root and Salt config per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.salt.saltenv import SaltEnv, salt_bin
from tests.support.containers import clean_containers  # noqa: F401 - a fixture for the state tests


@pytest.fixture(autouse=True)
def _needs_salt():
    if salt_bin("salt-call") is None:
        pytest.skip("needs salt in the virtualenv (scripts/setup installs the [salt] extra)")


@pytest.fixture
def salt(engine_root: Path):
    env = SaltEnv.make(engine_root)
    yield env
    env.remove()


@pytest.fixture(scope="session")
def busybox_archive(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """busybox:latest as a docker-archive, for `intermodal_image.present: load:` (no registry needed)."""
    from intermodal.engine import Engine

    work = tmp_path_factory.mktemp("busybox-archive")
    engine = Engine(root=work / "engine")
    engine.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    engine.images.save(["busybox:latest"], str(work / "busybox.tar"))
    return work / "busybox.tar"


@pytest.fixture
def clean_networks(engine_root: Path):
    """Containers, then the networks a test left, removed through the engine (bridges and rules go too)."""
    yield
    from intermodal.engine import Engine

    engine = Engine(root=engine_root)
    if engine.paths.containers.is_dir():
        for c in engine.containers.list():
            engine.containers.remove(c.id, force=True, volumes=True)
    for net in engine.networks.list():
        if not net.default:  # the engine keeps its default bridge
            engine.networks.remove(net.id)
