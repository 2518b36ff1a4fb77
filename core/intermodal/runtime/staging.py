"""A container's stage 1 forked, and in the container's cgroups, before the container is created.

Moving a process into the cgroup v1 hierarchies costs ~11 ms at the first
write of cgroup.procs: a migration takes the global cgroup_threadgroup_rwsem
for writing, and percpu_down_write waits for an RCU grace period first
(kernel/cgroup/cgroup.c cgroup_procs_write_start, kernel/locking/percpu-rwsem.c).
The monitor's launcher (containers/monitor_launcher.py) knows a new
container's id, and so its cgroups, before `imod` has created it: it stages
the process that will be the container's stage 1 (init.py), which moves
itself into those cgroups while the launcher still imports the runtime and
`imod` still creates the container (the launcher never joins them). Staging
starts once the runtime's modules are loaded, which is late enough for the
grace period to land on the critical path again: the launcher has a child
pay it first (migration_warmup.py), so that this migration finds it passed.

The create (`Runtime.create(..., staged=...)`, launch.launch) then claims it
and hands it the context instead of forking stage 1 and writing cgroup.procs
on the start's critical path; the resources are applied to the cgroups it is
in already. One that does not fit (other cgroups, fds to preserve) or died is
discarded, killed, reaped and its cgroups removed, and the create forks as
ever. Before the hand-over it dies with its launcher (PR_SET_PDEATHSIG),
removing its cgroups itself first.

It holds what a stage 1 forked by the create would hold: it is forked once
the modules stages 1 and 2 use are loaded and the create's preloads are done
(init.py: after pivot_root nothing can be imported), and it receives the
context (records.to_plain, marshalled, in a memfd) with its descriptors (SCM_RIGHTS).
"""

from __future__ import annotations

import _signal
import _socket
import marshal
import os
import select

from intermodal.errors import IntermodalError, RuntimeFailure
from intermodal.records import from_plain, replace, to_plain
from intermodal.runtime import cgroups, init
from intermodal.runtime import syscalls as S
from intermodal.runtime.process import kill_and_reap

TYPE_CHECKING = False  # not `typing`: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from intermodal.runtime.cgroups import CgroupManager

# How long a create waits for the staged process to say it is in its cgroups (the write may wait
# behind other migrations; past this, something is stuck and the create's own apply reports it).
STAGE_TIMEOUT = 60.0
_STAGED = b"staged"
_CONTEXT = b"context"
_MAX_FDS = 8  # the memfd, fifo_dir, console and three stdio


class Staged:
    """A staged stage 1 of the container whose cgroups are *cgroups_path*; owned by its parent.

    The create claims it (`claim`, then `hand_over`); whoever made it calls
    `discard` at the end, which does nothing once it was handed over.
    Raises IntermodalError when the host has no cgroups for it, OSError when fork fails.
    """

    def __init__(self, cgroups_path: str, container_id: str) -> None:
        self.manager = cgroups.manager_for(cgroups_path, container_id)
        homes = _homes(self.manager)
        _preload()
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        parent = os.getpid()
        try:
            self.pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if self.pid == 0:
            try:
                ours.close()
                _staged(theirs, self.manager, homes, parent)
            finally:
                os._exit(1)
        theirs.close()
        self.sock: _socket.socket | None = ours
        self.reported = False
        self.taken = False  # handed over to a create as its stage 1

    def claim(self, manager: CgroupManager | None, preserve_fds: int) -> bool:
        """Whether a create may take this process as its stage 1: the same cgroups, no fds to preserve
        (they are the creator's, which this process lacks), and it is alive and in its cgroups.
        If not, it is discarded and the create forks its own."""
        if (self.sock is not None and manager is not None and preserve_fds == 0
                and manager.paths() == self.manager.paths() and self._ready()):
            return True
        self.discard()
        return False

    def hand_over(self, ctx: init.Context) -> tuple[int, int]:
        """Send the claimed process its context: (its pid, our end of its channel), as a fork would give.

        Raises OSError if it died meanwhile, ValueError if the context holds what marshal cannot write
        (then `discard` it and fork)."""
        assert self.sock is not None
        # Without stdio a forked stage 1 keeps ours: send them, the process has the launcher's of long ago.
        stdio = ctx.stdio if ctx.stdio is not None else (0, 1, 2)
        memfd = os.memfd_create("imod-stage1-context", os.MFD_CLOEXEC)
        fds = [memfd]

        def slot(fd: int) -> int:
            if fd < 0:
                return -1
            fds.append(fd)
            return len(fds) - 1

        try:
            moved = replace(ctx, sock=-1, fifo_dir=slot(ctx.fifo_dir), console=slot(ctx.console),
                            stdio=tuple(slot(fd) for fd in stdio))
            data = memoryview(marshal.dumps(to_plain(moved)))  # ValueError: something marshal cannot write
            while data:
                data = data[os.write(memfd, data):]
            self.sock.sendmsg([_CONTEXT], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, S.pack_fds(fds))])
        finally:
            os.close(memfd)
        pid, self.pid = self.pid, 0
        sock, self.sock = self.sock, None
        self.taken = True
        return pid, sock.detach()

    def discard(self) -> None:
        """Kill and reap the process and remove its cgroups, unless it was handed over; idempotent."""
        if self.sock is None:
            return
        if self.pid:
            kill_and_reap(self.pid)
            self.pid = 0
        self.sock.close()
        self.sock = None
        try:
            self.manager.destroy()
        except IntermodalError as exc:
            import logging  # only when there is something to say

            logging.getLogger("intermodal.runtime").warning("could not remove the staged cgroups: %s", exc)

    def _ready(self) -> bool:
        """It said it is in its cgroups (waiting for that, bounded) and has not exited since."""
        if not self.pid:
            return False  # reaped already: waitpid(0) would wait for any child of ours
        if not self.reported:
            try:
                if select.select([self.sock], [], [], STAGE_TIMEOUT)[0]:
                    self.reported = self.sock.recv(init.MAX_MESSAGE) == _STAGED
            except OSError:
                pass
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done = self.pid  # not our child (any more): never signal that pid
        if done:
            self.pid = 0
        return self.reported and not done


def _preload() -> None:
    """What the create loads before it forks stage 1 (launch._preload, console.connect), loaded for ours."""
    import _struct  # noqa: F401  (console.create and attach, in stage 2)
    import fcntl  # noqa: F401
    import termios  # noqa: F401

    from intermodal.runtime import capabilities, seccomp

    S.libc()
    capabilities.preload()
    try:
        seccomp.preload()
    except IntermodalError:
        pass  # no libseccomp: a create whose spec needs it fails before the hand-over, saying so


def _homes(manager: CgroupManager) -> dict[str, str]:
    """Our own cgroup in each hierarchy of *manager*: where an orphaned staged process goes back to, since
    a cgroup that holds a task cannot be removed (the root of cgroup2 takes tasks whatever its controllers)."""
    from intermodal.runtime.cgroups.detect import detect

    layout = detect()
    out = {}
    for key in manager.paths():
        mount = layout.unified if key == "unified" else layout.v1.get(key)
        if mount:
            own = layout.own_in_mount("" if key == "unified" else key).lstrip("/")
            out[key] = os.path.join(mount, own) if own else mount
    return out


# -- in the staged process -------------------------------------------------------------------------


def _staged(sock: _socket.socket, manager: CgroupManager, homes: dict[str, str], parent: int) -> None:
    """Into the cgroups, wait for the context, become stage 1 (which never returns)."""
    try:
        ctx = _stage(sock, manager, parent)
    except BaseException as exc:
        _give_up(sock, manager, homes, exc)
        return
    init.stage1(ctx)


def _stage(sock: _socket.socket, manager: CgroupManager, parent: int) -> init.Context:
    # The parent-death signal only ends the wait (a handler that raised could do so anywhere, even
    # in the clean-up): the socket's end makes recvmsg, retried after the handler (PEP 475), return.
    _signal.signal(_signal.SIGTERM, lambda _signum, _frame: _shut(sock))
    S.set_parent_death_signal(_signal.SIGTERM)
    # Our own process group: a SIGKILL to the launcher's (imod's deadline, kill -9 -PGID) then leaves
    # us the parent-death signal, and the time to remove the cgroups.
    os.setpgid(0, 0)
    if os.getppid() != parent:
        raise ConnectionError("the launcher died before the staged process started")  # no signal will come
    S.set_dumpable(False)  # as stage 1 from the start (init.py)
    manager.apply(os.getpid())
    sock.send(_STAGED)
    ctx = _receive(sock)
    S.set_parent_death_signal(_signal.SIGKILL)  # stage 1 now: it dies with its parent
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    return ctx


def _shut(sock: _socket.socket) -> None:
    try:
        sock.shutdown(_socket.SHUT_RDWR)
    except OSError:
        pass  # handed over (detached) or shut already


def _give_up(sock: _socket.socket, manager: CgroupManager, homes: dict[str, str], exc: BaseException) -> None:
    """Before the hand-over every way out leaves the cgroups and removes them, then says why (unless the
    launcher is gone)."""
    _leave(manager, homes)
    if not isinstance(exc, ConnectionError):
        try:
            sock.send(b"error " + str(exc).encode(errors="replace")[:1000])
        except OSError:
            pass  # the launcher is gone: nobody to tell


def _receive(sock: _socket.socket) -> init.Context:
    # EOF or ECONNRESET (it closed its end with our "staged" unread): the launcher is gone
    msg, ancillary, flags, _ = sock.recvmsg(64, _socket.CMSG_SPACE(_MAX_FDS * S.FD_SIZE), _socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += S.unpack_fds(data)
    if not msg and not fds:
        raise ConnectionError("the launcher closed its end before the hand-over")
    if msg != _CONTEXT or not fds or flags & _socket.MSG_CTRUNC:
        raise RuntimeFailure(f"protocol error with the runtime: wanted the context, got {msg[:40]!r}")
    memfd = fds[0]
    try:
        size = os.fstat(memfd).st_size
        data = b""
        while len(data) < size:
            chunk = os.pread(memfd, size - len(data), len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(memfd)
    ctx = from_plain(marshal.loads(data))

    def fd(index: int) -> int:
        return fds[index] if index > 0 else -1

    ctx.fifo_dir, ctx.console = fd(ctx.fifo_dir), fd(ctx.console)
    ctx.stdio = tuple(fd(i) for i in ctx.stdio)
    ctx.sock = sock.detach()
    return ctx


def _leave(manager: CgroupManager, homes: dict[str, str]) -> None:
    """Back to the launcher's cgroups, and remove the container's."""
    from intermodal.runtime.cgroups.manager import write

    for home in homes.values():
        try:
            write(home, "cgroup.procs", os.getpid())
        except IntermodalError:
            pass  # never joined there: nothing to leave
    try:
        manager.destroy()
    except IntermodalError:
        pass  # nobody is left to tell; an empty cgroup is all that stays
