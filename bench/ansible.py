"""The Ansible collection: a playbook that declares 30 containers, its first run and the idempotent second.

Needs root, overlay, runc and busybox. Beside the wall times of ansible-playbook
(forks, module transfer and Python start-up included), the modules' own time:
the same declarations through `intermodal.declare` in one process, which is
what each task adds on top of Ansible's per-task cost. Everything runs in a
throwaway engine root, removed at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.common import Result, table  # noqa: E402

COUNT = 30
ROUNDS = 3

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/intermodal.containers.engine:
      root: "{{ root }}"
  tasks:
    - intermodal.containers.container:
        name: "c{{ item }}"
        image: busybox
        command: sleep 100000
        env: {INDEX: "{{ item }}"}
        labels: {bench: "yes"}
        memory: 64m
      loop: "{{ range(COUNT) | list }}"
""".replace("COUNT", str(COUNT))


def _declarations() -> list[dict]:
    return [{"name": f"c{i}", "image": "busybox", "command": "sleep 100000", "env": {"INDEX": str(i)},
             "labels": {"bench": "yes"}, "memory": "64m", "state": "started"} for i in range(COUNT)]


def _in_process(engine) -> tuple[float, float]:
    from intermodal.declare import container

    start = time.perf_counter()
    for options in _declarations():
        declared = container.declare(options)
        container.apply(engine, declared, container.make_plan(engine, declared))
    first = time.perf_counter() - start
    start = time.perf_counter()
    for options in _declarations():
        declared = container.declare(options)
        assert not container.make_plan(engine, declared).changed
    return first, time.perf_counter() - start


def _remove_all(engine) -> None:
    for c in engine.containers.list():
        engine.containers.remove(c.id, force=True, volumes=True)


def _round(engine, exe: Path, playbook: Path, results: dict[str, Result]) -> None:
    for key in ("ansible first run", "ansible second run"):
        start = time.perf_counter()
        proc = subprocess.run([str(exe), str(playbook), "-e", json.dumps({"root": str(engine.paths.root)})],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        results[key].samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-3000:])
        if key == "ansible second run" and "changed=0" not in proc.stdout:
            raise RuntimeError("the second run changed something:\n" + proc.stdout[-3000:])
    _remove_all(engine)
    first, second = _in_process(engine)
    results["ours: first"].samples.append(first)
    results["ours: second"].samples.append(second)
    _remove_all(engine)


def main() -> str:
    from tests.support.netns import isolated_networks

    from intermodal.engine import Engine
    from intermodal.tools.busybox import build_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="imod-bench-ansible-"))
    playbook = work / "site.yml"
    playbook.write_text(PLAYBOOK)
    exe = Path(sys.executable).parent / "ansible-playbook"
    results = {k: Result(k, []) for k in ("ansible first run", "ansible second run", "ours: first", "ours: second")}
    try:
        tar = build_rootfs_tar(work / "busybox.tar")
        for n in range(ROUNDS):
            (work / f"root{n}").mkdir()
            # The containers join the default network: test names, its own nft table and a free subnet,
            # all removed at the end (never the machine's imod0 bridge or intermodal table).
            with isolated_networks(work / f"root{n}"):
                engine = Engine(root=work / f"root{n}")
                engine.images.import_rootfs(tar, "busybox:latest")
                _round(engine, exe, playbook, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_task = {f"{k} per container": f"{results[k].median / COUNT * 1000:.1f} ms" for k in results}
    return table(f"Ansible: {COUNT} containers declared (median of {ROUNDS})", list(results.values()),
                 "ansible second run", per_task)


if __name__ == "__main__":
    print(main())
