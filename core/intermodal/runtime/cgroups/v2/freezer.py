"""v2 freezer: the core file ``cgroup.freeze`` (Linux 5.2+), no controller needed.

The write starts freezing; ``cgroup.events`` says ``frozen 1`` once every
task stopped, so we poll it with a bound.
"""

from __future__ import annotations

import errno
import time

from intermodal.errors import KernelError
from intermodal.runtime.cgroups.manager import exists, read_keyed, write

TRIES = 1000
DELAY = 0.001


def set_frozen(path: str, frozen: bool) -> None:
    if not exists(path, "cgroup.freeze"):
        raise KernelError("freeze", path, errno.ENOTSUP, "cgroup.freeze needs Linux 5.2 or later")
    value = 1 if frozen else 0
    write(path, "cgroup.freeze", value)
    delay = DELAY
    for _ in range(TRIES):
        if read_keyed(path, "cgroup.events").get("frozen") == value:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    raise KernelError("freeze" if frozen else "thaw", path, errno.EBUSY,
                      "the kernel did not report the cgroup frozen/thawed in time; retry")
