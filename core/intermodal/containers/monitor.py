"""The per-container monitor: the small process that outlives `imod`.

Run as ``python -I -S -c "...; main(sys.argv[1:])" CONTAINER_DIR [--ready FD]
[--stdin FD] [--stdout FD] [--stderr FD] [--status FD]`` by `imod start`/`run`
(launch.py). It

- forks once more (the parent, started in a new session by `imod`, exits at
  once), so it is no session leader and `imod` is not its parent;
- becomes a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER): the runtime's
  `create` exits after setting the container up, and the container's init
  is then re-parented to us, so we can wait(2) for its exit status;
- starts the container through the runtime's OCI CLI, with pipes for its
  stdout and stderr, writes them to the json-file log and, while `imod run`
  is attached, to the attach pipes;
- records exit code, time and OOM kill in ``state.json`` under the
  container's lock, and applies the restart policy with back-off;
- for ``--rm`` containers, removes the container through the engine (only
  then does it import the engine; until the exit it imports almost nothing,
  because its memory is paid once per running container).

``monitor.json`` beside ``state.json`` (written by `imod start`) says what
to run. The first start is reported on the ready pipe as one JSON line;
`imod` holds the container's lock until it has recorded that start, so our
exit record can never be overwritten by it.
"""

import _signal as signal  # not `signal`: it imports enum, +0.9 MB per monitor
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
DRAIN_SECONDS = 2.0  # after the exit, bounded wait for output still in the pipes


def main(argv):
    fds = _parse_fds(argv[1:])
    # Imported while `imod` still creates the container, not after.
    from intermodal.containers import restart
    from intermodal.containers.logs import LogWriter

    cdir = argv[0] if argv[0] != "-" else _read_orders(fds.pop("go"))
    if cdir is None:
        return  # `imod` gave up (the create failed): nothing to do
    err = os.open(os.path.join(cdir, "monitor.err"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(err, 2)  # our own traceback, if we ever have one, lands beside the state
    os.close(err)
    if os.fork():
        os._exit(0)
    _set_subreaper()
    os.chdir("/")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    with open(os.path.join(cdir, "monitor.json"), encoding="utf-8") as f:
        cfg = _loads(f.read())
    log = LogWriter(cdir, cfg["log_max_size"], cfg["log_max_file"])
    Monitor(cdir, cfg, fds, log, wake_r, restart).run()


class Monitor:
    def __init__(self, cdir, cfg, fds, log, wake_r, restart):
        self.cdir = cdir
        self.cfg = cfg
        self.fds = fds
        self.log = log
        self.wake_r = wake_r
        self.restart = restart
        self.policy = restart.RestartPolicy.from_json(cfg["restart"])
        self.attached = {"stdout": fds.get("stdout"), "stderr": fds.get("stderr")}
        self.status_sent = None  # None: not yet; then whether `imod` got it

    def run(self):
        first = True
        delay = 0.0
        count = self.cfg.get("restart_count", 0)
        while True:
            started = time.monotonic()
            ok, info = self.start(first)
            if first:
                self.report_ready(ok, info)
            if not ok:
                if not first:
                    self.record_exit(info.get("code", 125), False, count, error=info["error"])
                break
            first = False
            code, oom = self.supervise(info)
            again = self.after_exit(code, oom, count)
            self.detach()  # `imod run` returns at the first exit, as Docker's client does
            # After the status went out: `imod run` need not wait for it, and
            # every later `start`/`rm` deletes a leftover before it goes on.
            # An attached `run --rm` that got the status deletes it itself.
            if again or not (self.cfg.get("auto_remove") and self.status_sent):
                _spawn_wait([*self.cfg["runtime"], "delete", "--force", self.cfg["id"]], None, None, None)
            if not again:
                break
            count += 1
            delay = self.restart.next_delay(delay, time.monotonic() - started)
            if not self.sleep_unless_stopped(delay):
                self.record({"Status": "exited", "Restarting": False})
                break
        self.finish()

    # -- starting ------------------------------------------------------------

    def start(self, first):
        """`runtime run --detach`; returns (True, {pid, ...}) or (False, {error, code})."""
        cfg = self.cfg
        cid = cfg["id"]
        pid_file = os.path.join(self.cdir, "container.pid")
        log_file = os.path.join(self.cdir, "runtime.log")
        for path in (pid_file, log_file):
            _unlink(path)
        stdin = self.fds.pop("stdin", None) if first else None
        base = [*cfg["runtime"], "--log", log_file, "--log-format", "json"]
        # `run --detach` is `create` + `start` in one runtime process (one Go
        # start-up less); the container's init is then re-parented to us.
        argv = [*base, "run", "--detach", "--bundle", cfg["bundle"], "--pid-file", pid_file]
        if cfg.get("tty"):
            console = _Console(cfg["console_socket"])
            code = _spawn_wait([*argv, "--console-socket", console.path, cid], None, None, None)
            self.out_r, self.err_r = (console.receive(cfg.get("console_size")) if code == 0 else None), None
            console.close()
            self.tty_in = stdin  # we copy the user's input to the terminal
        else:
            self.out_r, out_w = os.pipe2(os.O_CLOEXEC)
            self.err_r, err_w = os.pipe2(os.O_CLOEXEC)
            code = _spawn_wait([*argv, cid], stdin, out_w, err_w)
            for fd in (out_w, err_w, stdin):
                if fd is not None:
                    os.close(fd)
        if code != 0:
            error = _runtime_error(log_file) or self._stderr_tail() or f"the runtime's run exited with {code}"
            self.close_output()
            _spawn_wait([*cfg["runtime"], "delete", "--force", cid], None, None, None)
            self.reap(0)
            return False, {"error": error, "code": _exit_code_for(error)}
        with open(pid_file) as f:
            pid = int(f.read().strip())
        return True, {"pid": pid, "start": _start_time(pid)}

    def _stderr_tail(self):
        """The runtime's last stderr line (it shares the container's stderr) when its log has no error."""
        if self.err_r is None:
            return ""
        os.set_blocking(self.err_r, False)
        data = b""
        try:
            while len(data) < 65536:
                chunk = os.read(self.err_r, 65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def report_ready(self, ok, info):
        fd = self.fds.pop("ready", None)
        msg = {"ok": ok, "monitor": os.getpid(), "monitor_start": _start_time(os.getpid()), **info}
        if fd is None:  # a restart: we record it ourselves
            if ok:
                state = self.record({"Status": "running", "Running": True, "Restarting": False, "Pid": info["pid"],
                                     "PidStart": info["start"], "MonitorPid": os.getpid(),
                                     "MonitorStart": msg["monitor_start"], "StartedAt": _now()})
                if state is None or state.get("StopRequested"):
                    # `imod stop` came while we were starting it again: it waits for this exit.
                    _spawn_wait([*self.cfg["runtime"], "kill", self.cfg["id"], "KILL"], None, None, None)
            return
        try:
            os.write(fd, (_dumps(msg) + "\n").encode())
        except OSError:
            pass
        os.close(fd)

    # -- while it runs ---------------------------------------------------------

    def supervise(self, info):
        """Copy output and run healthchecks until the container's init exits; returns (exit code, OOM-killed)."""
        import select

        pid = info["pid"]
        poller = select.poll()
        streams = {fd: name for fd, name in ((self.out_r, "stdout"), (self.err_r, "stderr")) if fd is not None}
        for fd in (*streams, self.wake_r):
            poller.register(fd, select.POLLIN)
        tty_in = getattr(self, "tty_in", None)
        if tty_in is not None:
            poller.register(tty_in, select.POLLIN)
        health = _Health(self, poller) if self.cfg.get("healthcheck") else None
        status = self.reap(pid, health)
        deadline = None
        while streams:
            if status is not None and deadline is None:
                deadline = time.monotonic() + DRAIN_SECONDS
                if health:
                    health.stop()
                    health = None
            waits = [deadline - time.monotonic()] if deadline is not None else []
            if health:
                waits.append(health.wait())
            timeout = max(0.0, min(waits)) * 1000 if waits else None
            if deadline is not None and timeout == 0:
                break
            for fd, _ in poller.poll(timeout):
                if fd == self.wake_r:
                    _drain(fd)
                    if status is None:
                        status = self.reap(pid, health)
                    continue
                if fd == tty_in:
                    if not self.to_terminal(tty_in):
                        poller.unregister(tty_in)
                        os.close(tty_in)
                        tty_in = self.tty_in = None
                    continue
                if health and health.owns(fd):
                    health.read(fd)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: a terminal whose other side is closed
                    data = b""
                if not data:
                    poller.unregister(fd)
                    del streams[fd]
                    continue
                self.output(streams[fd], data)
            if status is None:
                status = self.reap(pid, health)
            if health and status is None:
                health.tick()
        if health:
            health.stop()
        while status is None:  # both pipes closed: the init still has to exit
            _wait_readable(self.wake_r)
            _drain(self.wake_r)
            status = self.reap(pid)
        if tty_in is not None:
            os.close(tty_in)
            self.tty_in = None
        self.close_output()
        self.log.flush()
        code = os.waitstatus_to_exitcode(status)
        return (128 - code if code < 0 else code), self.oom_killed()

    def to_terminal(self, fd):
        """Copy the user's input to the container's terminal; False at its end."""
        data = os.read(fd, 65536)
        if not data:
            return False
        try:
            while data:
                data = data[os.write(self.out_r, data):]
        except OSError:
            return False
        return True

    def output(self, stream, data):
        self.log.feed(stream, data)
        fd = self.attached.get(stream)
        if fd is None:
            return
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:  # the attached `imod` went away; keep logging
            os.close(fd)
            self.attached[stream] = None

    def reap(self, pid, health=None, block=False):
        """Collect exited children (we are their subreaper); the container's status once it exited."""
        found = None
        while True:
            try:
                child, status = os.waitpid(-1, 0 if block and found is None else os.WNOHANG)
            except ChildProcessError:
                return found
            if child == 0:
                return found
            if child == pid:
                found = status
            elif health is not None:
                health.exited(child, status)

    def oom_killed(self):
        path = self.cfg.get("oom_control")
        if not path:
            return False
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value) > self.cfg.get("oom_kills_before", 0)
        except (OSError, ValueError):
            pass
        return False

    # -- after an exit -----------------------------------------------------------

    def after_exit(self, code, oom, count):
        """Record the exit; True to restart."""
        with _Lock(self.cfg["lock"]):
            state = self.read_state()
            if state is None:
                return False
            stopped = bool(state.get("StopRequested"))
            again = self.restart.should_restart(self.policy, code, count, stopped)
            state.update({"Status": "restarting" if again else "exited", "Restarting": again, "Running": False,
                          "Pid": 0, "ExitCode": code, "OOMKilled": oom, "FinishedAt": _now(),
                          "RestartCount": count + (1 if again else 0)})
            self.write_state(state)
        self.exit_code = code
        return again

    def record_exit(self, code, oom, count, error=""):
        self.record({"Status": "exited", "Running": False, "Restarting": False, "Pid": 0, "ExitCode": code,
                     "OOMKilled": oom, "FinishedAt": _now(), "Error": error})
        self.exit_code = code

    def sleep_unless_stopped(self, delay):
        """Back-off before a restart; False if `imod stop`/`rm` asked us to give up meanwhile."""
        deadline = time.monotonic() + delay
        while True:
            state = self.read_state()
            if state is None or state.get("StopRequested"):
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.1))

    def detach(self):
        for stream, fd in self.attached.items():
            if fd is not None:
                os.close(fd)
                self.attached[stream] = None
        fd = self.fds.get("status")
        if fd is not None and self.status_sent is None:
            self.status_sent = self.send_status(fd)  # False: `imod` is gone
            if not self.cfg.get("auto_remove"):
                os.close(self.fds.pop("status"))

    def send_status(self, fd):
        """Tell the attached `imod` the exit code; False if it is gone."""
        try:
            os.write(fd, (_dumps({"exit_code": getattr(self, "exit_code", 125)}) + "\n").encode())
            return True
        except OSError:
            return False

    def finish(self):
        self.log.close()
        fd = self.fds.pop("status", None)
        if fd is not None:
            # An attached `imod run --rm` removes the container itself (it has
            # the engine loaded already) and then closes its end; we wait for
            # that, and remove it ourselves only if `imod` went away first.
            sent = self.send_status(fd) if self.status_sent is None else self.status_sent
            if sent and self.cfg.get("auto_remove"):
                _wait_closed(fd)
            os.close(fd)
        if self.cfg.get("auto_remove") and os.path.exists(os.path.join(self.cdir, "config.json")):
            # Only now the engine is imported: the container is gone, so the
            # memory this costs is no longer paid per running container.
            try:
                from intermodal.containers.manager import remove_after_exit

                remove_after_exit(self.cfg["root"], self.cfg["run_root"], self.cfg["id"])
            except Exception as err:  # nobody is left to catch it; say why in the state
                self.record({"Error": f"automatic removal failed: {err}"})

    def close_output(self):
        for name in ("out_r", "err_r"):
            fd = getattr(self, name, None)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    # -- state.json -----------------------------------------------------------

    def record(self, changes):
        """Apply *changes* to state.json under the lock; the new state, or None if the container is gone."""
        with _Lock(self.cfg["lock"]):
            state = self.read_state()
            if state is not None:
                state.update(changes)
                self.write_state(state)
            return state

    def read_state(self):
        try:
            with open(os.path.join(self.cdir, "state.json"), encoding="utf-8") as f:
                return _loads(f.read())
        except (OSError, ValueError, StopIteration):
            return None  # the container was removed

    def write_state(self, state):
        path = os.path.join(self.cdir, "state.json")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:  # no fsync: after a crash it is recomputed (store.replace_file)
            f.write(_dumps(state))
        os.replace(tmp, path)


class _Lock:
    """flock(2) on the container's lock file, like intermodal.locking, without importing it."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


class _Health:
    """Docker's healthcheck: run the test in the container every interval, keep the last five results.

    The test runs through the runtime's `exec`; its output (first 4 KiB, as
    Docker) and exit code become a log entry in `State.Health`. Failures
    during the start period do not count; `retries` failures in a row make
    the container unhealthy, one success makes it healthy.
    """

    KEEP = 5
    MAX_OUTPUT = 4096

    def __init__(self, monitor, poller):
        cfg = monitor.cfg["healthcheck"]
        self.monitor = monitor
        self.poller = poller
        self.interval = cfg["interval"]
        self.timeout = cfg["timeout"]
        self.retries = cfg["retries"]
        self.start_period_end = time.monotonic() + cfg["start_period"]
        self.process_file = os.path.join(monitor.cdir, "health-process.json")
        self.pid_file = os.path.join(monitor.cdir, "health.pid")
        self.next_run = time.monotonic() + self.interval
        self.pid = None
        self.fd = None

    def wait(self):
        """Seconds until something is due: the next check, or the running one's timeout."""
        now = time.monotonic()
        if self.pid is not None:
            return self.started + self.timeout - now
        return self.next_run - now

    def owns(self, fd):
        return fd == self.fd

    def tick(self):
        now = time.monotonic()
        if self.pid is None and now >= self.next_run:
            self.run()
        elif self.pid is not None and now >= self.started + self.timeout:
            self.kill()
            self.output += f"Health check exceeded timeout ({self.timeout:g}s)".encode()
            self.timed_out = True

    def run(self):
        _unlink(self.pid_file)
        self.fd, write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        argv = [*self.monitor.cfg["runtime"], "exec", "--pid-file", self.pid_file, "--process", self.process_file,
                self.monitor.cfg["id"]]
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            self.pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, write, 1), (os.POSIX_SPAWN_DUP2, write, 2)],
                setsigdef=(signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD))
        finally:
            os.close(null)
            os.close(write)
        self.poller.register(self.fd, 1)  # POLLIN
        self.started = time.monotonic()
        self.start_ts = _now()
        self.output = b""
        self.timed_out = False

    def read(self, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if data:
            self.output += data[: max(0, self.MAX_OUTPUT - len(self.output))]
        else:
            self.poller.unregister(fd)
            os.close(fd)
            self.fd = None

    def exited(self, pid, status):
        if pid != self.pid:
            return
        if self.fd is not None:
            while True:  # what the test wrote before it exited
                try:
                    data = os.read(self.fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                self.output += data[: max(0, self.MAX_OUTPUT - len(self.output))]
            self.poller.unregister(self.fd)
            os.close(self.fd)
            self.fd = None
        code = os.waitstatus_to_exitcode(status)
        self.pid = None
        self.next_run = time.monotonic() + self.interval
        # Docker's codes: -1 when the test timed out, 1 for any other failure
        # to run it (a signal, the runtime's own error); else the test's.
        self.record(-1 if self.timed_out else (code if code >= 0 else 1))

    def record(self, code):
        entry = {"Start": self.start_ts, "End": _now(), "ExitCode": code,
                 "Output": self.output.decode("utf-8", "replace")}
        in_start_period = time.monotonic() < self.start_period_end
        with _Lock(self.monitor.cfg["lock"]):
            state = self.monitor.read_state()
            if state is None:
                return
            health = state.get("Health") or {"Status": "starting", "FailingStreak": 0, "Log": []}
            if code == 0:
                health["Status"], health["FailingStreak"] = "healthy", 0
            elif not in_start_period:
                health["FailingStreak"] = health.get("FailingStreak", 0) + 1
                if health["FailingStreak"] >= self.retries:
                    health["Status"] = "unhealthy"
            health["Log"] = [*health.get("Log", []), entry][-self.KEEP:]
            state["Health"] = health
            self.monitor.write_state(state)

    def kill(self):
        """The test ran too long: kill its process in the container; the runtime's exec then returns."""
        try:
            with open(self.pid_file) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def stop(self):
        """The container exited: end a running check and forget its result."""
        if self.pid is not None:
            self.kill()
            self.pid = None
        if self.fd is not None:
            self.poller.unregister(self.fd)
            os.close(self.fd)
            self.fd = None


class _Console:
    """The runtime's --console-socket: it sends us the master side of the container's terminal (SCM_RIGHTS)."""

    TIOCSWINSZ = 0x5414  # asm-generic/ioctls.h; spares importing termios

    def __init__(self, path):
        import _socket

        # "@name" is an abstract socket (as Go and runc spell it): no file,
        # used when a path would pass the 108-byte limit of sun_path.
        self.path = path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if path.startswith("@"):
            self.sock.bind("\0" + path[1:])
        else:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            _unlink(path)
            self.sock.bind(path)
        self.sock.listen(1)

    def receive(self, size):
        import _socket

        self.sock.settimeout(10.0)  # the runtime has exited: what it sent is queued already
        fd, _addr = self.sock._accept()
        conn = _socket.socket(fileno=fd)
        try:
            _msg, ancillary, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
        finally:
            conn.close()
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                master = int.from_bytes(data[:4], sys.byteorder)
                os.set_inheritable(master, False)
                if size:
                    import fcntl

                    fcntl.ioctl(master, self.TIOCSWINSZ, bytes(_winsize(size)))
                return master
        raise OSError("the runtime sent no terminal on the console socket")

    def close(self):
        self.sock.close()
        if not self.path.startswith("@"):
            _unlink(self.path)


def _winsize(size):
    """struct winsize {rows, cols, xpixel, ypixel} as four native unsigned shorts."""
    rows, cols = size
    out = bytearray()
    for value in (rows, cols, 0, 0):
        out += int(value).to_bytes(2, sys.byteorder)
    return out


def _spawn_wait(argv, stdin, stdout, stderr):
    """posix_spawn (no `subprocess` import) with the given stdio; returns the exit code."""
    actions = []
    null = None
    for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
        if fd is None:
            null = os.open(os.devnull, os.O_RDWR) if null is None else null
            fd = null
        actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsigdef=(signal.SIGPIPE,
                                                                                         signal.SIGINT,
                                                                                         signal.SIGTERM,
                                                                                         signal.SIGHUP,
                                                                                         signal.SIGCHLD))
    finally:
        if null is not None:
            os.close(null)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:
            continue


def _runtime_error(log_file):
    try:
        with open(log_file, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = _loads(line.decode("utf-8", "replace"))
        except (ValueError, StopIteration):
            continue
        if entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return None


def _exit_code_for(error):
    """Docker's codes: 127 command not found, 126 not executable, else 125 (the engine failed)."""
    text = error.lower()
    if "executable file not found" in text or "no such file or directory" in text:
        return 127
    if "permission denied" in text or "exec format error" in text:
        return 126
    return 125


def _start_time(pid):
    """Field 22 of /proc/PID/stat: with the pid it names one process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


def _set_subreaper():
    """prctl(2) through `_ctypes`, the C half of ctypes: the package itself costs 0.5 MB more per monitor."""
    import _ctypes

    class c_int(_ctypes._SimpleCData):
        _type_ = "i"

    class c_ulong(_ctypes._SimpleCData):
        _type_ = "L"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_int
        _argtypes_ = (c_int, c_ulong, c_ulong, c_ulong, c_ulong)

    class Libc:
        _handle = _ctypes.dlopen(None, 0)

    prctl = Function(("prctl", Libc))
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(_ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class _JsonContext:
    """What `_json.make_scanner` reads from `json.JSONDecoder`; using the C parts spares `json`'s `re`."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo = {}  # the scanner caches keys here, as json.decoder does


def _loads(text):
    import _json

    value, _end = _json.make_scanner(_JsonContext())(text.strip(), 0)
    return value


def _dumps(value):
    """JSON for the plain values the monitor writes (dict, list, str, int, float, bool, None)."""
    from _json import encode_basestring

    if isinstance(value, dict):
        return "{" + ", ".join(encode_basestring(str(k)) + ": " + _dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_dumps(v) for v in value) + "]"
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)


def _read_orders(fd):
    """The container directory `imod` sends once the container exists; None if it closed the pipe instead."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return os.fsdecode(data[:-1]) if data.endswith(b"\n") else None


def _parse_fds(args):
    fds = {}
    for i in range(0, len(args) - 1, 2):
        fds[args[i].lstrip("-")] = int(args[i + 1])
    return fds


def _drain(fd):
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _wait_readable(fd):
    import select

    select.select([fd], [], [], 0.5)
    return True


def _wait_closed(fd):
    """Block until the other end of the status socket is closed (its reads return EOF)."""
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _now():
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


if __name__ == "__main__":
    main(sys.argv[1:])
