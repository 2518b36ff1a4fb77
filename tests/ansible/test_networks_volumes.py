"""The network and volume modules through ansible-playbook."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.requires("root", "nft"), pytest.mark.usefixtures("clean_networks")]


def test_networks_and_volumes(playbook):
    # A subnet of its own per run: engine roots of parallel tests must not route the same subnet.
    subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
    proc = playbook("networks_volumes.yml", subnet=subnet)
    assert "failed=0" in proc.stdout
