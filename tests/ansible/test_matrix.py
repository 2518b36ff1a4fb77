"""The per-option matrices: one ansible-playbook run per module, one host per option row.

Each playbook asserts its rows itself (check mode predicts, apply, apply again, change with the
right action, check mode predicted exactly that); here the PLAY RECAP must list every row of the
matrix file, none failed or unreachable.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ansible.conftest import PLAYBOOKS

FORKS = "4"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def rows(name: str) -> list[dict]:
    import yaml

    return yaml.safe_load((PLAYBOOKS / "matrix" / name).read_text())["matrix"]


def row_names(name: str) -> list[str]:
    return [r.get("id", r["option"]) for r in rows(name)]


def recap(stdout: str) -> dict[str, tuple[int, int, int]]:
    """host -> (ok, unreachable, failed) from the PLAY RECAP."""
    tail = stdout.rpartition("PLAY RECAP")[2]
    return {m[1]: (int(m[2]), int(m[4]), int(m[5])) for m in RECAP.finditer(tail)}


def check_rows(proc, names: list[str]) -> None:
    """Every row ran its tasks and none failed; the failures' own messages otherwise."""
    hosts = recap(proc.stdout)
    assert hosts, f"no PLAY RECAP:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    missing = [n for n in names if f"row_{n}" not in hosts]
    failed = sorted(n for n in names if hosts.get(f"row_{n}", (0, 0, 0))[1:] != (0, 0))
    if missing or failed or proc.returncode != 0:
        messages = [line for line in proc.stdout.splitlines() if "fatal:" in line or '"msg"' in line]
        raise AssertionError(f"rows failed: {failed}; rows that never ran: {missing}\n" + "\n".join(messages)[-12000:])


@pytest.mark.requires("root", "overlay", "runc", "busybox")
@pytest.mark.usefixtures("clean_containers")
def test_container_matrix(playbook, engine, busybox_tar: Path):
    can_update = hasattr(engine.containers, "update")
    from intermodal.declare.container import SPEC_FIELDS

    skip = [r["option"] for r in rows("container_rows.yml") if r.get("needs", "image") not in SPEC_FIELDS]
    proc = playbook("matrix_container.yml", "-f", FORKS, check=False, busybox_tar=str(busybox_tar),
                    can_update=can_update, rows="container_rows.yml", base={"network_mode": "none"}, skip=skip)
    check_rows(proc, [n for n in row_names("container_rows.yml") if n not in skip])
    # --diff as the user reads it: each differing option before and after, the action in the header.
    assert "+++ after: m_command: recreate, start" in proc.stdout
    assert '-    "memory": 67108864' in proc.stdout and '+    "memory": 134217728' in proc.stdout
    if can_update:
        assert "+++ after: m_memory: update\n" in proc.stdout


@pytest.mark.requires("root", "overlay", "runc", "busybox", "nft")
@pytest.mark.usefixtures("clean_containers", "clean_networks")
def test_container_network_matrix(playbook, engine, busybox_tar: Path):
    from intermodal.declare.container import SPEC_FIELDS
    from tests.support.netns import free_subnets

    net1, net2 = (s.rpartition(".")[0] for s in free_subnets(2))
    # Rows with a further network need an engine that joins several (and connects them in place).
    skip = [] if "extra_networks" in SPEC_FIELDS and hasattr(engine.containers, "connect") else [
        r.get("id", r["option"]) for r in rows("network_rows.yml") if len(r["changed"] if r["option"] == "networks"
                                                                           else []) > 1 or len(r["value"]) > 1]
    proc = playbook("matrix_container.yml", "-f", FORKS, check=False, busybox_tar=str(busybox_tar),
                    can_update=hasattr(engine.containers, "update"), rows="network_rows.yml", base={},
                    net1=net1, net2=net2, skip=skip)
    check_rows(proc, [n for n in row_names("network_rows.yml") if n not in skip])


@pytest.mark.requires("root", "overlay", "runc", "busybox", "nft")
@pytest.mark.usefixtures("clean_containers", "clean_networks")
def test_network_and_volume_matrix(playbook, busybox_tar: Path):
    from tests.support.netns import free_subnets

    names = row_names("resource_rows.yml")
    subnets = [s.rpartition(".")[0] for s in free_subnets(sum(n.startswith("net_") for n in names) + 1)]
    import secrets

    ula = f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}:{secrets.token_hex(2)}"  # a /48 of its own
    proc = playbook("matrix_resources.yml", "-f", FORKS, check=False, busybox_tar=str(busybox_tar), subnets=subnets,
                    ula=ula)
    check_rows(proc, names)
