"""The monitor's launcher: a short-lived child that drives our runtime in-process for it.

The monitor forks it before `imod` sends the go, so the runtime's import
(~40 ms) overlaps `imod`'s work on the container; it then creates and
starts the container with `intermodal.runtime` (no runtime command, no new
interpreter) and exits. For a new container whose id `imod` chose ahead, it
also stages the container's first stage in the container's cgroups meanwhile
(runtime/staging.py: the cgroup v1 migration's wait, ~11 ms, leaves the
start's critical path). The runtime's modules (~6 MB) so never live in the
monitor, whose memory is paid per running container. The container's init
is the launcher's child (the runtime clones it with CLONE_PARENT); once the
launcher exits it is re-parented to the monitor, a child subreaper, which
waits for it. Deleting and killing after the start go through a child too.

Written, like monitor.py, against the C halves of the standard library.
"""

import os

from intermodal.containers.monitor_sys import dumps, loads, read_line


class Launcher:
    """A forked child waiting for its orders; its stdout/stderr pipes become the container's."""

    def __init__(self, stdin, cid=None):
        """*cid*: the id of the container to be created, to stage its first stage for (None: none)."""
        self.stdin = stdin
        self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
        self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
        orders_r, self.orders_w = os.pipe2(os.O_CLOEXEC)
        self.result_r, result_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                for fd in (self.orders_w, self.result_r, self.out_r, self.err_r):
                    os.close(fd)
                _child(orders_r, result_w, stdin, self.out_w, self.err_w, cid)
            except BaseException as exc:  # say it: the monitor's stderr is not the log file yet
                _report(result_w, exc)
            finally:
                os._exit(0)
        os.close(orders_r)
        os.close(result_w)

    def launch(self, orders):
        """Create and start as *orders* say (root, id, bundle, tty, console_socket); returns {pid} or {error}.

        Afterwards the monitor reads the container's output from out_r and err_r (unless it has a terminal).
        """
        try:
            os.write(self.orders_w, (dumps(orders) + "\n").encode())
        except OSError:
            pass  # it died; its missing answer says so
        os.close(self.orders_w)
        data = read_line(self.result_r)  # its one-line answer, or what it wrote before it died
        # Not waited for: it exits as soon as it has answered, and the monitor's reaping collects it.
        self._finish(close_stdin=not orders.get("tty"), wait=False)
        if not data.strip():
            return {"error": "the runtime's launcher died without an answer; see monitor.err"}
        return loads(data.decode("utf-8", "replace"))

    def cancel(self):
        """Not needed (another runtime starts this container): it exits on the closed pipe."""
        os.close(self.orders_w)
        for fd in (self.out_r, self.err_r, self.result_r):
            os.close(fd)
        self._finish(close_stdin=False)

    def _finish(self, close_stdin, wait=True):
        for fd in (self.out_w, self.err_w, *((self.stdin,) if close_stdin and self.stdin is not None else ())):
            os.close(fd)
        if wait:
            _wait(self.pid)


def in_child(verb, root, cid, *args):
    """`delete` or `kill` the container with our runtime in a forked child; the monitor stays small."""
    pid = os.fork()
    if pid == 0:
        try:
            from intermodal.runtime.container import Runtime

            runtime = Runtime(root)
            if verb == "delete":
                runtime.delete(cid, force=True)
            else:
                runtime.get(cid).kill(*args)
        except Exception as err:  # the next start or rm deletes a leftover; say why in monitor.err
            try:
                os.write(2, f"could not {verb} the container with the runtime: {err}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(0)
    _wait(pid)


def _child(orders_r, result_w, stdin, out_w, err_w, cid):
    warmup = _warm_up(cid)
    staged = _stage(cid)
    try:
        from intermodal.runtime import cgroups, container, launch, validate  # noqa: F401  (now, while imod works)

        _preload()
        data = read_line(orders_r)
        if not data.strip():
            return  # cancelled
        orders = loads(data.decode())
        result = _create_and_start(orders, stdin, out_w, err_w, staged)
        os.write(result_w, (dumps(result) + "\n").encode())  # one line: the monitor goes on while we exit
    finally:
        if staged is not None:
            staged.discard()  # unless the create took it: cancelled, another runtime, a failed create
        if warmup:
            from intermodal.runtime import migration_warmup

            migration_warmup.reap(warmup)


def _warm_up(cid):
    """Before staging: the cgroup migration's RCU grace period, paid meanwhile (runtime/migration_warmup.py)."""
    if cid is None:
        return 0
    from intermodal.runtime import migration_warmup

    return migration_warmup.start()


def _stage(cid):
    """The container's first stage, forked now and moving itself into the container's cgroups
    while we import the rest of the runtime and `imod` creates the container; None without an id.

    Forked once what it needs is loaded (runtime.init, ~half of our imports), so that the cgroup
    migration overlaps the other half; a failure is left for the create to report.
    """
    if cid is None:
        return None
    try:
        from intermodal.runtime.staging import Staged

        return Staged(f"/intermodal/{cid}", cid)  # the cgroupsPath containers/create.py gives every container
    except Exception:  # no cgroups here, fork failed: the create says it, with its context
        return None


def _preload():
    """What the create would import and detect after the orders (~10 ms on the start's critical path).

    The cgroup layout is cached per process and the host's mounts do not change
    under us; a failure here is left for the create itself to report.
    """
    from intermodal.runtime import seccomp
    from intermodal.runtime.cgroups import cgpath, import_backend  # noqa: F401

    seccomp._sha256()  # keys its cache of compiled filters
    import_backend()


def _create_and_start(orders, stdin, out_w, err_w, staged):
    from intermodal.runtime.container import Runtime

    try:
        if orders.get("tty"):
            stdio = None  # the runtime makes the terminal its stdio
        else:
            stdio = (stdin if stdin is not None else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), out_w, err_w)
        ctr = Runtime(orders["root"]).create(orders["id"], orders["bundle"], stdio=stdio,
                                             console_socket=orders.get("console_socket"), staged=staged)
        try:
            ctr.start()
        except BaseException:
            ctr.delete(force=True)
            raise
        return {"pid": ctr.record().pid}
    except Exception as err:  # the runtime's errors (IntermodalError, OSError) are the start's error
        return {"error": str(err) or type(err).__name__}


def _report(result_w, exc):
    try:
        error = f"the runtime's launcher failed: {type(exc).__name__}: {exc}"
        os.write(result_w, (dumps({"error": error}) + "\n").encode())
    except OSError:
        pass  # the monitor is gone


def _wait(pid: int) -> None:
    try:
        os.waitpid(pid, 0)  # retried on EINTR by Python itself (PEP 475)
    except ChildProcessError:
        pass  # reaped already
