"""OCI bundles of the busybox rootfs for runtime tests, and a `created` fixture.

`busybox_bundle` is a bundle directory (rootfs copied from the session's
busybox tar, config.json = `imod-runtime spec`'s default running `true`,
writable root, no terminal) with `mutate(fn)` to change the config per test.
`created` creates containers through the in-process API, deletes every one
it made when the test ends (even on failure), then checks that no state
directory, cgroup, process or mount of them is left.

Bundles live in their own 0711 directory under /tmp, not under pytest's
0700 tmp_path: a container in a user namespace runs as a mapped uid that
must be able to traverse the path to its rootfs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intermodal.errors import ContainerNotFound
from intermodal.runtime.container import Container, Runtime
from intermodal.runtime.spec import default_config
from intermodal.runtime.state import Record, proc_stat

RUN_TIMEOUT = 20.0


class Bundle:
    def __init__(self, path: Path, config: dict) -> None:
        self.path = path
        self.config = config

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self) -> Bundle:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def mutate(self, change: Callable[[dict], object]) -> Bundle:
        """Apply *change* to the config dict and rewrite config.json."""
        change(self.config)
        return self.write()

    def args(self, *argv: str) -> Bundle:
        return self.mutate(lambda c: c["process"].__setitem__("args", list(argv)))

    def sh(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def busybox_rootfs(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rootfs = tmp_path_factory.mktemp("busybox-rootfs") / "rootfs"
    rootfs.mkdir()
    with tarfile.open(busybox_tar) as tar:
        # Our own tar, extracted as it is (/tmp's sticky 1777 kept): the "fully_trusted" filter, which is
        # also what Pythons before 3.11.4 (Debian 12's 3.11.2) do, having no filters.
        tar.extractall(rootfs, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))
    return rootfs


def make_bundle(rootfs: Path) -> Bundle:
    base = Path(tempfile.mkdtemp(prefix="imod-rt-", dir="/tmp"))
    os.chmod(base, 0o711)
    shutil.copytree(rootfs, base / "rootfs", symlinks=True)
    config = default_config(["true"], terminal=False)
    config["root"]["readonly"] = False
    return Bundle(base, config).write()


@pytest.fixture
def busybox_bundle(busybox_rootfs: Path) -> Iterator[Bundle]:
    bundle = make_bundle(busybox_rootfs)
    try:
        yield bundle
    finally:
        shutil.rmtree(bundle.path, ignore_errors=True)


class Containers:
    """Creates containers in a private runtime root and remembers them for cleanup."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtime = Runtime(root)
        self.records: list[Record] = []
        self.bundles: list[Path] = []

    def create(self, bundle: Bundle, *, container_id: str | None = None, **options) -> Container:
        cid = container_id or f"t-{secrets.token_hex(6)}"
        self.bundles.append(bundle.path)
        try:
            ctr = self.runtime.create(cid, bundle.path, **options)
        finally:
            try:
                self.records.append(self.runtime.store.load(cid))
            except ContainerNotFound:
                pass
        return ctr

    def run(self, bundle: Bundle, *, stdin: bytes = b"", timeout: float = RUN_TIMEOUT) -> Result:
        """create + start + wait + delete, with the container's output captured."""
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(stdin)
            fin.seek(0)
            ctr = self.create(bundle, stdio=(fin.fileno(), fout.fileno(), ferr.fileno()))
            ctr.start()
            code = ctr.wait(timeout)
            ctr.delete(force=True)
            assert code is not None, f"container did not exit within {timeout}s"
            fout.seek(0)
            ferr.seek(0)
            return Result(code, fout.read().decode(errors="replace"), ferr.read().decode(errors="replace"))

    def cleanup(self) -> None:
        for rec in self.records:
            try:
                self.runtime.get(rec.id).delete(force=True)
            except ContainerNotFound:
                pass

    def leaks(self) -> list[str]:
        found = []
        for rec in self.records:
            if (self.root / rec.id).exists():
                found.append(f"state directory of {rec.id}")
            stat = proc_stat(rec.pid)
            if stat is not None and stat[1] == rec.start_time:
                found.append(f"process {rec.pid} of {rec.id} ({stat[0]})")
            found += [f"cgroup {p}" for p in rec.cgroup_paths.values() if os.path.exists(p)]
        with open("/proc/self/mountinfo") as f:
            mounts = f.read()
        found += [f"mount under {b}" for b in self.bundles if str(b) in mounts]
        return found


@pytest.fixture
def created(tmp_path: Path) -> Iterator[Containers]:
    containers = Containers(tmp_path / "runtime-root")
    try:
        yield containers
    finally:
        containers.cleanup()
    leaks = containers.leaks()
    assert not leaks, f"left behind: {leaks}"
