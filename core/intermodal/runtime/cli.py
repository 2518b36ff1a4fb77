"""`imod-runtime`: the OCI runtime command line, one short function per verb.

Flags, exit codes and the JSON error log follow runc, because podman and
conmon parse them: errors exit 1, are printed on stderr and, with
`--log FILE --log-format json`, appended as {"level":"error","msg":...}.
`run` exits with the container's own exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"


def _log_line(path: str | None, fmt: str, level: str, msg: str, created: float | None = None) -> None:
    """One message in runc's log shape: a text line, or JSON with level, msg and time."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    if fmt == "json":
        line = json.dumps({"level": level, "msg": msg, "time": stamp})
    else:
        line = f'time="{stamp}" level={level} msg="{msg}"'
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
    else:
        sys.stderr.write(line + "\n")


_GLOBAL_WITH_VALUE = ("--root", "--log", "--log-format", "--cgroup-manager", "--log-level", "--rootless", "--criu")


class _Skipped:
    """Stands in for the sub-parser of a verb not asked for: building all 14 costs ~10 ms a call."""

    def add_argument(self, *args: object, **kwargs: object) -> _Skipped:
        return self


def _verb_in(argv: list[str]) -> str | None:
    it = iter(argv)
    for arg in it:
        if arg in _GLOBAL_WITH_VALUE:
            next(it, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with *only*, just that verb's sub-parser (unknown verbs get the full one)."""
    p = argparse.ArgumentParser(prog="imod-runtime", description="OCI runtime of intermodal")
    p.add_argument("--root", default="/run/imod-runtime", help="directory for container state")
    p.add_argument("--log", default=None, help="append log messages to this file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--cgroup-manager", default="cgroupfs", choices=("cgroupfs", "systemd"))
    p.add_argument("--systemd-cgroup", action="store_true", help="cgroupsPath is slice:prefix:name")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--log-level", default=None, help="accepted like runc's; 'debug' equals --debug")
    p.add_argument("--rootless", default=None, help="accepted for compatibility; ignored")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("--version", "-v", action="store_true")
    sub = p.add_subparsers(dest="verb")

    def verb(name: str, func, help_: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Skipped()  # type: ignore[return-value]
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(func=func)
        return sp

    def creating(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bundle", "-b", default=".")
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("--no-pivot", action="store_true", help="accepted; pivot_root is always used")
        sp.add_argument("--no-new-keyring", action="store_true", help="accepted; no keyring is created")
        sp.add_argument("--config", default=None, help="config file instead of BUNDLE/config.json")
        sp.add_argument("id")

    creating(verb("create", cmd_create, "create a container, leaving its process waiting for start"))
    run = verb("run", cmd_run, "create and start a container, wait for it and delete it")
    creating(run)
    run.add_argument("--detach", "-d", action="store_true")
    run.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
    verb("start", cmd_start, "start a created container").add_argument("id")
    verb("state", cmd_state, "print the state JSON of a container").add_argument("id")
    kill = verb("kill", cmd_kill, "send a signal to the container's process")
    kill.add_argument("--all", "-a", action="store_true", help="signal every process in the container")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = verb("delete", cmd_delete, "delete a stopped container (any with --force)")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("id")
    ex = verb("exec", cmd_exec, "run a process in a container")
    ex.add_argument("--process", "-p", default=None, help="process.json (the config's process object)")
    ex.add_argument("--tty", "-t", action="store_true")
    ex.add_argument("--detach", "-d", action="store_true")
    ex.add_argument("--pid-file", default=None)
    ex.add_argument("--console-socket", default=None)
    ex.add_argument("--cwd", default=None)
    ex.add_argument("--env", "-e", action="append", default=[])
    ex.add_argument("--user", "-u", default=None, help="uid[:gid]")
    ex.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    ex.add_argument("--cap", "-c", action="append", default=[])
    ex.add_argument("--no-new-privs", action="store_true")
    ex.add_argument("--preserve-fds", type=int, default=0)
    ex.add_argument("id")
    ex.add_argument("args", nargs=argparse.REMAINDER)
    ps = verb("ps", cmd_ps, "list the processes of a container")
    ps.add_argument("--format", "-f", default="table", choices=("table", "json"))
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    ls = verb("list", cmd_list, "list containers")
    ls.add_argument("--format", "-f", default="table", choices=("table", "json"))
    ls.add_argument("--quiet", "-q", action="store_true")
    sp = verb("spec", cmd_spec, "write a default config.json")
    sp.add_argument("--bundle", "-b", default=".")
    sp.add_argument("--rootless", action="store_true", help="a config for a user namespace mapping our uid to root")
    verb("features", cmd_features, "print what this runtime supports (OCI features JSON)")
    verb("pause", cmd_pause, "freeze every process of a container").add_argument("id")
    verb("resume", cmd_resume, "thaw a paused container").add_argument("id")
    return p


def _runtime(args: argparse.Namespace):
    from intermodal.runtime.container import Runtime

    return Runtime(args.root, systemd_cgroup=args.systemd_cgroup or args.cgroup_manager == "systemd")


def _create_options(args: argparse.Namespace) -> dict:
    return {"config": args.config, "pid_file": args.pid_file, "console_socket": args.console_socket,
            "preserve_fds": args.preserve_fds}


def cmd_create(args: argparse.Namespace) -> int:
    _runtime(args).create(args.id, args.bundle, **_create_options(args))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    _runtime(args).get(args.id).start()
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    print(json.dumps(_runtime(args).get(args.id).state(), indent=2))
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from intermodal.runtime.container import parse_signal

    _runtime(args).get(args.id).kill(parse_signal(args.signal), all_processes=args.all)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _runtime(args).delete(args.id, force=args.force)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    relay = _relay(args)
    try:
        return _run(rt, args, relay)
    finally:
        if relay is not None:
            relay.close()


def _run(rt, args: argparse.Namespace, relay) -> int:
    options = _create_options(args)
    if relay is not None:
        options["console_socket"] = relay.path
    ctr = rt.create(args.id, args.bundle, **options)
    try:
        if relay is not None:
            relay.receive()
        ctr.start()
    except BaseException:
        ctr.delete(force=True)
        raise
    if args.detach:
        return 0
    pid = ctr.record().pid
    _forward_signals(pid)
    if relay is not None:
        relay.copy(pid)
    code = ctr.wait()
    if not args.keep:
        ctr.delete(force=True)
    return code if code is not None else 0


def _relay(args: argparse.Namespace):
    """runc's foreground terminal: `run` (not detached) of a terminal process without --console-socket
    takes the pty itself and relays our stdin/stdout (runtime/relay.py); else None."""
    if args.detach or args.console_socket:
        return None
    from intermodal.runtime import spec as spec_mod

    process = spec_mod.load(args.bundle, args.config).process
    if process is None or not process.terminal:
        return None
    from intermodal.runtime.relay import Relay

    return Relay()


def _forward_signals(pid: int) -> None:
    """Like runc run: signals to us go to the container's process."""
    import signal

    def forward(signum: int, _frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)


def cmd_exec(args: argparse.Namespace) -> int:
    from intermodal.runtime import spec as spec_mod

    ctr = _runtime(args).get(args.id)
    if args.process:
        with open(args.process, "rb") as f:
            proc = spec_mod.parse_process(json.load(f))
    else:
        proc = _exec_process(ctr, args)
    if proc.capabilities:
        from intermodal.runtime import capabilities
        from intermodal.runtime.container import warn

        for warning in capabilities.warnings(proc.capabilities):  # as create warns (validate.warnings)
            warn(warning)
    result = ctr.exec(proc, detach=args.detach, pid_file=args.pid_file, console_socket=args.console_socket,
                      preserve_fds=args.preserve_fds)
    return 0 if args.detach else result


def _exec_process(ctr, args: argparse.Namespace):
    """runc's rule: start from the container's own process, override what the flags say."""
    from intermodal.errors import InvalidArgument
    from intermodal.records import replace
    from intermodal.runtime import spec as spec_mod

    if not args.args:
        raise InvalidArgument("exec needs a command (or --process FILE); e.g. `imod-runtime exec ID sh`")
    rec = ctr.record()
    base = spec_mod.load(rec.bundle, rec.config or None).process
    changes: dict = {"args": tuple(args.args[1:] if args.args[0] == "--" else args.args), "terminal": args.tty,
                     "env": base.env + tuple(args.env)}
    if args.cwd:
        changes["cwd"] = args.cwd
    if args.user or args.additional_gids:
        uid, _, gid = (args.user or f"{base.user.uid}:{base.user.gid}").partition(":")
        changes["user"] = spec_mod.User(int(uid), int(gid or 0), base.user.umask,
                                        tuple(args.additional_gids) or base.user.additional_gids)
    if args.cap:
        caps = {k: list(v) for k, v in (base.capabilities or {}).items()}
        for key in ("bounding", "effective", "permitted"):
            caps[key] = sorted(set(caps.get(key, [])) | set(args.cap))
        changes["capabilities"] = caps
    if args.no_new_privs:
        changes["no_new_privileges"] = True
    return replace(base, **changes)


def cmd_ps(args: argparse.Namespace) -> int:
    pids = _runtime(args).get(args.id).ps()
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    from intermodal.runtime.ps import table

    ps_args = args.ps_args[1:] if args.ps_args[:1] == ["--"] else args.ps_args
    sys.stdout.write(table(pids, ps_args))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    states = _runtime(args).list()
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} CREATED")
        for s in states:
            print(f"{s['id']:<20} {s['pid']:<8} {s['status']:<10} {s['bundle']:<40} {s['created']}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    from intermodal.errors import AlreadyExists
    from intermodal.runtime.spec import default_config, to_rootless

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise AlreadyExists(f"{path} already exists; remove it first to write a new default")
    config = default_config()
    if args.rootless:
        to_rootless(config, os.geteuid(), os.getegid())
    with open(path, "x") as f:
        json.dump(config, f, indent=2)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from intermodal.runtime import capabilities, mounts, namespaces
    from intermodal.runtime.spec import OCI_VERSION

    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted([*mounts.FLAG_OPTIONS, *mounts.PROPAGATION_OPTIONS]),
        "linux": {
            "namespaces": list(namespaces.ORDER),
            "capabilities": capabilities.names(),
            "cgroup": {"v1": True, "v2": True, "systemd": False},
            "seccomp": {"enabled": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
    }, indent=2))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    _runtime(args).get(args.id).pause()
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    _runtime(args).get(args.id).resume()
    return 0


def _setup_logging(args: argparse.Namespace) -> None:
    """Route the runtime's warnings to --log (without --log, logging's last resort prints them on stderr).

    Imports logging only when asked: every podman operation starts this command anew."""
    args.debug = args.debug or args.log_level == "debug"
    if not (args.log or args.debug):
        return
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            _log_line(args.log, args.log_format, record.levelname.lower(), record.getMessage(), record.created)

    logger = logging.getLogger("intermodal")
    logger.addHandler(Handler())
    logger.setLevel(logging.DEBUG if args.debug else logging.WARNING)
    logger.propagate = False


VERBS = ("create", "run", "start", "state", "kill", "delete", "exec", "ps", "list", "spec", "features", "pause",
         "resume")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verb = _verb_in(argv)
    parser = _parser(verb if verb in VERBS else None)
    args = parser.parse_args(argv)
    if args.version:
        print(f"imod-runtime version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 1
    _setup_logging(args)
    from intermodal.errors import IntermodalError

    try:
        return args.func(args)
    except (IntermodalError, OSError) as exc:
        message = str(exc)
        _log_line(args.log, args.log_format, "error", message)
        if args.log:  # callers (conmon, podman) read the log file, people read stderr
            sys.stderr.write(message + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
