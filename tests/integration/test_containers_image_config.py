"""What the image's config supplies (ENV, WORKDIR, USER, ENTRYPOINT/CMD, STOPSIGNAL, VOLUME, HEALTHCHECK)."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

CHANGES = [
    "ENV GREETING=from-image",
    "WORKDIR /var/www",
    "USER nobody",
    'ENTRYPOINT ["/bin/sh", "-c"]',
    'CMD ["echo $GREETING; pwd; id -u"]',
    "STOPSIGNAL SIGUSR1",
    "VOLUME /data",
    "HEALTHCHECK --interval=1s --retries=1 CMD test -e /tmp/healthy",
]


@pytest.fixture
def configured(engine, busybox_tar) -> str:
    engine.images.import_rootfs(busybox_tar, "configured:1", changes=CHANGES)
    return "configured:1"


def _inspect(imod, name: str) -> dict:
    return json.loads(imod("container", "inspect", name).stdout)[0]


def test_image_defaults_apply(imod, configured):
    out = imod("run", "--name", "d", configured).stdout
    assert out == b"from-image\n/var/www\n65534\n"
    info = _inspect(imod, "d")
    assert info["Config"]["StopSignal"] == "SIGUSR1"
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /tmp/healthy"]  # shell form
    assert [m["Destination"] for m in info["Mounts"]] == ["/data"]  # VOLUME: an anonymous volume


def test_overrides_win(imod, configured):
    out = imod("run", "--rm", "-e", "GREETING=mine", "-w", "/tmp", "-u", "0", configured)
    assert out.stdout == b"mine\n/tmp\n0\n"
    out = imod("run", "--rm", configured, "echo replaced")  # CMD replaced, ENTRYPOINT kept
    assert out.stdout == b"replaced\n"


def test_image_stop_signal_is_used(imod, configured):
    imod("run", "-d", "--name", "sig", configured, "trap 'exit 30' USR1; while true; do sleep 0.05; done")
    imod("stop", "sig")
    assert _inspect(imod, "sig")["State"]["ExitCode"] == 30


def test_image_volume_is_removed_with_rm_v(imod, configured):
    imod("create", "--name", "vol", configured)
    anonymous = _inspect(imod, "vol")["Mounts"][0]["Name"]
    assert imod("volume", "ls", "-q").stdout.decode().split() == [anonymous]
    imod("rm", "-v", "vol")
    assert imod("volume", "ls", "-q").stdout == b""


def test_healthcheck_from_image_goes_unhealthy_then_healthy(imod, configured):
    imod("run", "-d", "--name", "hc", configured, "sleep 1000")
    assert _inspect(imod, "hc")["State"]["Health"]["Status"] == "starting"
    _wait(lambda: _inspect(imod, "hc")["State"]["Health"]["Status"] == "unhealthy", "unhealthy")
    assert b"(unhealthy)" in imod("ps").stdout
    imod("exec", "hc", "touch", "/tmp/healthy")
    _wait(lambda: _inspect(imod, "hc")["State"]["Health"]["Status"] == "healthy", "healthy")
    health = _inspect(imod, "hc")["State"]["Health"]
    assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0 and len(health["Log"]) <= 5


def test_health_flags_override_and_timeout(imod, configured):
    # The timeout leaves the check's exec (an interpreter's start) time to print even on a busy machine.
    imod("run", "-d", "--name", "slow", "--health-cmd", "echo checking; sleep 30", "--health-interval", "0.2s",
         "--health-timeout", "2s", configured, "sleep 1000")
    _wait(lambda: _inspect(imod, "slow")["State"]["Health"]["Log"], "a finished check")
    entry = _inspect(imod, "slow")["State"]["Health"]["Log"][0]
    assert entry["ExitCode"] == -1 and entry["Output"] == "checking\nHealth check exceeded timeout (2s)"


def test_health_start_interval_checks_often_until_healthy(imod, configured):
    """Docker 25's --health-start-interval: with an interval of an hour, only it brings the first check."""
    imod("run", "-d", "--name", "si", "--health-cmd", "true", "--health-interval", "1h", "--health-start-period",
         "1h", "--health-start-interval", "100ms", configured, "sleep 1000")
    _wait(lambda: _inspect(imod, "si")["State"]["Health"]["Status"] == "healthy", "a check after the start interval")
    check = _inspect(imod, "si")["Config"]["Healthcheck"]
    assert (check["StartInterval"], check["Interval"]) == (100_000_000, 3600 * 10**9)
    time.sleep(0.5)  # healthy now: the next check is an hour away, not the start interval
    assert len(_inspect(imod, "si")["State"]["Health"]["Log"]) == 1
    proc = imod("create", "--health-cmd", "true", "--health-start-interval", "10us", configured, check=False)
    assert proc.returncode == 125 and b"at least 1ms" in proc.stderr


def test_no_healthcheck_disables_the_image_one(imod, configured):
    imod("run", "-d", "--name", "nohc", "--no-healthcheck", configured, "sleep 1000")
    info = _inspect(imod, "nohc")
    assert "Health" not in info["State"] and "Healthcheck" not in info["Config"]


def _wait(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
