"""The container module through ansible-playbook: apply, apply again, change, check mode, diff."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_containers(playbook, busybox_tar: Path):
    proc = playbook("containers.yml", busybox_tar=str(busybox_tar))
    assert "failed=0" in proc.stdout
