"""The collection as users meet it: ansible-doc, --check/--diff from the command line, a target without the engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]


def recap(stdout: str) -> dict[str, int]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("localhost") and "ok=" in ln)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_ansible_doc_reads_well():
    exe = Path(sys.executable).parent / "ansible-doc"
    proc = subprocess.run([str(exe), "intermodal.containers.container"], cwd=ROOT, capture_output=True, text=True,
                          env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin", "HOME": "/root"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for text in ("restart_policy", "comparisons", "EXAMPLES", "RETURN VALUES", "intermodal.containers.engine"):
        assert text in proc.stdout, text
    assert "WARNING" not in proc.stderr.upper(), proc.stderr


def test_check_then_real_then_again(playbook, engine_root: Path):
    check = playbook("check_flag.yml", "--check", "--diff")
    assert recap(check.stdout)["changed"] == 2
    assert not (engine_root / "volumes" / "data").exists()  # check mode touched nothing
    assert '-    "state": "absent"' in check.stdout and '+    "state": "present"' in check.stdout  # the diff
    real = playbook("check_flag.yml", "--diff")
    assert recap(real.stdout)["changed"] == 2
    again = playbook("check_flag.yml", "--check")
    assert recap(again.stdout)["changed"] == 0
    assert recap(playbook("check_flag.yml").stdout)["changed"] == 0


def test_a_target_without_the_engine(playbook):
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None:
        pytest.skip("needs a system python3 without intermodal")
    probe = subprocess.run([system_python, "-c", "import intermodal"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"{system_python} can import intermodal")
    proc = playbook("no_engine.yml", system_python=system_python)
    assert recap(proc.stdout)["failed"] == 0 and recap(proc.stdout)["ignored"] == 5


@pytest.mark.requires("root", "overlay", "runc", "busybox")
@pytest.mark.usefixtures("clean_containers")
def test_connection_plugin_runs_tasks_in_a_container(playbook, busybox_tar: Path):
    if not Path("/usr/bin/python3").exists() or not Path("/usr/lib64").is_dir():
        pytest.skip("needs a merged-/usr host with /usr/bin/python3 to lend the container")
    proc = playbook("connection.yml", busybox_tar=str(busybox_tar))
    assert recap(proc.stdout)["failed"] == 0


@pytest.mark.requires("root", "overlay", "runc", "busybox")
@pytest.mark.usefixtures("clean_containers")
def test_inventory_plugin_lists_running_containers(engine, busybox_tar: Path, tmp_path: Path):
    import json

    from intermodal.containers.spec import ContainerSpec

    engine.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    engine.containers.run(ContainerSpec.build("busybox", name="web", command=["sleep", "100"],
                                              labels={"tier": "front"}))
    engine.containers.create(ContainerSpec.build("busybox", name="idle", command=["true"]))
    source = tmp_path / "hosts.intermodal.yml"
    source.write_text(f"plugin: intermodal.containers.containers\nroot: {engine.paths.root}\n"
                      "keyed_groups:\n  - key: imod_labels.tier | default('none')\n    prefix: tier\n")
    exe = Path(sys.executable).parent / "ansible-inventory"
    proc = subprocess.run([str(exe), "-i", str(source), "--list"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Values from an inventory plugin are not templated (2.19 marks them unsafe in --list output).
    data = json.loads(proc.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d) if len(d) == 1 else d)
    web = data["_meta"]["hostvars"]["web"]
    assert web["ansible_connection"] == "intermodal.containers.imod"
    assert web["ansible_imod_root"] == str(engine.paths.root) and web["imod_status"] == "running"
    assert "idle" not in data["_meta"]["hostvars"]  # running only, by default
    for group in ("running", "image_busybox", "label_tier_front", "tier_front"):
        assert data[group]["hosts"] == ["web"], group
