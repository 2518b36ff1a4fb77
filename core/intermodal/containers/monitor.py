"""The per-container monitor: the small process that outlives `imod`.

Run as ``python -I -S -c "...; main(sys.argv[1:])" CONTAINER_DIR [--ready FD]
[--stdin FD] [--stdout FD] [--stderr FD] [--status FD] [--id ID]`` by `imod start`,
or called with those arguments in a fork of `imod run` (launch.py; ``--id``: the id
`imod run` chose for the container it is about to create). Either way it names itself
`imod-monitor`. It

- forks once more (the parent, started in a new session by `imod`, exits at
  once), so it is no session leader and `imod` is not its parent;
- creates and starts the container with intermodal's runtime in-process
  (``inprocess`` in monitor.json), in a launcher child forked ahead
  (monitor_launcher.py: the runtime's modules never stay in us); or, for
  another OCI runtime (runc, crun), through its CLI's `run --detach`.
  Either way the container's init is re-parented to us, a child subreaper
  (prctl(2) PR_SET_CHILD_SUBREAPER), and we wait(2) for its exit status.
  Its stdout and stderr are pipes (or its terminal: monitor_console.py),
  written to the json-file log and, while `imod run` is attached, to the
  attach pipes;
- runs the healthcheck, if there is one (monitor_health.py);
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

from intermodal.containers.monitor_sys import (
    Lock,
    close_others,
    drain,
    dumps,
    exit_code_for,
    loads,
    name_process,
    now,
    parse_fds,
    read_orders,
    runtime_error,
    set_subreaper,
    spawn_wait,
    start_time,
    unlink,
    wait_closed,
    wait_readable,
)

DRAIN_SECONDS = 2.0  # after the exit, bounded wait for output still in the pipes


def main(argv):
    args, cid = split_id(argv[1:])
    fds = parse_fds(args)
    close_others(fds.values())
    name_process()
    if os.fork():
        os._exit(0)  # the first half, which `imod` reaps: we are then neither its child nor a session leader
    set_subreaper()
    # Forked now, so that it imports our runtime while `imod` still creates the container.
    from intermodal.containers.monitor_launcher import Launcher

    launcher = Launcher(fds.get("stdin"), cid)
    # Imported while `imod` still creates the container, not after.
    from intermodal.containers import restart
    from intermodal.containers.logs import LogWriter

    cdir = argv[0] if argv[0] != "-" else read_orders(fds.pop("go"))
    if cdir is None:
        launcher.cancel()
        return  # `imod` gave up (the create failed): nothing to do
    err = os.open(os.path.join(cdir, "monitor.err"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(err, 2)  # our own traceback, if we ever have one, lands beside the state
    os.close(err)
    os.chdir("/")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    with open(os.path.join(cdir, "monitor.json"), encoding="utf-8") as f:
        cfg = loads(f.read())
    log = LogWriter(cdir, cfg["log_max_size"], cfg["log_max_file"])
    monitor = Monitor(cdir, cfg, fds, log, wake_r, restart)
    monitor.launcher = launcher
    monitor.run()


def split_id(args):
    """(*args* without ``--id ID``, ID or None): a new container's id (64 hex digits, as the engine makes them),
    for the launcher to stage the container's first stage in its cgroups."""
    if "--id" not in args:
        return args, None
    at = args.index("--id")
    cid = args[at + 1] if at + 1 < len(args) else ""
    rest = args[:at] + args[at + 2:]
    return rest, (cid if len(cid) == 64 and all(c in "0123456789abcdef" for c in cid) else None)


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
        self.launcher = None  # monitor_launcher.Launcher forked ahead for the first start

    def run(self):
        first = True
        delay = 0.0
        count = self.cfg.get("restart_count", 0)
        while True:
            started = time.monotonic()
            ok, info = self.start(first)
            if first:
                self.report_ready(ok, info)
                if ok:
                    self.confirm_start(info)
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
                self.runtime_delete()
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
        """Create and start the container; returns (True, {pid, ...}) or (False, {error, code})."""
        stdin = self.fds.pop("stdin", None) if first else None
        if self.cfg.get("inprocess"):
            return self.start_inprocess(stdin)
        if self.launcher is not None:
            self.launcher.cancel()  # another runtime's CLI starts this one
            self.launcher = None
        return self.start_cli(stdin)

    def start_inprocess(self, stdin):
        """Our runtime's create + start, in the launcher (monitor_launcher.py); we then reap the container."""
        from intermodal.containers.monitor_launcher import Launcher

        cfg = self.cfg
        launcher, self.launcher = self.launcher, None
        if launcher is None:  # a restart: a new launcher (its imports are off no one's wait now)
            launcher = Launcher(None)
        console = None
        try:
            if cfg.get("tty"):
                from intermodal.containers.monitor_console import Console

                try:
                    console = Console(cfg["console_socket"])
                except OSError:
                    launcher.cancel()
                    raise
                self.tty_in = stdin  # we copy the user's input to the terminal
            result = launcher.launch({"root": cfg["runtime_root"], "id": cfg["id"], "bundle": cfg["bundle"],
                                      "tty": bool(cfg.get("tty")), "console_socket": console.path if console else None})
            self.out_r, self.err_r = launcher.out_r, launcher.err_r
            if console is not None:
                for fd in (self.out_r, self.err_r):
                    os.close(fd)
                self.out_r = self.err_r = None
                if "pid" in result:
                    self.out_r = console.receive(cfg.get("console_size"))
        except OSError as err:
            result = {"error": f"{err.strerror or err}: {err.filename or ''}".rstrip(": ")}
        finally:
            if console is not None:
                console.close()
        if "pid" not in result:
            self.close_output()
            self.reap(0)
            error = result.get("error") or "the runtime gave no reason"
            return False, {"error": error, "code": exit_code_for(error)}
        pid = result["pid"]
        return True, {"pid": pid, "start": start_time(pid)}

    def runtime_delete(self):
        """Remove the exited container from the runtime (its cgroups, state); errors go to monitor.err."""
        if not self.cfg.get("inprocess"):
            spawn_wait([*self.cfg["runtime"], "delete", "--force", self.cfg["id"]], None, None, None)
            return
        from intermodal.containers.monitor_launcher import in_child

        in_child("delete", self.cfg["runtime_root"], self.cfg["id"])

    def runtime_kill(self, sig):
        if not self.cfg.get("inprocess"):
            spawn_wait([*self.cfg["runtime"], "kill", self.cfg["id"], str(sig)], None, None, None)
            return
        from intermodal.containers.monitor_launcher import in_child

        in_child("kill", self.cfg["runtime_root"], self.cfg["id"], sig)

    def start_cli(self, stdin):
        """Another OCI runtime's `run --detach`."""
        cfg = self.cfg
        cid = cfg["id"]
        pid_file = os.path.join(self.cdir, "container.pid")
        log_file = os.path.join(self.cdir, "runtime.log")
        for path in (pid_file, log_file):
            unlink(path)
        base = [*cfg["runtime"], "--log", log_file, "--log-format", "json"]
        # `run --detach` is `create` + `start` in one runtime process (one Go
        # start-up less); the container's init is then re-parented to us.
        argv = [*base, "run", "--detach", "--bundle", cfg["bundle"], "--pid-file", pid_file]
        if cfg.get("tty"):
            from intermodal.containers.monitor_console import Console

            console = Console(cfg["console_socket"])
            code = spawn_wait([*argv, "--console-socket", console.path, cid], None, None, None)
            self.out_r, self.err_r = (console.receive(cfg.get("console_size")) if code == 0 else None), None
            console.close()
            self.tty_in = stdin  # we copy the user's input to the terminal
        else:
            self.out_r, out_w = os.pipe2(os.O_CLOEXEC)
            self.err_r, err_w = os.pipe2(os.O_CLOEXEC)
            code = spawn_wait([*argv, cid], stdin, out_w, err_w)
            for fd in (out_w, err_w, stdin):
                if fd is not None:
                    os.close(fd)
        if code != 0:
            error = runtime_error(log_file) or self._stderr_tail() or f"the runtime's run exited with {code}"
            self.close_output()
            spawn_wait([*cfg["runtime"], "delete", "--force", cid], None, None, None)
            self.reap(0)
            return False, {"error": error, "code": exit_code_for(error)}
        with open(pid_file) as f:
            pid = int(f.read().strip())
        return True, {"pid": pid, "start": start_time(pid)}

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

    def confirm_start(self, info):
        """Wait for `imod` to record the start (it holds the lock until then); record it if `imod` died first."""
        with Lock(self.cfg["lock"]):
            state = self.read_state()
            if state is None or state.get("MonitorPid") == os.getpid():
                return
            state.update({"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                          "Pid": info["pid"], "PidStart": info["start"], "MonitorPid": os.getpid(),
                          "MonitorStart": start_time(os.getpid()), "StartedAt": now(), "ExitCode": 0,
                          "Error": "", "StopRequested": False})
            self.write_state(state)

    def report_ready(self, ok, info):
        fd = self.fds.pop("ready", None)
        msg = {"ok": ok, "monitor": os.getpid(), "monitor_start": start_time(os.getpid()), **info}
        if fd is None:  # a restart: we record it ourselves
            if ok:
                state = self.record({"Status": "running", "Running": True, "Restarting": False, "Pid": info["pid"],
                                     "PidStart": info["start"], "MonitorPid": os.getpid(),
                                     "MonitorStart": msg["monitor_start"], "StartedAt": now()})
                if state is None or state.get("StopRequested"):
                    # `imod stop` came while we were starting it again: it waits for this exit.
                    self.runtime_kill(signal.SIGKILL)
            return
        try:
            os.write(fd, (dumps(msg) + "\n").encode())
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
        control = self.fds.get("status") if self.cfg.get("tty") and self.status_sent is None else None
        if control is not None:
            poller.register(control, select.POLLIN)  # `imod run -t` sends terminal sizes here
        health = None
        if self.cfg.get("healthcheck"):
            from intermodal.containers.monitor_health import Health  # only then: memory per monitor

            health = Health(self, poller)
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
                    drain(fd)
                    if status is None:
                        status = self.reap(pid, health)
                    continue
                if fd == control:
                    if not self.control(control):
                        poller.unregister(control)
                        control = None
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
            wait_readable(self.wake_r)
            drain(self.wake_r)
            status = self.reap(pid)
        if tty_in is not None:
            os.close(tty_in)
            self.tty_in = None
        self.close_output()
        self.log.flush()
        code = os.waitstatus_to_exitcode(status)
        return (128 - code if code < 0 else code), self.oom_killed()

    def control(self, fd):
        """A message from the attached `imod`: {"resize": [rows, cols]}. False once it closed its end."""
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            self.status_sent = False  # it is gone: nobody to send the exit code to
            return False
        for line in data.splitlines():
            try:
                size = loads(line.decode()).get("resize")
            except (ValueError, StopIteration, AttributeError):
                continue
            if size and self.out_r is not None:
                from intermodal.containers.monitor_console import resize

                resize(self.out_r, size)
        return True

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
        with Lock(self.cfg["lock"]):
            state = self.read_state()
            if state is None:
                return False
            stopped = bool(state.get("StopRequested"))
            self.policy = self.current_policy()  # `imod update --restart` may have changed it meanwhile
            again = self.restart.should_restart(self.policy, code, count, stopped)
            state.update({"Status": "restarting" if again else "exited", "Restarting": again, "Running": False,
                          "Pid": 0, "ExitCode": code, "OOMKilled": oom, "FinishedAt": now(),
                          "RestartCount": count + (1 if again else 0)})
            self.write_state(state)
        self.exit_code = code
        return again

    def current_policy(self):
        """The restart policy as monitor.json says now (`imod update` rewrites it under the lock we hold)."""
        try:
            with open(os.path.join(self.cdir, "monitor.json"), encoding="utf-8") as f:
                return self.restart.RestartPolicy.from_json(loads(f.read()).get("restart"))
        except (OSError, ValueError, StopIteration, AttributeError):
            return self.policy

    def record_exit(self, code, oom, count, error=""):
        self.record({"Status": "exited", "Running": False, "Restarting": False, "Pid": 0, "ExitCode": code,
                     "OOMKilled": oom, "FinishedAt": now(), "Error": error})
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
            os.write(fd, (dumps({"exit_code": getattr(self, "exit_code", 125)}) + "\n").encode())
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
                wait_closed(fd)
            os.close(fd)
        if self.cfg.get("auto_remove") and os.path.exists(os.path.join(self.cdir, "config.json")):
            # Only now the engine is imported: the container is gone, so the
            # memory this costs is no longer paid per running container.
            try:
                from intermodal.containers.removal import remove_after_exit

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
        with Lock(self.cfg["lock"]):
            state = self.read_state()
            if state is not None:
                state.update(changes)
                self.write_state(state)
            return state

    def read_state(self):
        try:
            with open(os.path.join(self.cdir, "state.json"), encoding="utf-8") as f:
                return loads(f.read())
        except (OSError, ValueError, StopIteration):
            return None  # the container was removed

    def write_state(self, state):
        path = os.path.join(self.cdir, "state.json")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:  # no fsync: after a crash it is recomputed (store.replace_file)
            f.write(dumps(state))
        os.replace(tmp, path)

if __name__ == "__main__":
    main(sys.argv[1:])
