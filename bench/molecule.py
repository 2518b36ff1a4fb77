"""`molecule test` of the example role: the intermodal driver beside molecule-plugins' podman driver.

The same scenario on both drivers (the webserver role's `serve` converge, the idempotence step, the
`uri` verify, destroy, as in molecule/default), in two instance kinds:

- busybox with the host's /usr lent read-only (Ansible's modules run with the host's Python);
- Debian bookworm with its own Python (the tar intermodal.tools.debian makes by debootstrap, cached in
  tests/.cache), imported as an image into each engine.

Both without a network (loopback only; the verify step GETs 127.0.0.1 inside the instance), on one
ansible-core and one molecule version. The podman side needs `scripts/setup --bench` (a side venv
.venv-bench with molecule-plugins[podman] and PyPI's `ansible`, which carries containers.podman) and
Debian's podman; it runs in a private podman storage (CONTAINERS_STORAGE_CONF), removed at the end, as
are the engine root, the scenarios and Molecule's state for them. Wall time of the whole `molecule test`,
process start-up included; one warm-up run per scenario (image builds and caches), then ROUNDS
rounds, the two drivers in turn in each.
"""

from __future__ import annotations

import os
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

ROUNDS = int(os.environ.get("BENCH_MOLECULE_ROUNDS", "3"))
OURS = ROOT / ".venv" / "bin"
PODMAN_VENV = ROOT / ".venv-bench" / "bin"
IDLE = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done"]  # $$: molecule's $
HOST_PYTHON = ["/usr:/usr:ro", "/usr/lib:/lib:ro", "/usr/lib64:/lib64:ro"]
# podman's default RLIMIT_NOFILE (1048576) is above this sandbox's hard limit: crun's setrlimit fails (EPERM).
ULIMITS = ["nofile=1024:1024", "nproc=4096:4096"]
SEQUENCE = ["destroy", "create", "converge", "idempotence", "verify", "destroy"]


def _scenario(driver: str, platform: dict, host_vars: dict | None = None) -> dict:
    provisioner: dict = {"name": "ansible", "playbooks": {"converge": str(ROOT / "molecule/default/converge.yml"),
                                                          "verify": str(ROOT / "molecule/default/verify.yml")}}
    if host_vars:
        provisioner["inventory"] = {"host_vars": {platform["name"]: host_vars}}
    return {"prerun": False, "driver": {"name": driver}, "platforms": [platform], "provisioner": provisioner,
            "scenario": {"test_sequence": SEQUENCE}}


def _scenarios() -> dict[str, dict]:
    python = {"ansible_python_interpreter": "/usr/bin/python3"}
    return {
        "imod-busybox": _scenario("molecule-intermodal", {
            "name": "bench-imod-busybox", "image": "intermodal/busybox:latest", "host_python": True,
            "network_mode": "none"}),
        "podman-busybox": _scenario("podman", {
            "name": "bench-podman-busybox", "image": "localhost/imod-bench/busybox:latest", "pre_build_image": True,
            "command": IDLE, "volumes": HOST_PYTHON, "network": "none", "ulimits": ULIMITS}, python),
        "imod-debian": _scenario("molecule-intermodal", {
            "name": "bench-imod-debian", "image": "intermodal/debian:bookworm", "host_python": False,
            "python": "/usr/bin/python3", "network_mode": "none"}),
        "podman-debian": _scenario("podman", {
            "name": "bench-podman-debian", "image": "localhost/imod-bench/debian:bookworm", "pre_build_image": True,
            "command": IDLE, "network": "none", "ulimits": ULIMITS}, python),
    }


def _write(project: Path) -> None:
    import yaml

    for name, config in _scenarios().items():
        (project / "molecule" / name).mkdir(parents=True)
        (project / "molecule" / name / "molecule.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _podman_missing() -> str:
    if not shutil.which("podman"):
        return "podman is not installed (scripts/setup installs Debian's podman)"
    if not (PODMAN_VENV / "molecule").exists():
        return "no .venv-bench with molecule-plugins[podman] and containers.podman: run `scripts/setup --bench`"
    return ""


def _env(work: Path, venv: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{venv}:{os.environ.get('PATH', '')}", "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1",
            "IMOD_ROOT": str(work / "imod"), "MOLECULE_INTERMODAL_CACHE": str(ROOT / "tests" / ".cache"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
            "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"), "CONTAINERS_CONF": str(work / "containers.conf"),
            "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(work / "ansible-remote")}


def _molecule_test(project: Path, venv: Path, scenario: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(venv / "molecule"), "test", "-s", scenario], cwd=project, capture_output=True,
                          text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"molecule test -s {scenario} failed:\n{(proc.stdout + proc.stderr)[-5000:]}")
    return elapsed


def _podman_images(work: Path, env: dict[str, str]) -> None:
    from intermodal.tools.busybox import build_rootfs_tar

    tars = {"busybox:latest": build_rootfs_tar(work / "busybox.tar"), "debian:bookworm": work / "debian.tar"}
    subprocess.run([sys.executable, "-m", "intermodal.tools.debian", "--cache", str(ROOT / "tests" / ".cache"),
                    "--suite", "bookworm", str(tars["debian:bookworm"])], check=True, capture_output=True,
                   timeout=1800)
    for name, tar in tars.items():
        subprocess.run(["podman", "import", "-q", str(tar), f"localhost/imod-bench/{name}"], check=True,
                       capture_output=True, env=env, timeout=600)


def _cleanup(work: Path, project: Path, env: dict[str, str], podman: bool) -> None:
    from tests.support.netns import cleanup_engine

    from intermodal.engine import Engine

    engine = Engine(root=work / "imod")
    if engine.paths.containers.is_dir():
        for c in engine.containers.list():
            engine.containers.remove(c.id, force=True, volumes=True)
    table_name = (work / "imod" / "networks" / "config.json").read_text()
    cleanup_engine(engine, __import__("json").loads(table_name)["table"])
    if podman:
        subprocess.run(["podman", "rm", "-f", "-a"], capture_output=True, env=env, timeout=300)
        subprocess.run(["podman", "rmi", "-f", "-a"], capture_output=True, env=env, timeout=300)
    with open("/proc/self/mountinfo") as f:  # the private storage's own bind mount, if podman left it
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(work) + "/")]
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=60)
    for name in _scenarios():  # Molecule's state of each scenario (named after the project's path and it)
        for state in (Path.home() / ".ansible" / "tmp").glob(f"molecule.*.{name}"):
            shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def main() -> str:
    from tests.support.netns import engine_settings

    if os.geteuid() != 0:
        return "## molecule test: intermodal and podman drivers\n\nnot run: needs root\n"
    missing = _podman_missing()
    work = Path(tempfile.mkdtemp(prefix="imod-bench-molecule-"))
    project = work / "imod-bench-molecule"
    _write(project)
    (work / "imod").mkdir()
    engine_settings(work / "imod")  # its own nft table and bridge names, never imod0
    (work / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/podman"\n'
                                       f'runroot = "{work}/podman-run"\n')
    # crun refuses this machine's hybrid cgroups (v1 controllers beside a cgroup2 mount): podman on runc, as
    # bench/containers.py runs it; no systemd here, so cgroupfs.
    # Its own tmp dir and file locks there: other podman users of this machine (tests with their own
    # --root) share /run/libpod and the /dev/shm lock segment otherwise, and may reset them.
    (work / "containers.conf").write_text(f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                                          f'tmp_dir = "{work}/podman-tmp"\nlock_type = "file"\n'
                                          f'events_logger = "none"\n')
    ours, theirs = _env(work, OURS), _env(work, PODMAN_VENV)
    kinds = {"busybox, the host's Python lent": "busybox", "Debian bookworm, its own Python": "debian"}
    results: dict[str, list[Result]] = {kind: [] for kind in kinds}
    failures: dict[str, str] = {}
    try:
        if not missing:
            _podman_images(work, theirs)
        for kind, image in kinds.items():
            runs = {f"intermodal driver ({image})": (OURS, f"imod-{image}", ours)}
            if not missing:
                runs[f"podman driver ({image})"] = (PODMAN_VENV, f"podman-{image}", theirs)
            samples: dict[str, list[float]] = {name: [] for name in runs}
            # Warm-up (images, caches), then the drivers in turn each round: a busy machine's load drifts.
            for round_ in range(ROUNDS + 1):
                for name, (venv, scenario, env) in runs.items():
                    if name in failures:
                        continue
                    try:
                        elapsed = _molecule_test(project, venv, scenario, env)
                    except RuntimeError as err:
                        failures[name] = str(err).splitlines()[0]
                        print(err, file=sys.stderr)
                        continue
                    if round_ > 0:
                        samples[name].append(elapsed)
            for name, (_, scenario, _) in runs.items():
                if name not in failures:
                    results[kind].append(Result(name, samples[name], note=f"molecule test -s {scenario}"))
    finally:
        _cleanup(work, project, theirs, podman=not missing)
    out = []
    for kind, image in kinds.items():
        names = [r.name for r in results[kind]]
        if not names:
            out.append(f"## `molecule test`, {kind}\n\nnot run: {failures}\n")
            continue
        base = f"podman driver ({image})" if f"podman driver ({image})" in names else names[0]
        extra = {"podman driver": f"not run: {missing}"} if missing else {}
        extra.update({name: f"failed: {why}" for name, why in failures.items() if f"({image})" in name})
        out.append(table(f"`molecule test` of the webserver role, {kind} (median of {ROUNDS})", results[kind],
                         base, extra))
    return "\n".join(out)


if __name__ == "__main__":
    print(main())
