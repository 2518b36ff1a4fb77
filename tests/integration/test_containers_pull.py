"""`run` pulls a missing image (Docker's default `--pull missing`) from a registry on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "registry"),
              pytest.mark.usefixtures("clean_containers")]


def test_run_pulls_a_missing_image_once(engine, imod, busybox_image, registry):
    remote = f"{registry.host}/test/busybox:1"
    engine.images.push(busybox_image, remote, tls_verify=False)
    engine.images.remove(busybox_image)
    assert not engine.images.exists(remote)
    proc = imod("run", "--rm", "--pull", "never", remote, "true", check=False)
    assert proc.returncode == 125 and b"test/busybox" in proc.stderr
    out = imod("run", "--rm", "--tls-verify=false", remote, "echo", "pulled")
    assert out.stdout == b"pulled\n"
    assert engine.images.exists(remote)
    registry.stop()  # from now on a pull would fail: the local copy must be used
    assert imod("run", "--rm", "--tls-verify=false", remote, "echo", "local").stdout == b"local\n"
