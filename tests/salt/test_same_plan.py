"""The same declaration gives the same plan in both front ends, through the real tools: what salt-call
applied from the shared corpus (Salt's names), ansible-playbook in check mode (community.docker's names)
finds converged, and a change predicted by both is the same plan."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from tests.salt.saltenv import run_bounded

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "support" / "declarations.yml"


def _playbook(tmp_path: Path, engine_root: Path, tasks: list[dict]) -> dict[str, dict]:
    """ansible-playbook --check on localhost; each task's registered result by container name."""
    exe = Path(sys.executable).parent / "ansible-playbook"
    if not exe.exists() or not (ROOT / "collections" / "ansible_collections" / "intermodal").exists():
        pytest.skip("needs ansible-core and the collections/ link (scripts/setup)")
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": []}]
    for task in tasks:
        play[0]["tasks"] += [
            {"intermodal.containers.container": {"root": str(engine_root), **task}, "register": "r",
             "check_mode": True},
            {"copy": {"content": "{{ r | to_json }}", "dest": str(tmp_path / f"ansible-{task['name']}.json")}},
        ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    proc = run_bounded([str(exe), str(tmp_path / "play.yml")], cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return {t["name"]: json.loads((tmp_path / f"ansible-{t['name']}.json").read_text()) for t in tasks}


def test_salt_applies_what_ansible_finds_converged(salt, busybox_archive: Path, engine_root: Path, tmp_path: Path):
    cases = yaml.safe_load(CORPUS.read_text())
    states = {"busybox": {"intermodal_image.present": [{"load": str(busybox_archive)}]}}
    for case in cases:
        states[case["id"]] = {"intermodal_container.running": [{k: v} for k, v in case["salt"].items()]}
    (salt.srv / "corpus.sls").write_text(yaml.safe_dump(states))
    first = salt.apply("corpus")
    assert all(first[c["id"]]["plan"]["actions"] == ["create", "start"] for c in cases), first
    assert all(r["changes"] == {} for r in salt.apply("corpus").values())

    ansible = _playbook(tmp_path, engine_root, [{"name": c["id"], **c["ansible"]} for c in cases])
    assert {n: (r["changed"], r["actions"], r["differences"]) for n, r in ansible.items()} == {
        c["id"]: (False, [], []) for c in cases}

    # One change, predicted by both: the same actions and differences.
    changed = dict(cases[0]["ansible"], env={"MODE": "test", "LEVEL": "3"})
    ansible = _playbook(tmp_path, engine_root, [{"name": cases[0]["id"], **changed}])[cases[0]["id"]]
    salt_case = dict(cases[0]["salt"], environment=[{"MODE": "test"}, {"LEVEL": "3"}])
    (salt.srv / "one.sls").write_text(yaml.safe_dump(
        {cases[0]["id"]: {"intermodal_container.running": [{k: v} for k, v in salt_case.items()]}}))
    predicted = salt.apply("one", "test=True")[cases[0]["id"]]
    assert predicted["plan"]["actions"] == ansible["actions"] == ["recreate", "start"]
    assert predicted["plan"]["differences"] == ansible["differences"]
