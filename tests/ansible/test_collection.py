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


def _ansible_doc(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ansible-doc"
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin", "HOME": "/root"})


def test_ansible_doc_reads_well():
    proc = _ansible_doc("intermodal.containers.container")
    assert proc.returncode == 0, proc.stderr
    for text in ("restart_policy", "comparisons", "EXAMPLES", "RETURN VALUES", "intermodal.containers.engine",
                 "root ", "validate_certs", "REQUIREMENTS", "/opt/intermodal/bin/python"):
        assert text in proc.stdout, text
    assert "WARNING" not in proc.stderr.upper(), proc.stderr


def test_ansible_doc_of_every_plugin():
    """Every module with the engine fragment merged in, the connection and inventory plugins; short lines in -l."""
    modules = sorted(f"intermodal.containers.{p.stem}" for p in (ROOT / "plugins" / "modules").glob("*.py"))
    proc = _ansible_doc(*modules)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr.upper(), proc.stderr
    assert proc.stdout.count("The engine's root directory") == len(modules)  # from the fragment
    listing = _ansible_doc("-l", "intermodal.containers")
    assert listing.returncode == 0, listing.stderr
    assert len(listing.stdout.splitlines()) == len(modules) and "..." not in listing.stdout, listing.stdout
    for kind, name in (("connection", "intermodal.containers.imod"), ("inventory", "intermodal.containers.containers")):
        proc = _ansible_doc("-t", kind, name)
        assert proc.returncode == 0 and "EXAMPLES" in proc.stdout, proc.stderr


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


# The order the examples run in: what one creates, the next uses (web for container_exec, backend...).
EXAMPLES_RUN = ["network", "volume", "container", "container_exec", "container_info", "network_info",
                "volume_info", "image_info", "host_info", "prune"]


def _module_file(kind: str) -> dict:
    namespace: dict = {}
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    exec(text.split("from ansible_collections", 1)[0], namespace)  # the doc strings only
    exec(text.split("ARGUMENT_SPEC = ", 1)[1].split("\n}\n", 1)[0].join(["ARGUMENT_SPEC = ", "\n}\n"]), namespace)
    return namespace


def _example_tasks(tasks: list[dict]):
    for task in tasks:
        yield task
        yield from _example_tasks(task.get("block", []))


@pytest.mark.parametrize("kind", sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")))
def test_examples_match_the_argument_spec(kind: str):
    import yaml
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    checked = 0
    for task in _example_tasks(yaml.safe_load(_module_file(kind)["EXAMPLES"])):
        for action, args in task.items():
            if action.startswith("intermodal.containers."):
                spec = _module_file(action.rsplit(".", 1)[1])["ARGUMENT_SPEC"]
                result = ArgumentSpecValidator(spec).validate(dict(args or {}))
                assert not result.error_messages, (kind, task.get("name"), result.error_messages)
                checked += 1
    assert checked, f"{kind} has no example of itself"


@pytest.mark.slow
@pytest.mark.requires("root", "overlay", "runc", "busybox", "nft")
@pytest.mark.usefixtures("clean_containers", "clean_networks")
def test_examples_run(playbook, engine, busybox_tar: Path, tmp_path: Path):
    """The examples ansible-doc shows, run as written (the engine root of the block's module_defaults is the test's)."""
    import yaml

    engine.images.import_rootfs(busybox_tar, "busybox:latest", changes=['CMD ["sh"]'])
    tasks = []
    for kind in EXAMPLES_RUN:
        text = _module_file(kind)["EXAMPLES"].replace("root: /var/lib/intermodal", "root: \"{{ root }}\"")
        tasks += yaml.safe_load(text)
    play = [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/intermodal.containers.engine": {"root": "{{ root }}"}}, "tasks": tasks}]
    (tmp_path / "examples.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    proc = playbook(str(tmp_path / "examples.yml"))
    assert recap(proc.stdout)["failed"] == 0
    assert engine.containers.inspect("web")["State"]["Status"] == "running"
    assert not engine.containers.exists("job")
