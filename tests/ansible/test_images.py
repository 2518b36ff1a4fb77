"""The image module through ansible-playbook: import, tag, save, load, pull, absent."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("registry", "busybox")


def test_images(playbook, busybox_tar: Path, registry, tmp_path_factory):
    from intermodal.engine import Engine

    # The registry gets busybox as bb:1 from a separate engine root, so the playbook's root starts empty.
    source = Engine(root=tmp_path_factory.mktemp("source-engine"))
    source.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    source.images.push("busybox:latest", f"{registry.host}/bb:1", tls_verify=False)
    context = tmp_path_factory.mktemp("context")
    (context / "Dockerfile").write_text('FROM busybox\nARG GREETING\nLABEL greeting=$GREETING\nCOPY f /f\n'
                                        'CMD ["sh"]\n')
    (context / "f").write_text("content\n")
    (context / "Containerfile.multi").write_text("FROM busybox AS base\nLABEL stage=base\n"
                                                 "FROM base AS final\nLABEL stage=final\n")
    proc = playbook("images.yml", busybox_tar=str(busybox_tar), registry=registry.host, context=str(context))
    assert "failed=0" in proc.stdout
