"""OCI runtime: create+start+wait+delete of a busybox bundle running `true`.

imod-runtime (CLI and in-process API) against crun and runc from Debian, on
one bundle, in one run; medians and their ratios. crun 1.8 may refuse this
machine's hybrid cgroup layout: its error is reported in the table instead.

    python bench/run.py runtime        (as root)
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.common import Result, measure, table

REPEAT = 15
VENV_BIN = Path(sys.executable).parent


def _bundle(base: Path) -> Path:
    from intermodal.runtime.spec import default_config
    from intermodal.tools.busybox import build_rootfs_tar

    tar_path = build_rootfs_tar(base / "busybox.tar")
    rootfs = base / "bundle" / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(rootfs, filter="fully_trusted")
    config = default_config(["true"], terminal=False)
    (base / "bundle" / "config.json").write_text(json.dumps(config))
    return base / "bundle"


def _quiet(argv: list[str]) -> None:
    """Run with output in a file: the container inherits stdout/stderr, so a pipe would stay open."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if proc.returncode != 0:
            err.seek(0)
            raise subprocess.CalledProcessError(proc.returncode, argv, stderr=err.read())


def _cli_run(argv: list[str], bundle: Path, counter: list[int]):
    """`RUNTIME run`: create, start, wait and delete in one command."""
    def run() -> None:
        counter[0] += 1
        _quiet([*argv, "run", "--bundle", str(bundle), f"bench-{counter[0]}"])
    return run


def _cli_steps(argv: list[str], bundle: Path, base: Path, counter: list[int]):
    """The four commands a caller such as conmon issues: create, start, (wait), delete."""
    def run() -> None:
        counter[0] += 1
        cid = f"bench-s{counter[0]}"
        pid_file = base / f"{cid}.pid"
        _quiet([*argv, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid])
        pidfd = os.pidfd_open(int(pid_file.read_text()))
        try:
            _quiet([*argv, "start", cid])
            select.select([pidfd], [], [], 30)
        finally:
            os.close(pidfd)
        _quiet([*argv, "delete", cid])
    return run


def _in_process(root: Path, bundle: Path, counter: list[int]):
    from intermodal.runtime.container import Runtime

    runtime = Runtime(root)
    null = os.open("/dev/null", os.O_RDWR)

    def run() -> None:
        counter[0] += 1
        ctr = runtime.create(f"bench-p{counter[0]}", bundle, stdio=(null, null, null))
        ctr.start()
        ctr.wait(30)
        ctr.delete()
    return run


def _try(name: str, run, note: str = "") -> Result | str:
    try:
        return measure(name, run, repeat=REPEAT, warmup=2, note=note)
    except subprocess.CalledProcessError as exc:
        return f"{name}: failed: {exc.stderr.decode(errors='replace').strip().splitlines()[-1:]}"


def main() -> str:
    if os.geteuid() != 0:
        return "## OCI runtime\n\nskipped: needs root\n"
    base = Path(tempfile.mkdtemp(prefix="imod-bench-rt-"))
    try:
        bundle = _bundle(base)
        counter = [0]
        imod = [str(VENV_BIN / "imod-runtime"), "--root", str(base / "imod-root")]
        runtimes = {"imod-runtime": imod}
        for name in ("crun", "runc"):
            if shutil.which(name):
                runtimes[name] = [name, "--root", str(base / f"{name}-root")]
        results: list[Result] = []
        failures: dict[str, str] = {}
        for name, argv in runtimes.items():
            for label, run in ((f"{name} run", _cli_run(argv, bundle, counter)),
                               (f"{name} create/start/delete", _cli_steps(argv, bundle, base, counter))):
                outcome = _try(label, run)
                if isinstance(outcome, str):
                    failures[label] = outcome
                else:
                    results.append(outcome)
        results.append(measure("imod in-process API", _in_process(base / "api-root", bundle, counter),
                               repeat=REPEAT, warmup=2, note="Runtime.create/start/wait/delete, no interpreter start"))
        baseline = next((r.name for r in results if r.name == "crun run"),
                        next((r.name for r in results if r.name == "runc run"), results[0].name))
        return table(f"OCI runtime: create+start+wait+delete of `true` ({REPEAT} runs, median)", results, baseline,
                     failures)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(main())
