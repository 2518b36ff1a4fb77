"""v1 freezer: ``freezer.state`` FROZEN/THAWED (cgroup-v1/freezer-subsystem.rst).

Writing FROZEN starts freezing; the state reads FREEZING until every task
stopped, so we poll (bounded) and re-write, as runc does.
"""

from __future__ import annotations

import errno
import time

from intermodal.errors import KernelError
from intermodal.runtime.cgroups.manager import read, write

NAME = "freezer"
TRIES = 1000
DELAY = 0.001


def set_state(path: str, state: str) -> None:
    delay = DELAY
    for i in range(TRIES):
        write(path, "freezer.state", state)
        if read(path, "freezer.state") == state:
            return
        time.sleep(delay)
        if i % 20 == 19:
            # A task stuck in the kernel can keep the cgroup FREEZING; thaw and retry, as runc does.
            write(path, "freezer.state", "THAWED")
            delay = min(delay * 2, 0.01)
    raise KernelError(f"set freezer.state to {state} in", path, errno.EBUSY,
                      "a task did not reach the state in time; retry the pause")
