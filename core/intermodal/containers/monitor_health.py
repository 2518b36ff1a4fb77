"""Docker's healthchecks, run by the monitor while the container runs (see `Health`)."""

import _signal as signal
import os
import time

from intermodal.containers.monitor_sys import Lock, now, unlink

KILLED_POLL = 0.1  # seconds between looks at a check killed for its timeout, until it has exited


class Health:
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
        self.start_interval = cfg.get("start_interval") or self.interval
        self.status = "starting"
        self.timeout = cfg["timeout"]
        self.retries = cfg["retries"]
        self.start_period_end = time.monotonic() + cfg["start_period"]
        self.process_file = os.path.join(monitor.cdir, "health-process.json")
        self.pid_file = os.path.join(monitor.cdir, "health.pid")
        self.next_run = time.monotonic() + self.next_interval()
        self.pid = None
        self.fd = None

    def next_interval(self):
        """Docker's: the start interval while in the start period and not yet healthy, else the interval."""
        if self.status == "starting" and time.monotonic() < self.start_period_end:
            return self.start_interval
        return self.interval

    def wait(self):
        """Seconds until something is due: the next check, or the running one's timeout."""
        now = time.monotonic()
        if self.pid is not None:
            # Killed for its timeout: its exit (SIGCHLD) wakes us; look again now and then all the same.
            return KILLED_POLL if self.timed_out else self.started + self.timeout - now
        return self.next_run - now

    def owns(self, fd):
        return fd == self.fd

    def tick(self):
        now = time.monotonic()
        if self.pid is None and now >= self.next_run:
            self.run()
        elif self.pid is not None and not self.timed_out and now >= self.started + self.timeout:
            self.kill()
            self.output += f"Health check exceeded timeout ({self.timeout:g}s)".encode()
            self.timed_out = True

    def run(self):
        unlink(self.pid_file)
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
        self.start_ts = now()
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
        # Docker's codes: -1 when the test timed out, 1 for any other failure
        # to run it (a signal, the runtime's own error); else the test's.
        self.record(-1 if self.timed_out else (code if code >= 0 else 1))
        self.next_run = time.monotonic() + self.next_interval()

    def record(self, code):
        entry = {"Start": self.start_ts, "End": now(), "ExitCode": code,
                 "Output": self.output.decode("utf-8", "replace")}
        in_start_period = time.monotonic() < self.start_period_end
        with Lock(self.monitor.cfg["lock"]):
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
            self.status = health["Status"]
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
