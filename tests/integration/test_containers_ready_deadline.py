"""`imod start`/`run` waits for the monitor's report of the start with a deadline (launch.READY_TIMEOUT).

A monitor that never reports (here: an OCI runtime stuck in `run`) is killed
with everything it started, and the start fails saying what to do.
"""

from __future__ import annotations

import time

import pytest

from intermodal.containers import launch
from intermodal.containers.spec import ContainerSpec
from intermodal.errors import RuntimeFailure
from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.processes import process_group

pytestmark = [pytest.mark.requires("root", "overlay", "busybox"), pytest.mark.usefixtures("clean_containers")]

STUCK = """#!/bin/sh
# An OCI runtime whose `run` never returns; every other verb succeeds at once.
for word in "$@"; do
    [ "$word" = run ] && exec sleep 60
done
exit 0
"""


def test_a_monitor_that_never_reports_is_killed_and_the_start_fails(engine, busybox_image, tmp_path, monkeypatch):
    runtime = tmp_path / "stuck-runtime"
    runtime.write_text(STUCK)
    runtime.chmod(0o755)
    made: list[launch.PendingMonitor] = []

    class Recorded(launch.PendingMonitor):  # the real monitor; we only learn its process group
        def __init__(self, **options):
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(launch, "PendingMonitor", Recorded)
    monkeypatch.setattr(launch, "READY_TIMEOUT", 2.0)
    container = engine.containers.create(ContainerSpec(image=busybox_image, name="stuck", network="none"),
                                         runtime=str(runtime))
    with pytest.raises(RuntimeFailure, match=r"did not report the start within 2s.*imod rm -f"):
        engine.containers.start(container.id)
    (monitor,) = made
    deadline = time.monotonic() + 10
    while process_group(monitor.pid):  # SIGKILLed: gone as soon as the kernel has torn them down
        assert time.monotonic() < deadline, f"left behind: {process_group(monitor.pid)}"
        time.sleep(0.01)
    assert engine.containers.get("stuck").record  # still there for `imod rm -f`, which the fixture checks
