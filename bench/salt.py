"""The Salt states: an SLS that declares 30 containers, its first `state.apply` and the idempotent second.

Needs root, overlay, runc, busybox and salt (the [salt] extra). Wall times of
`salt-call --local state.apply` (Salt's start-up, grains, rendering and the
states); beside them the states' own time as Salt reports it (the sum of each
state's `duration`), and a bare `salt-call --local test.ping` for Salt's fixed
cost. Everything runs in a throwaway engine root and Salt config, removed at
the end.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.salt.saltenv import SaltEnv  # noqa: E402

from bench.common import Result, table  # noqa: E402

COUNT = 30
ROUNDS = 3

SLS = """
{% for i in range(COUNT) %}
c{{ i }}:
  intermodal_container.running:
    - image: busybox
    - command: sleep 100000
    - environment: {INDEX: "{{ i }}"}
    - labels: {bench: "yes"}
    - mem_limit: 64m
{% endfor %}
""".replace("COUNT", str(COUNT))


def _apply(env: SaltEnv, expect_changes: bool) -> tuple[float, float]:
    start = time.perf_counter()
    returns = env.apply("bench")
    wall = time.perf_counter() - start
    if len(returns) != COUNT or not all(r["result"] is True for r in returns.values()):
        raise RuntimeError(f"state.apply failed: {[r['comment'] for r in returns.values() if not r['result']]}")
    changed = sum(bool(r["changes"]) for r in returns.values())
    if changed != (COUNT if expect_changes else 0):
        detail = [(k, r["comment"], r["changes"]) for k, r in returns.items() if r["changes"]][:3]
        raise RuntimeError(f"{changed} of {COUNT} states changed; expected {COUNT if expect_changes else 0}: {detail}")
    return wall, sum(r["duration"] for r in returns.values()) / 1000


def _remove_all(engine) -> None:
    for c in engine.containers.list():
        engine.containers.remove(c.id, force=True, volumes=True)


def main() -> str:
    from tests.support.netns import isolated_networks

    from intermodal.engine import Engine
    from intermodal.tools.busybox import build_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="imod-bench-salt-"))
    names = ("salt-call first run", "salt-call second run", "states: first", "states: second", "salt-call test.ping")
    results = {k: Result(k, []) for k in names}
    try:
        tar = build_rootfs_tar(work / "busybox.tar")
        for n in range(ROUNDS):
            (work / f"root{n}").mkdir()
            # The containers join the default network: test names, its own nft table and a free subnet,
            # all removed at the end (never the machine's imod0 bridge or intermodal table).
            with isolated_networks(work / f"root{n}"):
                engine = Engine(root=work / f"root{n}")
                engine.images.import_rootfs(tar, "busybox:latest")
                _round(SaltEnv.make(engine.paths.root), engine, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per = {f"{k} per container": f"{results[k].median / COUNT * 1000:.1f} ms" for k in names[:4]}
    return table(f"Salt: {COUNT} containers declared, salt-call --local (median of {ROUNDS})",
                 list(results.values()), "salt-call second run", per)


def _round(env: SaltEnv, engine, results: dict[str, Result]) -> None:
    """One round: Salt warmed up, test.ping, the first and the second state.apply."""
    try:
        env.sls("bench", SLS)
        env.call("test.ping")  # Salt's first run fills its caches (grains, file lists)
        start = time.perf_counter()
        env.call("test.ping")
        results["salt-call test.ping"].samples.append(time.perf_counter() - start)
        for key, states, expect in (("salt-call first run", "states: first", True),
                                    ("salt-call second run", "states: second", False)):
            wall, own = _apply(env, expect)
            results[key].samples.append(wall)
            results[states].samples.append(own)
    finally:
        env.remove()
        _remove_all(engine)


if __name__ == "__main__":
    print(main())
