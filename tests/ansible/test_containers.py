"""The container module through ansible-playbook: apply, apply again, change, check mode, diff."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_containers(playbook, busybox_tar: Path):
    proc = playbook("containers.yml", busybox_tar=str(busybox_tar))
    assert "failed=0" in proc.stdout


def test_container_pull_always(playbook, busybox_tar: Path, registry, tmp_path_factory):
    import shlex
    import sys

    from intermodal.engine import Engine

    source_root = tmp_path_factory.mktemp("source-engine")
    source = Engine(root=source_root)
    source.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    source.images.push("busybox:latest", f"{registry.host}/bb:1", tls_verify=False)
    # The playbook moves the tag: another image (a different CMD) pushed under the same name.
    move = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2] / 'core')!r}); "
            "from intermodal.engine import Engine; e = Engine(root=sys.argv[1]); "
            f"e.images.import_rootfs(sys.argv[2], 'bb:2', changes=['CMD [\"true\"]']); "
            f"e.images.push('bb:2', '{registry.host}/bb:1', tls_verify=False)")
    command = shlex.join([sys.executable, "-c", move, str(source_root), str(busybox_tar)])
    proc = playbook("containers_pull.yml", registry=registry.host, move_tag=command)
    assert "failed=0" in proc.stdout


@pytest.mark.requires("nft")
@pytest.mark.usefixtures("clean_networks")
def test_container_on_a_network(playbook, busybox_tar: Path):
    import os
    import socket

    from intermodal.declare.container import SPEC_FIELDS

    if "ports" not in SPEC_FIELDS:
        pytest.skip("the engine's containers have no networks yet")
    with socket.socket() as s:  # a free port for the published one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subnet = f"10.{200 + os.getpid() % 50}.{(os.getpid() + 1) % 250}"
    proc = playbook("containers_networks.yml", busybox_tar=str(busybox_tar), subnet=subnet, port=port)
    assert "failed=0" in proc.stdout


def test_container_detach_false_and_image_name_mismatch(playbook, busybox_tar: Path):
    proc = playbook("containers_run.yml", busybox_tar=str(busybox_tar))
    assert "failed=0" in proc.stdout and "ignored=1" in proc.stdout
