"""Networking: what it adds to `run --rm busybox true` (imod and podman), one endpoint's cost, and the
throughput of a published port against loopback direct.

Needs root, nft and busybox. Everything runs in a throwaway engine root with
its own nft table and test-prefixed names; traffic goes only to our own
containers and to 127.0.0.1.

- Start-up: `imod run --rm busybox true` with the default bridge network
  minus the same with `--network none`, beside podman's same difference
  (its own --root, runc and cgroupfs, overlay; rounds interleaved so that a
  busy moment of the machine hits every command alike).
- Endpoint: attach + detach of one endpoint (veth, IPAM, nft) on a network
  namespace made here, without and with a published port.
- Throughput: a bounded transfer of SIZE_MB (a file of zeros) served by
  `busybox nc -ll -e cat FILE` and read by `busybox nc -e dd` (every byte counted):
  over plain loopback with the server on the host, straight to the
  container's address (bridge only), through the port published on
  127.0.0.1 (OUTPUT DNAT + masquerade + bridge), and on [::1] (the
  network is dual stack; that one goes through intermodal's userland proxy).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import Result, measure, table  # noqa: E402

SIZE_MB = 256
IMOD = str(Path(sys.executable).parent / "imod")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def _wait_listening(ns: str | None, port: int) -> None:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    for _ in range(200):  # bounded: 10 s
        out = subprocess.run([*prefix, "cat", "/proc/net/tcp", "/proc/net/tcp6"], capture_output=True,
                             text=True).stdout
        if any(len(f) > 3 and f[1].endswith(f":{port:04X}") and f[3] == "0A" for f in map(str.split,
                                                                                          out.splitlines())):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after 10 s")


def _fetch(host: str, port: int) -> None:
    """Read the whole file from the nc server into `dd` (run by nc on the socket: nc's own copy loop
    moves small chunks and would be the bottleneck); a short read is an error, not a fast run."""
    proc = subprocess.run([BUSYBOX, "nc", host, str(port), "-e", BUSYBOX, "dd", "of=/dev/null", "bs=1M",
                           "iflag=fullblock"], capture_output=True, text=True, timeout=120)
    if f"{SIZE_MB}+0 records in" not in proc.stderr:
        raise RuntimeError(f"nc from {host}:{port} did not read {SIZE_MB} MB: {proc.stderr.strip()[:200]}")


def _throughput(name: str, host: str, port: int, repeat: int) -> Result:
    r = measure(name, lambda: _fetch(host, port), repeat=repeat, warmup=1)
    r.note = f"{SIZE_MB / r.median:.0f} MB/s"
    return r


def _interleaved(runs: dict, repeat: int, warmup: int = 2) -> list[Result]:
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return [Result(name, values) for name, values in samples.items()]


PODMAN_RUN = ["run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def _startup(work: Path, imod: list[str], tar: Path) -> str:
    """`run --rm busybox true`: bridge minus none, for imod and (if installed) podman."""
    from bench.common import command

    runs = {"imod run --rm --network none": command([*imod, "run", "--rm", "--network", "none", "busybox", "true"]),
            "imod run --rm (bridge)": command([*imod, "run", "--rm", "busybox", "true"])}
    podman = None
    if shutil.which("podman") and shutil.which("runc"):
        podman = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"),
                  "--storage-driver", "overlay", "--events-backend", "none", "--cgroup-manager", "cgroupfs",
                  "--runtime", "runc"]
        try:
            _run(*podman, "import", "-q", str(tar), "localhost/bench-busybox:latest")
        except subprocess.CalledProcessError as err:
            print(f"podman skipped: {err.stderr.decode(errors='replace').strip()[:200]}", file=sys.stderr)
            podman = None
    if podman:
        runs["podman run --rm --network none"] = command([*podman, *PODMAN_RUN, "--network", "none",
                                                          "localhost/bench-busybox", "true"])
        runs["podman run --rm (bridge)"] = command([*podman, *PODMAN_RUN, "localhost/bench-busybox", "true"])
    try:
        results = _interleaved(runs, repeat=25)
    finally:
        if podman:
            subprocess.run([*podman, "rm", "-f", "-a"], capture_output=True)
            subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
    # Medians and minimums both: on a busy machine the spread of one run (±100 ms) exceeds the
    # difference measured; the minimum is each command's cost when nothing else got in the way.
    med = {r.name: r.median for r in results}
    low = {r.name: min(r.samples) for r in results}
    extra = {}
    for what, stat in (("median", med), ("min", low)):
        imod_cost = stat["imod run --rm (bridge)"] - stat["imod run --rm --network none"]
        extra[f"imod: networking adds (bridge - none, {what})"] = f"{imod_cost * 1000:.1f} ms"
        if podman:
            podman_cost = stat["podman run --rm (bridge)"] - stat["podman run --rm --network none"]
            extra[f"podman: networking adds (bridge - none, {what})"] = f"{podman_cost * 1000:.1f} ms"
            extra[f"imod's networking cost / podman's ({what})"] = (f"{imod_cost / podman_cost:.2f}x"
                                                                   if podman_cost > 0 else "n/a")
    return table("network: what networking adds to `run --rm busybox true`", results,
                 "imod run --rm --network none", extra)


def main() -> str:
    import compileall

    from tests.support.netns import cleanup_engine, engine_settings

    import intermodal
    from intermodal.engine import Engine
    from intermodal.network.manager import EndpointRequest
    from intermodal.tools.busybox import build_rootfs_tar

    compileall.compile_dir(Path(intermodal.__file__).parent, quiet=1)  # as installed: no compiling per run
    work = Path(tempfile.mkdtemp(prefix="imod-bench-net-"))
    root = work / "root"
    root.mkdir()
    settings = engine_settings(root)  # test names, its own nft table, subnets clear of host routes
    ns = f"itn-{secrets.token_hex(3)}"
    imod = [IMOD, "--root", str(root)]
    www = work / "www"
    www.mkdir()
    with open(www / "blob", "wb") as f:
        f.truncate(SIZE_MB << 20)
    engine = Engine(root)
    procs: list[subprocess.Popen] = []
    try:
        tar = build_rootfs_tar(work / "busybox.tar")
        _run(*imod, "import", str(tar), "busybox:latest")
        startup = _startup(work, imod, tar)

        _run("ip", "netns", "add", ns)
        engine.networks.create("bench")
        path = f"/run/netns/{ns}"

        def cycle(ports: list[str]) -> tuple[float, float]:
            cid = secrets.token_hex(32)
            t0 = time.perf_counter()
            engine.networks.attach(cid, path, [EndpointRequest("bench")], ports=ports)
            t1 = time.perf_counter()
            engine.networks.detach(cid)
            return t1 - t0, time.perf_counter() - t1

        results = []
        for label, ports in (("no ports", []), ("one published port", ["80"])):
            cycle(ports)  # warm-up: page cache, pyroute2 import
            samples = [cycle(ports) for _ in range(20)]
            results += [Result(f"attach, {label}", [s[0] for s in samples]),
                        Result(f"detach, {label}", [s[1] for s in samples]),
                        Result(f"attach+detach, {label}", [s[0] + s[1] for s in samples])]
        lifecycle = table("network: one endpoint (bridge network, veth, IPAM, nft)", results,
                          "attach+detach, no ports")

        _run(*imod, "network", "create", "--ipv6", "dual")  # dual stack: [::1] goes through the userland proxy
        _run(*imod, "run", "-d", "--name", "server", "--network", "dual", "-p", "5000", "-v", f"{www}:/www:ro",
             "busybox", "nc", "-ll", "-p", "5000", "-e", "cat", "/www/blob")
        info = json.loads(subprocess.run([*imod, "container", "inspect", "server"], check=True,
                                         capture_output=True).stdout)[0]["NetworkSettings"]
        address = info["Networks"]["dual"]["IPAddress"]
        published = int(info["Ports"]["5000/tcp"][0]["HostPort"])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            loop_port = s.getsockname()[1]
        procs.append(subprocess.Popen([BUSYBOX, "nc", "-ll", "-p", str(loop_port), "-e", "cat", str(www / "blob")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_listening(None, loop_port)
        for _ in range(100):  # bounded: the container's nc listens a moment after `run -d` returns
            try:
                _fetch(address, 5000)
                break
            except RuntimeError:
                time.sleep(0.1)
        transfer = [
            _throughput("loopback direct (host nc)", "127.0.0.1", loop_port, 11),
            _throughput("container address (bridge)", address, 5000, 11),
            _throughput("published port on 127.0.0.1", "127.0.0.1", published, 11),
            _throughput("published port on [::1] (userland proxy)", "::1", published, 11),
        ]
        speed = table(f"network: {SIZE_MB} MB through busybox nc", transfer, "loopback direct (host nc)",
                      {"published / loopback throughput (median)": f"{transfer[0].median / transfer[2].median:.2f}x",
                       "published / loopback throughput (best run)":
                       f"{min(transfer[0].samples) / min(transfer[2].samples):.2f}x"})
        return startup + "\n" + lifecycle + "\n" + speed
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
        subprocess.run([*imod, "rm", "-f", "server"], capture_output=True)
        cleanup_engine(engine, settings["table"])
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(main())
