"""`imod update` / `engine.containers.update`: limits changed in a running container's cgroup, kept for
later starts, shown by inspect; a changed restart policy honoured at the next exit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "busybox"), pytest.mark.usefixtures("clean_containers")]

CGROUP = Path("/sys/fs/cgroup")
WAIT_FOR_GO = "echo started; while [ ! -f /tmp/go ]; do sleep 0.05; done; exit 3"


def inspect(imod, name: str) -> dict:
    return json.loads(imod("container", "inspect", name).stdout)[0]


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def limits(cid: str) -> tuple[str, str, str]:
    """memory.limit_in_bytes, cpu.cfs_quota_us and pids.max of the container's cgroup (v1, as on this host)."""
    return ((CGROUP / "memory" / "intermodal" / cid / "memory.limit_in_bytes").read_text().strip(),
            (CGROUP / "cpu" / "intermodal" / cid / "cpu.cfs_quota_us").read_text().strip(),
            (CGROUP / "pids" / "intermodal" / cid / "pids.max").read_text().strip())


@pytest.fixture
def cgroup_v1():
    if not (CGROUP / "memory").is_dir():
        pytest.skip("these checks read cgroup v1 files")


def test_limits_change_live_and_stay_for_the_next_start(imod, busybox_image, cgroup_v1):
    cid = imod("run", "-d", "--name", "lim", "--network", "none", "-m", "64m", busybox_image,
               "sleep", "1000").stdout.decode().strip()
    assert limits(cid) == (str(64 << 20), "-1", "max")
    out = imod("update", "--memory", "128m", "--cpus", "0.5", "--pids-limit", "50", "lim")
    assert out.stdout == b"lim\n"
    assert limits(cid) == (str(128 << 20), "50000", "50")
    host = inspect(imod, "lim")["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (128 << 20, 500_000_000, 50)
    imod("stop", "-t", "0", "lim")
    imod("start", "lim")  # a new cgroup, from the bundle
    assert limits(cid) == (str(128 << 20), "50000", "50")
    imod("update", "--memory", "0", "--cpus", "0", "--pids-limit", "-1", "lim")  # lifted
    memory, quota, pids = limits(cid)
    assert int(memory) > 1 << 60 and quota == "-1" and pids == "max"
    host = inspect(imod, "lim")["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (0, 0, None)


def test_an_exited_container_gets_the_limits_at_its_next_start(engine, busybox_image, cgroup_v1):
    from intermodal.containers.spec import ContainerSpec

    containers = engine.containers
    c = containers.create(ContainerSpec.build(busybox_image, name="later", command=["sleep", "1000"],
                                              network="none"))
    containers.update("later", memory=96 << 20, pids_limit=20)  # the spec's own values, as the planner gives
    assert containers.get("later").spec.memory == 96 << 20
    containers.start("later")
    assert limits(c.id) == (str(96 << 20), "-1", "20")


def test_restart_policy_change_is_honoured_at_the_next_exit(imod, busybox_image):
    imod("run", "-d", "--name", "rp", "--network", "none", busybox_image, "sh", "-c", WAIT_FOR_GO)
    wait_for(lambda: imod("logs", "rp").stdout == b"started\n", "the first start")
    imod("update", "--restart", "on-failure:1", "rp")
    assert inspect(imod, "rp")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
    imod("exec", "rp", "touch", "/tmp/go")  # exits 3: restarted once (it finds /tmp/go and exits 3 again)
    wait_for(lambda: inspect(imod, "rp")["State"]["Status"] == "exited"
             and inspect(imod, "rp")["RestartCount"] == 1, "one restart, then the exit")
    assert imod("logs", "rp").stdout == b"started\nstarted\n"
    assert inspect(imod, "rp")["State"]["ExitCode"] == 3


def test_restart_policy_lifted_before_the_exit_means_no_restart(imod, busybox_image):
    imod("run", "-d", "--name", "always", "--restart", "always", "--network", "none", busybox_image,
         "sh", "-c", WAIT_FOR_GO)
    wait_for(lambda: imod("logs", "always").stdout == b"started\n", "the first start")
    imod("update", "--restart", "no", "always")
    imod("exec", "always", "touch", "/tmp/go")
    wait_for(lambda: inspect(imod, "always")["State"]["Status"] == "exited", "the exit")
    time.sleep(0.3)  # long enough for a restart's back-off (100 ms) to have started it again
    info = inspect(imod, "always")
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 0
    assert imod("logs", "always").stdout == b"started\n"


def test_bad_updates_change_nothing(imod, busybox_image):
    imod("create", "--name", "bad", "--network", "none", "-m", "64m", busybox_image, "true")
    for args, words in ((["--memory", "1m"], b"too low"), (["--cpus", "x"], b"--cpus"),
                        (["--restart", "sometimes"], b"restart policy"), ([], b"at least one")):
        proc = imod("update", *args, "bad", check=False)
        assert proc.returncode != 0 and words in proc.stderr, (args, proc.stderr)
    assert inspect(imod, "bad")["HostConfig"]["Memory"] == 64 << 20
    imod("create", "--name", "gone", "--rm", "--network", "none", busybox_image, "true")
    proc = imod("update", "--restart", "always", "gone", check=False)
    assert proc.returncode == 1 and b"--rm" in proc.stderr
    proc = imod("update", "--memory", "64m", "nosuch", check=False)
    assert proc.returncode == 1 and b"no such container" in proc.stderr
