"""Per-device permissions on the real kernel: the device cgroup our runtime writes, compared with runc's.

`--device HOST:CONTAINER:PERMS` gives the container the node and exactly PERMS (some of r, w, m) on its
major:minor; the kernel checks the number, not the path, so a node the container makes itself with
mknod (allowed for every device, as runc's and Docker's defaults do) gets no more than that. The
cgroup-level tests drive the v1 backend directly: an update changes only the exceptions that differ,
and a host without the v1 devices hierarchy restricts through the cgroup2 mount's eBPF program.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from intermodal.runtime.cgroups import manager_for
from intermodal.runtime.cgroups.detect import detect
from intermodal.runtime.cgroups.v1 import V1Manager
from intermodal.runtime.cgroups.v1 import devices as devices1
from tests.support import bundle as _bundle
from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = pytest.mark.requires("root")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

LOOP = "/dev/loop0"  # a block device (7:0) that no container gets by default
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
# Opens for reading and for writing without moving a byte: the device cgroup decides at open(2).
PROBE = ("dd if={0} of=/dev/null bs=1 count=0 2>/dev/null && echo read-ok || echo read-denied; "
         "(: > {0}) 2>/dev/null && echo write-ok || echo write-denied")
RUNTIMES = [
    pytest.param("imod-runtime"),
    pytest.param("runc", marks=pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")),
]
v1_devices = pytest.mark.skipif("devices" not in detect().v1, reason="no cgroup v1 devices hierarchy here")


@pytest.fixture
def loop_device() -> os.stat_result:
    if not os.path.exists(LOOP):
        pytest.skip(f"{LOOP} is not on this host")
    st = os.stat(LOOP)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 0)
    return st


def _run(imod, image: str, runtime: str, *args: str) -> list[str]:
    out = imod("run", "--rm", "--network", "none", "--runtime", runtime, *args[:-1], image, "sh", "-c", args[-1])
    return out.stdout.decode().split()


@pytest.mark.usefixtures("clean_containers", "loop_device")
class TestDeviceOption:
    @pytest.mark.parametrize("runtime", RUNTIMES)
    @pytest.mark.parametrize(("perms", "expected"), [
        ("r", ["read-ok", "write-denied"]),
        ("m", ["read-denied", "write-denied"]),
    ])
    def test_permissions_narrower_than_rwm(self, imod, busybox_image, runtime, perms, expected):
        got = _run(imod, busybox_image, runtime, "--device", f"{LOOP}:/dev/dx:{perms}",
                   f"test -b /dev/dx && echo node; {PROBE.format('/dev/dx')}")
        assert got == ["node", *expected]

    @pytest.mark.parametrize("runtime", ["imod-runtime", *RUNTIMES[1:]])
    def test_read_write(self, imod, busybox_image, runtime):
        got = _run(imod, busybox_image, runtime, "--device", f"{LOOP}:/dev/dx:rw", PROBE.format("/dev/dx"))
        assert got == ["read-ok", "write-ok"]

    @pytest.mark.parametrize("runtime", RUNTIMES)
    def test_a_node_made_with_mknod_gets_no_more_than_the_number_allows(self, imod, busybox_image, runtime):
        got = _run(imod, busybox_image, runtime, "--device", f"{LOOP}:/dev/dx:r",
                   f"mknod /tmp/mine b 7 0 && echo made; {PROBE.format('/tmp/mine')}")
        assert got == ["made", "read-ok", "write-denied"]

    @pytest.mark.parametrize("runtime", ["imod-runtime", *RUNTIMES[1:]])
    def test_without_the_device_nothing_but_mknod(self, imod, busybox_image, runtime):
        """Every runtime allows mknod of any device (runc's defaults); using the node is what is refused;
        without CAP_MKNOD mknod itself is refused."""
        got = _run(imod, busybox_image, runtime, f"mknod /tmp/mine b 7 0 && echo made; {PROBE.format('/tmp/mine')}")
        assert got == ["made", "read-denied", "write-denied"]
        got = _run(imod, busybox_image, runtime, "--cap-drop", "MKNOD",
                   "mknod /tmp/mine b 7 0 2>/dev/null && echo made || echo mknod-denied")
        assert got == ["mknod-denied"]


# -- the runtime on a bundle: a rule without a node (what --device-cgroup-rule makes) ------------------


def _runc(bundle, tmp_path) -> list[str]:
    root, cid = tmp_path / "runc-root", f"imod-dev-{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(["runc", "--root", str(root), "run", "--bundle", str(bundle.path), cid],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    finally:
        subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().split()


@pytest.mark.parametrize("runtime", ["imod-runtime", *RUNTIMES[1:]])
@pytest.mark.parametrize(("access", "expected"), [
    ("r", ["made", "read-ok", "write-denied"]),
    ("rw", ["made", "read-ok", "write-ok"]),
    ("w", ["made", "read-denied", "write-ok"]),
])
def test_a_rule_alone_governs_the_nodes_the_container_makes(busybox_bundle, created, tmp_path, loop_device,
                                                            runtime, access, expected):
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("resources", {"devices": [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": access}]}))
    busybox_bundle.sh(f"mknod /dev/x b 7 0 && echo made; {PROBE.format('/dev/x')}")
    if runtime == "runc":
        assert _runc(busybox_bundle, tmp_path) == expected
    else:
        result = created.run(busybox_bundle)
        assert (result.code, result.stdout.split()) == (0, expected), result.stderr


# -- the v1 backend's transitions, on the kernel --------------------------------------------------


@pytest.fixture
def cgroups():
    """Managers below a fresh test cgroup; their processes killed and their cgroups removed afterwards."""
    parent = f"imod-test-{uuid.uuid4().hex[:12]}"
    made: list = []
    procs: list[subprocess.Popen] = []

    def manager(make=None):
        mgr = (make or manager_for)(f"{parent}/c", "c")
        made.append(mgr)
        return mgr

    try:
        yield manager, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
        for mgr in [*made, manager_for(parent, "parent")]:
            mgr.destroy()
            assert not [p for p in mgr.paths().values() if os.path.exists(p)]


def _probe(procs: list, tmp_path) -> subprocess.Popen:
    """A shell that, on a line from stdin, opens a 1:11 node (/dev/kmsg's number) for reading and writing."""
    os.mknod(tmp_path / "kmsg", 0o600 | 0o020000, os.makedev(1, 11))
    p = subprocess.Popen([BUSYBOX, "sh", "-c", f"read go; {PROBE.format(tmp_path / 'kmsg')}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    return p


def _list(path: str) -> devices1.State | None:
    with open(os.path.join(path, "devices.list")) as f:
        return devices1.parse_list(f.read())


@v1_devices
def test_update_narrows_a_running_container_to_exactly_the_new_rules(cgroups, tmp_path):
    manager, procs = cgroups
    mgr = manager()
    p = _probe(procs, tmp_path)
    mgr.apply(p.pid)
    first = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}]
    mgr.set({"devices": first})
    assert _list(mgr.paths()["devices"]) == devices1.emulate(first)
    second = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
    mgr.update({"devices": second})
    assert _list(mgr.paths()["devices"]) == devices1.emulate(second)
    out, err = p.communicate(b"go\n", timeout=10)
    assert out.split() == [b"read-ok", b"write-denied"], err


@v1_devices
def test_without_the_v1_devices_hierarchy_the_cgroup2_program_restricts(cgroups, tmp_path):
    lay = detect()
    if lay.mode != "hybrid" or not lay.unified:
        pytest.skip("needs a hybrid host (v1 controllers and a cgroup2 mount)")
    from intermodal.runtime.cgroups.v2 import devices as devices2

    manager, procs = cgroups

    def without_devices(path, name):
        full = manager_for(path, name)
        return V1Manager({k: v for k, v in full.paths().items() if k not in ("devices", "unified")},
                         unified=full.paths()["unified"])

    mgr = manager(without_devices)
    p = _probe(procs, tmp_path)
    mgr.apply(p.pid)
    mgr.set({"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    assert len(devices2.attached(mgr.paths()["unified"])) == 1
    out, err = p.communicate(b"go\n", timeout=10)
    assert out.split() == [b"read-ok", b"write-denied"], err


def test_without_any_way_to_restrict_devices_the_runtime_refuses(tmp_path):
    from intermodal.errors import KernelError

    mgr = V1Manager({})  # no hierarchy at all: nothing is created, nothing to clean up
    with pytest.raises(KernelError, match="device access cannot be restricted"):
        mgr.set({"devices": [{"allow": False, "access": "rwm"}]})
