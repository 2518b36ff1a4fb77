"""Networking: the cost of attaching and detaching one endpoint, and published-port throughput.

Needs root, nft and busybox. Everything runs in a throwaway engine root with
its own nft table and test-prefixed names, against a network namespace made
here; traffic goes only to that namespace and to 127.0.0.1. Throughput is a
bounded transfer (SIZE_MB of zeros served by `busybox httpd`, fetched with
`busybox wget -O /dev/null`), once through the published port on 127.0.0.1
(OUTPUT DNAT + masquerade + bridge), once straight to the container's address
(bridge only), and once over plain loopback with httpd in the host namespace.

Beside them, podman's cost of networking: `podman run --rm busybox true` with
its default bridge network (netavark) minus the same with `--network none`
(own --root, runc and cgroupfs, since crun refuses this host's hybrid cgroups).
The same difference for `imod run` (its default network is `bridge`) is in
bench/containers.py.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import Result, measure, table  # noqa: E402

SIZE_MB = 256
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
    raise RuntimeError(f"httpd on port {port} did not start")


def _fetch(url: str) -> None:
    _run(BUSYBOX, "wget", "-q", "-O", "/dev/null", url)


def _throughput(name: str, url: str, repeat: int) -> Result:
    r = measure(name, lambda: _fetch(url), repeat=repeat, warmup=1)
    r.note = f"{SIZE_MB / r.median:.0f} MB/s"
    return r


def _podman(work: Path) -> str:
    from intermodal.tools.busybox import build_rootfs_tar

    tar = build_rootfs_tar(work / "busybox.tar")
    base = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"), "--storage-driver",
            "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
    run = [*base, "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    try:
        _run(*base, "import", "-q", str(tar), "localhost/bench-busybox:latest")
        results = [measure("podman run --network none", lambda: _run(*run, "--network", "none",
                                                                     "localhost/bench-busybox", "true"), repeat=7),
                   measure("podman run (bridge)", lambda: _run(*run, "localhost/bench-busybox", "true"), repeat=7)]
    except subprocess.CalledProcessError as err:
        return f"## podman: skipped ({err.stderr.decode(errors='replace').strip()[:200]})\n"
    finally:
        subprocess.run([*base, "rmi", "-a", "-f"], capture_output=True)
    added = results[1].median - results[0].median
    return table("podman: what its bridge networking adds to `run --rm busybox true`", results,
                 "podman run --network none", {"podman's networking cost": f"{added * 1000:.1f} ms"})


def main() -> str:
    from intermodal.engine import Engine
    from intermodal.network.manager import EndpointRequest

    work = Path(tempfile.mkdtemp(prefix="imod-bench-net-"))
    tag = secrets.token_hex(3)
    table_name, ns = f"imt{tag}", f"itn-{tag}"
    (work / "root" / "networks").mkdir(parents=True)
    (work / "root" / "networks" / "config.json").write_text(json.dumps({
        "table": table_name, "default_bridge": f"itb{tag}d", "bridge_prefix": f"itb{tag}", "veth_prefix": "itv",
        "default_subnet": "10.232.250.0/24"}))
    www = work / "www"
    www.mkdir()
    with open(www / "blob", "wb") as f:
        f.truncate(SIZE_MB * 1024 * 1024)
    engine = Engine(work / "root")
    procs: list[subprocess.Popen] = []
    try:
        _run("ip", "netns", "add", ns)
        engine.networks.create("bench", subnet="10.231.250.0/24")
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

        cid = secrets.token_hex(32)
        (ep,) = engine.networks.attach(cid, path, [EndpointRequest("bench")], ports=["80"])
        (binding,) = engine.networks.published_ports(cid)
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, BUSYBOX, "httpd", "-f", "-p", "80", "-h",
                                       str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_listening(ns, 80)
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            loop_port = s.getsockname()[1]
        procs.append(subprocess.Popen([BUSYBOX, "httpd", "-f", "-p", f"127.0.0.1:{loop_port}", "-h", str(www)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_listening(None, loop_port)
        transfer = [
            _throughput("loopback, host httpd", f"http://127.0.0.1:{loop_port}/blob", 5),
            _throughput("container address (bridge)", f"http://{ep.address}:80/blob", 5),
            _throughput("published port on 127.0.0.1", f"http://127.0.0.1:{binding.host_port}/blob", 5),
        ]
        engine.networks.detach(cid)
        podman = _podman(work) if shutil.which("podman") else ""
        speed = table(f"network: {SIZE_MB} MB over HTTP (busybox httpd -> busybox wget)", transfer,
                      "loopback, host httpd")
        return lifecycle + "\n" + speed + ("\n" + podman if podman else "")
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
        for rec in engine.networks.store.containers():
            engine.networks.detach(rec.container_id)
        for net in engine.networks.list():
            engine.networks._teardown(net)
        subprocess.run(["nft", "delete", "table", "inet", table_name], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(main())
