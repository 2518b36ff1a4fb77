"""Pay the cgroup migration's RCU grace period early, in a throw-away child.

Every write of cgroup.procs takes the global cgroup_threadgroup_rwsem for
writing. percpu_down_write first waits for an RCU grace period (rcu_sync_enter)
unless another writer passed one recently: after the last writer leaves, the
lock stays in its writer-friendly state for one more grace period
(kernel/rcu/sync.c rcu_sync_exit, rcu_sync_func). A grace period here is
8-16 ms, so the first migration of a start, staging.py's, waited that long
on the start's critical path.

`start` forks a child that takes the lock once, by moving itself into the
cgroup it is in (a no-op), while the launcher still imports the runtime and
`imod` still creates the container. The staged process's migration a few
milliseconds later finds the grace period passed (measured: 8 ms cold ->
0.6-1.8 ms within 15-30 ms of the warm-up). Best effort: if anything fails,
or the window has closed, the migration waits as it always did.

Written against `os` only: it runs before anything else is imported.
"""

import os

CGROUP_ROOT = "/sys/fs/cgroup"


def start() -> int:
    """Fork the child; its pid (0 if fork failed). The caller reaps it (`reap`)."""
    try:
        pid = os.fork()
    except OSError:
        return 0
    if pid == 0:
        try:
            os.closerange(3, 1 << 16)  # hold none of the launcher's pipes: their readers wait for EOF
            take_lock_once()
        finally:
            os._exit(0)
    return pid


def reap(pid: int) -> None:
    if pid:
        try:
            os.waitpid(pid, 0)  # done long before: it lasts one grace period
        except ChildProcessError:
            pass


def take_lock_once() -> bool:
    """Write "0" (ourselves) into our own cgroup.procs in the first hierarchy that takes it."""
    for procs in own_procs_files():
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, b"0")
            return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def own_procs_files(text: str | None = None) -> list[str]:
    """cgroup.procs of the cgroups /proc/self/cgroup (or *text*) names, where hierarchies are usually mounted."""
    if text is None:
        try:
            with open("/proc/self/cgroup", encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return []
    found = []
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.rstrip("/")
        if hierarchy == "0":  # cgroup2: beside v1 (hybrid) or alone
            found += [f"{CGROUP_ROOT}/unified{path}/cgroup.procs", f"{CGROUP_ROOT}{path}/cgroup.procs"]
        elif controllers:
            found.append(f"{CGROUP_ROOT}/{controllers.removeprefix('name=')}{path}/cgroup.procs")
    return found
