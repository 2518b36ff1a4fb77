"""The bundle `runc spec` writes, unchanged but for a busybox rootfs, runs under imod-runtime as under runc.

Each test runs the same bundle with both runtimes (the real commands, private
--root directories) and compares the exit status, the five capability sets in
/proc/self/status and the mounts. Known, deliberate differences: imod-runtime
warns about the ambient capabilities the kernel refuses (runc >= 1.2 does, the
installed 1.1 is silent), its /sys/fs/cgroup tmpfs is read-only (runc 1.1's is
rw although the config says ro) and it also shows the hybrid host's cgroup2
hierarchy at /sys/fs/cgroup/unified.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intermodal.runtime import capabilities as caps
from intermodal.runtime.console import receive
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox", "runc")
busybox_rootfs = _bundle.busybox_rootfs
IMOD = str(Path(sys.executable).parent / "imod-runtime")
TIMEOUT = 30
DEFAULT_CAPS = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]  # runc spec's, in number order
EXIT = 7
# Capabilities and no_new_privs, the mount table, the user namespace's uid map, hostname and RLIMIT_NOFILE.
PROBE = ("grep -E '^(Cap|NoNewPrivs)' /proc/self/status; echo --; cat /proc/self/mountinfo; echo --; "
         f"cat /proc/self/uid_map; echo --; hostname; ulimit -n; ulimit -Hn; exit {EXIT}")


class Runtimes:
    """runc and imod-runtime, each with its own --root; forgets nothing it started."""

    def __init__(self, base: Path) -> None:
        self.commands = {"runc": ["runc", "--root", str(base / "runc")], "imod": [IMOD, "--root", str(base / "imod")]}
        self.ids: list[tuple[str, str]] = []

    def __call__(self, runtime: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        """Output to files, not pipes: a detached container keeps them open."""
        if args and args[0] in ("run", "create"):
            self.ids.append((runtime, args[-1]))
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(stdin)
            fin.seek(0)
            proc = subprocess.run([*self.commands[runtime], *args], stdin=fin, stdout=fout, stderr=ferr,
                                  timeout=TIMEOUT)
            fout.seek(0)
            ferr.seek(0)
            proc.stdout, proc.stderr = fout.read().decode(errors="replace"), ferr.read().decode(errors="replace")
        return proc

    def cleanup(self) -> list[str]:
        left = []
        for runtime, cid in self.ids:
            subprocess.run([*self.commands[runtime], "delete", "--force", cid], capture_output=True,
                           timeout=TIMEOUT)
            listed = subprocess.run([*self.commands[runtime], "list", "-q"], capture_output=True, text=True,
                                    timeout=TIMEOUT).stdout.split()
            left += [f"{runtime} container {cid}" for c in listed if c == cid]
            left += [f"cgroup {path}" for path in _cgroups_named(cid)]
        return left


def _cgroups_named(name: str, depth: int = 3) -> list[str]:
    """Cgroup directories called *name* in the top *depth* levels of every hierarchy (bounded walk)."""
    found = []
    level = [os.path.join("/sys/fs/cgroup", h) for h in os.listdir("/sys/fs/cgroup")]
    for _ in range(depth):
        below = []
        for directory in level:
            try:
                entries = [e for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            found += [e.path for e in entries if e.name == name]
            below += [e.path for e in entries]
        level = below
    return found


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[Runtimes]:
    rts = Runtimes(tmp_path)
    try:
        yield rts
    finally:
        left = rts.cleanup()
    assert not left, f"left behind: {left}"


def runc_spec_bundle(rootfs: Path, *flags: str) -> Path:
    """`runc spec [flags]` in a fresh 0711 directory under /tmp (a mapped uid must reach the rootfs)."""
    path = Path(tempfile.mkdtemp(prefix="imod-runc-spec-", dir="/tmp"))
    os.chmod(path, 0o711)
    subprocess.run(["runc", "spec", *flags], cwd=path, check=True, capture_output=True, timeout=TIMEOUT)
    shutil.copytree(rootfs, path / "rootfs", symlinks=True)
    return path


@pytest.fixture
def runc_bundle(busybox_rootfs: Path) -> Iterator[Path]:
    path = runc_spec_bundle(busybox_rootfs)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rootless_bundle(busybox_rootfs: Path) -> Iterator[Path]:
    path = runc_spec_bundle(busybox_rootfs, "--rootless")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def edit(bundle: Path, **process: object) -> dict:
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(process)
    (bundle / "config.json").write_text(json.dumps(config))
    return config


def sections(stdout: str) -> tuple[dict[str, int], dict[str, list[tuple]], str, list[str]]:
    """(capability sets and NoNewPrivs, mounts by mount point in mount order, uid map, [hostname, soft and
    hard RLIMIT_NOFILE]) from PROBE's output."""
    status, mountinfo, uid_map, rest = stdout.split("--\n")
    sets = {k.strip(): int(v, 16) for k, v in (line.split(":") for line in status.splitlines())}
    mounts: dict[str, list[tuple]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        sep = fields.index("-")
        # (root within the source, per-mount options, type, superblock options); a point may be stacked
        mounts.setdefault(fields[4], []).append((fields[3], fields[5], fields[sep + 1], fields[sep + 3]))
    return sets, mounts, " ".join(uid_map.split()), rest.split()


CGROUP = "/sys/fs/cgroup"


def same_mount(point: str, runc: tuple, imod: tuple) -> bool:
    root, options, fstype, _sb_options = runc
    if point == CGROUP and fstype == "tmpfs" and options.startswith("rw,nosuid"):
        # The container's own cgroup tmpfs: runc 1.1 leaves it rw although the config says ro.
        return imod[2] == "tmpfs" and imod[1].startswith("ro,nosuid")
    if point.startswith(CGROUP + "/") and root != "/":
        # A hierarchy bound at the container's own cgroup, whose name is the container id.
        return imod[1:] == runc[1:] and os.path.dirname(imod[0]) == os.path.dirname(root)
    return imod == runc


def compare_mounts(runc: dict[str, list[tuple]], imod: dict[str, list[tuple]]) -> None:
    for point, entries in runc.items():
        ours = imod.get(point, [])
        if point == CGROUP + "/unified" and len(ours) == len(entries) + 1:
            assert ours[-1][2] == "cgroup2" and ours[-1][1].startswith("ro,"), ours  # the hybrid host's v2
            ours = ours[:-1]
        assert len(ours) == len(entries) and all(map(same_mount, [point] * len(ours), entries, ours)), \
            (point, entries, ours)
    extra = set(imod) - set(runc)
    assert extra <= {CGROUP + "/unified"}, extra


def assert_default_caps(sets: dict[str, int]) -> None:
    assert caps.mask_names(sets["CapBnd"]) == caps.mask_names(sets["CapPrm"]) == DEFAULT_CAPS
    assert sets["CapEff"] == sets["CapPrm"]
    assert sets["CapInh"] == 0 and sets["CapAmb"] == 0  # ambient needs inheritable: the kernel refused


def test_runc_spec_default_config_runs_like_runc(runc_bundle, runtimes):
    """Only terminal off (the runc docs' own edit for a non-interactive run) and the command changed."""
    config = edit(runc_bundle, terminal=False, args=["sh", "-c", PROBE])
    assert config["process"]["capabilities"]["ambient"] and "inheritable" not in config["process"]["capabilities"]
    got = {rt: runtimes(rt, "run", "--bundle", str(runc_bundle), f"spec-{rt}-{os.getpid()}") for rt in ("runc", "imod")}
    assert got["runc"].returncode == got["imod"].returncode == EXIT, got["imod"].stderr
    runc, imod = sections(got["runc"].stdout), sections(got["imod"].stdout)
    assert imod[0] == runc[0] and imod[0]["NoNewPrivs"] == 1
    assert_default_caps(imod[0])
    compare_mounts(runc[1], imod[1])
    assert imod[3] == runc[3] == ["runc", "1024", "1024"]
    warning = got["imod"].stderr
    assert "process.capabilities.ambient: can't raise CAP_KILL (not in inheritable)" in warning
    assert "CAP_NET_BIND_SERVICE (not in inheritable), CAP_AUDIT_WRITE (not in inheritable)" in warning


def test_ambient_caps_listed_as_inheritable_too_are_raised(runc_bundle, runtimes):
    """The control: the same config with the inheritable set runc spec leaves out gets them, no warning."""
    config = edit(runc_bundle, terminal=False, args=["sh", "-c", PROBE])
    config["process"]["capabilities"]["inheritable"] = list(DEFAULT_CAPS)
    (runc_bundle / "config.json").write_text(json.dumps(config))
    got = {rt: runtimes(rt, "run", "--bundle", str(runc_bundle), f"inh-{rt}-{os.getpid()}") for rt in ("runc", "imod")}
    assert got["runc"].returncode == got["imod"].returncode == EXIT, got["imod"].stderr
    sets = sections(got["imod"].stdout)[0]
    assert sets == sections(got["runc"].stdout)[0]
    assert caps.mask_names(sets["CapAmb"]) == caps.mask_names(sets["CapInh"]) == DEFAULT_CAPS
    assert "can't raise" not in got["imod"].stderr


def test_runc_spec_rootless_config_runs_like_runc(rootless_bundle, runtimes):
    """`runc spec --rootless`: a user namespace mapping our uid (0 here) to root, no network namespace."""
    config = edit(rootless_bundle, terminal=False, args=["sh", "-c", PROBE])
    assert {"type": "user"} in config["linux"]["namespaces"] and config["linux"]["uidMappings"]
    got = {rt: runtimes(rt, "run", "--bundle", str(rootless_bundle), f"rl-{rt}-{os.getpid()}")
           for rt in ("runc", "imod")}
    assert got["runc"].returncode == got["imod"].returncode == EXIT, got["imod"].stderr
    runc, imod = sections(got["runc"].stdout), sections(got["imod"].stdout)
    assert imod[2] == runc[2] == "0 0 1"
    assert imod[0] == runc[0]
    assert_default_caps(imod[0])
    compare_mounts(runc[1], imod[1])
    assert imod[3] == runc[3]


class ConsoleServer:
    """What conmon does: listen on a path, take the pty master the runtime sends."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(TIMEOUT)
        self.master = -1

    def take(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            self.master, _name = receive(conn)

    def converse(self, typed: bytes, process: subprocess.Popen | None = None) -> str:
        """Type *typed*, then read until the terminal closes (EIO) or, after *process* ended, is quiet."""
        os.write(self.master, typed)
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if not select.select([self.master], [], [], 0.2)[0]:
                if process is not None and process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: no process holds the terminal any more
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace").replace("\r", "")

    def close(self) -> None:
        self.server.close()
        if self.master >= 0:
            os.close(self.master)


TYPED = b"echo hi-$((6*7)); grep ^Cap /proc/self/status; exit 5\n"


def _caps_in(output: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1], 16) for line in output.splitlines() if line.startswith("Cap")}


def test_unchanged_config_with_a_console_socket(runc_bundle, runtimes, tmp_path):
    """Not even terminal changed: `sh` on a pty handed over --console-socket (runc: run -d, as it ignores the
    socket in the foreground); imod-runtime's foreground run also exits with the shell's status."""
    outputs = {}
    for rt, detach in (("runc", ["-d"]), ("imod", [])):
        console = ConsoleServer(tmp_path / f"{rt}.sock")
        try:
            cid = f"tty-{rt}-{os.getpid()}"
            runtimes.ids.append((rt, cid))
            proc = subprocess.Popen([*runtimes.commands[rt], "run", *detach, "--console-socket",
                                     str(tmp_path / f"{rt}.sock"), "--bundle", str(runc_bundle), cid],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                console.take()
                outputs[rt] = console.converse(TYPED, proc)
                assert proc.wait(TIMEOUT) == (0 if detach else 5), proc.stderr.read()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stderr.close()
        finally:
            console.close()
    for rt, out in outputs.items():
        assert "\nhi-42\n" in out, (rt, out)
    assert _caps_in(outputs["imod"]) == _caps_in(outputs["runc"])
    assert_default_caps(_caps_in(outputs["imod"]))


def test_unchanged_config_in_the_foreground_relays_our_stdio(runc_bundle, runtimes):
    """`imod-runtime run ID` without --console-socket, as in the runc docs: the runtime takes the pty and
    relays stdin/stdout (runc needs its stdin to be a terminal; we relay any stdin)."""
    before = set(os.listdir(tempfile.gettempdir()))
    got = runtimes("imod", "run", "--bundle", str(runc_bundle), f"fg-{os.getpid()}", stdin=TYPED)
    assert got.returncode == 5, got.stderr
    assert not {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("imod-runtime-tty-")} - before
    out = got.stdout.replace("\r", "")
    assert "\nhi-42\n" in out and "\n/ # " in out, out
    assert_default_caps(_caps_in(out))


def test_foreground_terminal_takes_our_size_and_gives_our_terminal_back(runc_bundle, runtimes, tmp_path):
    """On a terminal (as runc wants it): ours goes raw while the container's is in use, then is restored;
    the container's terminal gets our window size."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 123, 0, 0))
    before = termios.tcgetattr(slave)
    cid = f"pty-{os.getpid()}"
    runtimes.ids.append(("imod", cid))
    console = ConsoleServer(tmp_path / "unused.sock")
    console.master = master  # read our side of the terminal as a console
    try:
        with open(tmp_path / "stderr", "wb") as err:
            proc = subprocess.Popen([*runtimes.commands["imod"], "run", "--bundle", str(runc_bundle), cid],
                                    stdin=slave, stdout=slave, stderr=err)
        try:
            out = console.converse(b"stty size; exit 6\n", proc)
            assert proc.wait(TIMEOUT) == 6, (tmp_path / "stderr").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "\n41 123\n" in out, out
        assert termios.tcgetattr(slave) == before
    finally:
        console.close()
        os.close(slave)


@pytest.mark.parametrize("verb", [("create",), ("run", "-d")], ids=["create", "run-detached"])
def test_a_terminal_without_console_socket_is_refused_when_detached(runc_bundle, runtimes, verb):
    """Like runc ("cannot allocate tty if runc will detach without setting console socket")."""
    got = {rt: runtimes(rt, *verb, "--bundle", str(runc_bundle), f"nt-{rt}-{os.getpid()}") for rt in ("runc", "imod")}
    assert got["runc"].returncode == got["imod"].returncode == 1
    assert "console socket" in got["runc"].stderr
    assert "no --console-socket was given; pass one, or set terminal to false" in got["imod"].stderr


def test_imod_spec_rootless_changes_what_runc_spec_rootless_changes(busybox_rootfs, runtimes, tmp_path):
    """`imod-runtime spec --rootless` makes runc's changes to its own default, and both runtimes run it."""
    path = Path(tempfile.mkdtemp(prefix="imod-spec-rootless-", dir="/tmp"))
    try:
        os.chmod(path, 0o711)
        subprocess.run([IMOD, "spec", "--rootless", "--bundle", str(path)], check=True, timeout=TIMEOUT)
        ours = json.loads((path / "config.json").read_text())
        runc_dir = tmp_path / "runc"
        runc_dir.mkdir()
        subprocess.run(["runc", "spec", "--rootless"], cwd=runc_dir, check=True, timeout=TIMEOUT)
        theirs = json.loads((runc_dir / "config.json").read_text())
        for key in ("uidMappings", "gidMappings"):
            assert ours["linux"][key] == theirs["linux"][key]
        assert "resources" not in ours["linux"] and "resources" not in theirs["linux"]
        kinds = [ns["type"] for ns in ours["linux"]["namespaces"]]
        assert "network" not in kinds and kinds[-1] == "user"
        by_dest = {m["destination"]: m for m in ours["mounts"]}
        for mount in theirs["mounts"]:
            if mount["destination"] in ("/sys", "/dev/pts"):
                assert by_dest[mount["destination"]] == mount
        shutil.copytree(busybox_rootfs, path / "rootfs", symlinks=True)
        edit(path, terminal=False, args=["sh", "-c", PROBE])
        got = {rt: runtimes(rt, "run", "--bundle", str(path), f"irl-{rt}-{os.getpid()}") for rt in ("runc", "imod")}
        assert got["runc"].returncode == got["imod"].returncode == EXIT, (got["runc"].stderr, got["imod"].stderr)
        runc, imod = sections(got["runc"].stdout), sections(got["imod"].stdout)
        assert imod[2] == runc[2] == f"0 {os.geteuid()} 1"
        assert imod[0] == runc[0] and imod[0]["CapAmb"] == 0
        compare_mounts(runc[1], imod[1])
        assert caps.mask_names(imod[0]["CapBnd"]) == sorted(ours["process"]["capabilities"]["bounding"],
                                                           key=caps.number)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_exec_in_a_runc_spec_container_gets_the_same_caps(runc_bundle, runtimes):
    """exec starts from the config's process: the same best-effort ambient set, warned about again."""
    edit(runc_bundle, terminal=False, args=["sleep", "60"])
    got = {}
    for rt in ("runc", "imod"):
        cid = f"ex-{rt}-{os.getpid()}"
        created = runtimes(rt, "run", "-d", "--bundle", str(runc_bundle), cid)
        assert created.returncode == 0, created.stderr
        got[rt] = runtimes(rt, "exec", cid, "sh", "-c", "grep ^Cap /proc/self/status; exit 4")
        assert runtimes(rt, "kill", cid, "KILL").returncode == 0
    assert got["runc"].returncode == got["imod"].returncode == 4, got["imod"].stderr
    assert _caps_in(got["imod"].stdout) == _caps_in(got["runc"].stdout)
    assert_default_caps(_caps_in(got["imod"].stdout))
    assert "process.capabilities.ambient: can't raise CAP_KILL (not in inheritable)" in got["imod"].stderr
