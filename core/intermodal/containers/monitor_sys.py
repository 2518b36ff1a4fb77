"""Small system helpers of the monitor, written against the C halves of the standard library.

The monitor's memory is paid once per running container, so nothing here
imports `json` (which pulls in `re` and `enum`), `signal` (enum), `ctypes`
or `subprocess`: `_json`, `_signal`, `_ctypes` and `os.posix_spawn` do.
"""

import _signal as signal
import os
import time

PR_SET_CHILD_SUBREAPER = 36


class Lock:
    """flock(2) on the container's lock file, like intermodal.locking, without importing it."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


def spawn_wait(argv, stdin, stdout, stderr):
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


def runtime_error(log_file):
    try:
        with open(log_file, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = loads(line.decode("utf-8", "replace"))
        except (ValueError, StopIteration):
            continue
        if entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return None


def exit_code_for(error):
    """Docker's codes: 127 command not found, 126 not executable, else 125 (the engine failed)."""
    text = error.lower()
    if "executable file not found" in text or "no such file or directory" in text:
        return 127
    if "permission denied" in text or "exec format error" in text or "is a directory" in text:
        return 126
    return 125


def start_time(pid):
    """Field 22 of /proc/PID/stat: with the pid it names one process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


def set_subreaper():
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


def name_process():
    """`imod-monitor` in ps's and top's command column (comm) rather than python's; best effort."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write("imod-monitor")
    except OSError:
        pass


def retitle(cid):
    """For a monitor forked from `imod run`, which would show that command for as long as the container
    runs: ``imod-monitor --id ID`` written over its argv area (/proc/self/stat's arg_start..arg_end, as
    nginx and PostgreSQL retitle theirs), cut to fit; best effort."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49 of proc(5)'s stat
        title = b"imod-monitor\0--id\0" + (cid or "").encode()
        fd = os.open("/proc/self/mem", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, title[:end - start - 1].ljust(end - start, b"\0"), start)
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        pass  # no /proc, or a kernel that refuses: the title stays


class JsonContext:
    """What `_json.make_scanner` reads from `json.JSONDecoder`; using the C parts spares `json`'s `re`."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo = {}  # the scanner caches keys here, as json.decoder does


def loads(text):
    import _json

    value, _end = _json.make_scanner(JsonContext())(text.strip(), 0)
    return value


def dumps(value):
    """JSON for the plain values the monitor writes (dict, list, str, int, float, bool, None)."""
    from _json import encode_basestring

    if isinstance(value, dict):
        return "{" + ", ".join(encode_basestring(str(k)) + ": " + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)


def read_orders(fd):
    """The container directory `imod` sends once the container exists; None if it closed the pipe instead."""
    data = read_line(fd)
    return os.fsdecode(data[:-1]) if data.endswith(b"\n") else None


def read_line(fd):
    """One message: what is read from *fd* up to a newline (kept) or EOF; closes *fd*."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def close_others(keep):
    """Close every descriptor above stderr but *keep*: `imod` spawns us without closing its own."""
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)  # close_range(2) underneath: one system call


def parse_fds(args):
    fds = {}
    for i in range(0, len(args) - 1, 2):
        fds[args[i].lstrip("-")] = int(args[i + 1])
    return fds


def drain(fd):
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def wait_readable(fd):
    import select

    select.select([fd], [], [], 0.5)
    return True


def wait_closed(fd):
    """Block until the other end of the status socket is closed (its reads return EOF)."""
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def now():
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"
