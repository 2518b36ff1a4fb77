"""`imod run` and `create`, and the lifecycle verbs: `start`, `stop`, `restart`, `kill`, `rm`, `pause`, `rename`,
`update`, `attach`. What reads or uses a container (`ps`, `inspect`, `logs`, `exec`, `cp`, ...) is in
container_info.py."""

from __future__ import annotations

import _signal  # not `signal`, an enum module (~1 ms); handlers get and restore plain numbers alike
import os
import sys

from intermodal.cli.base import Command, Context
from intermodal.cli.quick_parser import REMAINDER
from intermodal.errors import IntermodalError, InvalidArgument

TYPE_CHECKING = False  # not `typing`; nor argparse, which `run` parses without (cli/quick_parser.py)
if TYPE_CHECKING:
    import argparse

# -- run / create ---------------------------------------------------------------


def _configure_create(p: argparse.ArgumentParser) -> None:
    p.conflict_handler = "resolve"  # -h is --hostname, as in Docker; help stays at --help
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=REMAINDER, metavar="COMMAND", help="command and arguments")
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[], help="NAME=VALUE, or NAME to pass ours on")
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user", help="NAME|UID[:GROUP|GID]")
    p.add_argument("--entrypoint", help='overrides the image\'s ENTRYPOINT ("" removes it)')
    p.add_argument("-h", "--hostname")
    p.add_argument("-l", "--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("-v", "--volume", action="append", default=[], help="[NAME|HOST-PATH:]PATH[:ro]")
    p.add_argument("--mount", action="append", default=[], help="type=volume|bind|tmpfs,source=..,target=..")
    p.add_argument("--tmpfs", action="append", default=[], help="PATH[:size=64m,mode=1777]")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--network", "--net", action="append", default=[],
                   help="bridge (the default network), none (loopback only), host, container:NAME, or a network's "
                   "name; repeat to join several networks (name=NET,alias=A,ip=IP sets one's alias and address)")
    p.add_argument("-p", "--publish", action="append", default=[], help="[IP:][HOST-PORT:]PORT[/PROTO]")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every EXPOSEd port (the image's and --expose) on an ephemeral host port")
    p.add_argument("--expose", action="append", default=[], help="PORT[/PROTO]: expose without publishing")
    p.add_argument("--network-alias", action="append", default=[], help="another name on the first network")
    p.add_argument("--ip", help="the container's address on its (first) network")
    p.add_argument("--dns", action="append", default=[], help="a nameserver's IP address for the container's "
                   "/etc/resolv.conf instead of the host's (repeat for several)")
    p.add_argument("--dns-search", action="append", default=[], help="a DNS search domain (. for none)")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="a resolv.conf option, "
                   "e.g. ndots:2")
    p.add_argument("--add-host", action="append", default=[], help="HOST:IP (or HOST=IP) in the container's "
                   "/etc/hosts; HOST:host-gateway is the gateway of its first network")
    p.add_argument("--restart", default="no", help="no, on-failure[:N], always, unless-stopped")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("--privileged", action="store_true", help="all capabilities and every host device")
    p.add_argument("--device", action="append", default=[], help="HOST-PATH[:CONTAINER-PATH][:PERMISSIONS] "
                   "(permissions of r, w, m; default rwm)")
    p.add_argument("--device-cgroup-rule", action="append", default=[], help="'TYPE MAJOR:MINOR PERMISSIONS' "
                   "allowed in the device cgroup, e.g. 'c 1:3 rwm' or 'b 8:* r' (* for any number)")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("-m", "--memory")
    p.add_argument("--cpus")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--log-opt", action="append", default=[], help="max-size=10m, max-file=3")
    p.add_argument("--health-cmd", help="command run in the container to check its health (a shell command)")
    p.add_argument("--health-interval", help="time between checks, e.g. 30s (default: the image's, else 30s)")
    p.add_argument("--health-timeout", help="longest a check may run (default 30s)")
    p.add_argument("--health-start-period", help="failures in this time after the start do not count")
    p.add_argument("--health-start-interval", help="time between checks during the start period (default: "
                   "the interval)")
    p.add_argument("--health-retries", type=int, help="failures in a row that make it unhealthy (default 3)")
    p.add_argument("--no-healthcheck", action="store_true", help="disable the image's HEALTHCHECK")
    p.add_argument("--init", action="store_true", help="run a small init as pid 1 (reaps zombies, passes signals)")
    p.add_argument("--runtime", help="OCI runtime: imod-runtime (default; or $IMOD_RUNTIME, or ROOT/engine.json), "
                   "runc, crun, or a path")
    p.add_argument("--pull", default="missing", choices=("missing", "always", "never"),
                   help="pull the image: if missing (default), always, or never")
    p.add_argument("--tls-verify", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="false: the registry may speak plain HTTP or have an unverified certificate")


def _configure_run(p: argparse.ArgumentParser) -> None:
    _configure_create(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the id")


def _spec(args: argparse.Namespace):
    from intermodal.containers import spec as specs

    env = [line for path in args.env_file for line in specs.read_env_file(path)] + args.env
    mounts = ([specs.parse_volume(v) for v in args.volume] + [specs.parse_mount(m) for m in args.mount]
              + [specs.parse_tmpfs(t) for t in args.tmpfs])
    log_opts = dict(o.partition("=")[::2] for o in args.log_opt)
    unknown = set(log_opts) - {"max-size", "max-file"}
    if unknown:
        raise InvalidArgument(f"unknown --log-opt {', '.join(sorted(unknown))}: json-file takes max-size and max-file")
    options = {
        "name": args.name, "command": args.command or None, "env": env, "workdir": args.workdir,
        "user": args.user, "hostname": args.hostname, "labels": args.label, "mounts": mounts,
        "ports": args.publish, "publish_all": args.publish_all or None, "expose": args.expose,
        "restart": args.restart, "stop_signal": args.stop_signal,
        "stop_timeout": args.stop_timeout, "auto_remove": args.rm, "interactive": args.interactive,
        "tty": args.tty, "read_only": args.read_only, "privileged": args.privileged, "cap_add": args.cap_add,
        "devices": args.device, "cap_drop": args.cap_drop, "memory": args.memory, "cpus": args.cpus,
        "device_cgroup_rules": args.device_cgroup_rule, "pids_limit": args.pids_limit, "dns": args.dns,
        "dns_search": args.dns_search, "dns_options": args.dns_option, "extra_hosts": args.add_host,
        "log_max_size": log_opts.get("max-size"), "log_max_file": log_opts.get("max-file"), "init": args.init,
    }
    if args.entrypoint is not None:
        options["entrypoint"] = args.entrypoint
    from intermodal.containers.net import network_options

    options.update(network_options(args.network, args.network_alias, args.ip))
    health = {"cmd": args.health_cmd, "interval": args.health_interval, "timeout": args.health_timeout,
              "start_period": args.health_start_period, "start_interval": args.health_start_interval,
              "retries": args.health_retries,
              "disable": args.no_healthcheck}
    if any(v not in (None, False) for v in health.values()):
        options["healthcheck"] = health
    return specs.ContainerSpec.build(args.image, **{k: v for k, v in options.items() if v is not None})


def parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    import argparse  # only now: `run` parses without it (cli/quick_parser.py)

    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _pull(args: argparse.Namespace) -> dict:
    return {"pull": args.pull, "pull_options": {"tls_verify": args.tls_verify}}


def _run_create(ctx: Context, args: argparse.Namespace) -> int:
    container = ctx.engine.containers.create(_spec(args), runtime=args.runtime, **_pull(args))
    print(container.id)
    return 0


def _run_run(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.launch import PendingMonitor, copy_output, take_prespawned

    attach = not args.detach
    stdin = 0 if attach and args.interactive else None
    # cli.main started the monitor before our arguments were parsed: its interpreter and the
    # runtime's imports run while we parse and create (a wrong guess of -d/-i costs a new one).
    monitor = take_prespawned(attach, stdin)
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        if monitor is not None:
            monitor.cancel()
        raise InvalidArgument("the input device is not a TTY: drop -t, or run from a terminal")
    monitor = monitor or PendingMonitor(attach=attach, stdin=stdin)
    try:
        spec = _spec(args)
        manager = ctx.engine.containers
    except BaseException:
        monitor.cancel()
        raise
    if spec.auto_remove and attach:  # we remove it once it exits: its imports now, while we wait
        monitor.meanwhile = _preload_removal
    size = terminal_size() if args.tty else None
    if args.detach:
        container, _ = manager.run(spec, console_size=size, runtime=args.runtime, monitor=monitor, **_pull(args))
        print(container.id)
        return 0
    container, started = manager.run(spec, attach=True, stdin=stdin, console_size=size, runtime=args.runtime,
                                     monitor=monitor, **_pull(args))
    try:
        with _proxy_signals(manager, container.id), _raw_terminal(args.tty and args.interactive), \
                _pass_resizes(started.attach.status if args.tty else None):
            code = copy_output(started.attach)
        if spec.auto_remove:
            manager.remove_exited(container.id)
    finally:
        started.attach.close()  # tells the monitor we are done (it removes the container if we did not)
    return code


def _preload_removal() -> None:
    from intermodal.containers.removal import preload

    preload()


def terminal_size() -> tuple[int, int] | None:
    for fd in (0, 1, 2):
        if os.isatty(fd):
            cols, rows = os.get_terminal_size(fd)
            return rows, cols
    return None


class _raw_terminal:
    """Our terminal in raw mode while attached to a `-it` container: keys go to its terminal unchanged."""

    def __init__(self, wanted: bool) -> None:
        self.saved = None
        self.wanted = wanted

    def __enter__(self) -> None:
        if self.wanted and os.isatty(0):
            import termios
            import tty

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


class _pass_resizes:
    """SIGWINCH: tell the monitor our terminal's new size; it sizes the container's terminal."""

    def __init__(self, fd: int | None) -> None:
        self.fd, self.old = fd, None

    def __enter__(self) -> None:
        if self.fd is not None:
            self.old = _signal.signal(_signal.SIGWINCH, self._send)

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            _signal.signal(_signal.SIGWINCH, self.old)

    def _send(self, _sig: int, _frame) -> None:
        size = terminal_size()
        if size:
            from intermodal import cjson

            try:
                os.write(self.fd, (cjson.dumps({"resize": list(size)}) + "\n").encode())
            except OSError:
                pass  # the monitor is done


class _proxy_signals:
    """Signals sent to `imod run` go to the container, as Docker's --sig-proxy does."""

    SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2)

    def __init__(self, manager, cid: str) -> None:
        self.manager, self.cid, self.old = manager, cid, {}

    def __enter__(self) -> None:
        for sig in self.SIGNALS:
            self.old[sig] = _signal.signal(sig, self._forward)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            _signal.signal(sig, handler)

    def _forward(self, sig: int, _frame) -> None:
        try:
            self.manager.kill(self.cid, sig)
        except IntermodalError:
            pass  # it exited meanwhile


run = Command("run", "Create and start a container from an image", _configure_run, _run_run)
create = Command("create", "Create a container without starting it", _configure_create, _run_create)

# -- start / stop / restart / kill / rm / pause / rename -------------------------


def _configure_names(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _each(args: argparse.Namespace, action) -> int:
    """Docker's multi-container verbs: go on after an error, print each name done, exit 1 if any failed."""
    code = 0
    for name in args.containers:
        try:
            out = action(name)
            if out is not False:
                print(name)
        except IntermodalError as err:
            print(f"Error: {err}", file=sys.stderr)
            code = 1
    return code


def _configure_start(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p.add_argument("-a", "--attach", action="store_true", help="copy the container's output until it exits")
    p.add_argument("--all-restartable", action="store_true",
                   help="start every container whose restart policy says so (after a reboot)")


def _run_start(ctx: Context, args: argparse.Namespace) -> int:
    manager = ctx.engine.containers
    if args.all_restartable:
        for name in manager.start_restartable():
            print(name)
        return 0
    if not args.containers:
        raise InvalidArgument("name at least one container to start, or use --all-restartable")
    if args.attach:
        if len(args.containers) != 1:
            raise InvalidArgument("start -a attaches to one container: name exactly one")
        from intermodal.containers.launch import copy_output

        started = manager.start(args.containers[0], attach=True)
        if not started:
            return 0
        try:
            return copy_output(started.attach)
        finally:
            started.attach.close()
    return _each(args, manager.start)


def _configure_stop(p: argparse.ArgumentParser) -> None:
    _configure_names(p)
    p.add_argument("-t", "--time", "--timeout", type=int, dest="timeout",
                   help="seconds to wait before SIGKILL (default: the container's, else 10)")


def _run_stop(ctx: Context, args: argparse.Namespace) -> int:
    return _each(args, lambda n: ctx.engine.containers.stop(n, timeout=args.timeout))


def _run_restart(ctx: Context, args: argparse.Namespace) -> int:
    return _each(args, lambda n: ctx.engine.containers.restart(n, timeout=args.timeout))


def _configure_kill(p: argparse.ArgumentParser) -> None:
    _configure_names(p)
    p.add_argument("-s", "--signal", default="KILL")


def _run_kill(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.spec import parse_signal

    sig = parse_signal(args.signal)
    return _each(args, lambda n: ctx.engine.containers.kill(n, sig))


def _configure_rm(p: argparse.ArgumentParser) -> None:
    _configure_names(p)
    p.add_argument("-f", "--force", action="store_true", help="stop a running container first (SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="remove its anonymous volumes too")


def _run_rm(ctx: Context, args: argparse.Namespace) -> int:
    return _each(args, lambda n: ctx.engine.containers.remove(n, force=args.force, volumes=args.volumes))


def _run_pause(ctx: Context, args: argparse.Namespace) -> int:
    return _each(args, ctx.engine.containers.pause)


def _run_unpause(ctx: Context, args: argparse.Namespace) -> int:
    return _each(args, ctx.engine.containers.unpause)


def _configure_rename(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def _run_rename(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine.containers.rename(args.container, args.new_name)
    return 0


def _configure_update(p: argparse.ArgumentParser) -> None:
    _configure_names(p)
    p.add_argument("--restart", help="no, on-failure[:N], always, unless-stopped (applied at the next exit)")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 512m (0: none)")
    p.add_argument("--cpus", help="CPUs, e.g. 1.5 (0: no limit)")
    p.add_argument("--pids-limit", help="most processes (-1: no limit)")


def _run_update(ctx: Context, args: argparse.Namespace) -> int:
    values = {"restart": args.restart, "memory": args.memory, "cpus": args.cpus, "pids_limit": args.pids_limit}
    if all(v is None for v in values.values()):
        raise InvalidArgument("give at least one of --restart, --memory, --cpus, --pids-limit")
    return _each(args, lambda n: ctx.engine.containers.update(n, **values))


def _configure_attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--no-stdin", action="store_true", help="accepted for Docker's sake: input is never attached")
    p.add_argument("--sig-proxy", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="pass the signals we get on to the container (default true)")


def _run_attach(ctx: Context, args: argparse.Namespace) -> int:
    """The container's output from now on until it stops; then its exit code, as `docker attach`."""
    import contextlib

    manager = ctx.engine.containers
    records = manager.attach(args.container)
    proxy = _proxy_signals(manager, args.container) if args.sig_proxy else contextlib.nullcontext()
    with proxy:
        for record in records:
            out = sys.stderr if record.get("stream") == "stderr" else sys.stdout
            out.write(record.get("log", ""))
            out.flush()
    return manager.wait(args.container)


start = Command("start", "Start stopped containers", _configure_start, _run_start)
stop = Command("stop", "Stop running containers (stop signal, then SIGKILL)", _configure_stop, _run_stop)
restart = Command("restart", "Restart containers", _configure_stop, _run_restart)
kill = Command("kill", "Send a signal to running containers", _configure_kill, _run_kill)
remove = Command("rm", "Remove containers", _configure_rm, _run_rm)
pause = Command("pause", "Freeze the processes of containers", _configure_names, _run_pause)
unpause = Command("unpause", "Thaw paused containers", _configure_names, _run_unpause)
rename = Command("rename", "Rename a container", _configure_rename, _run_rename)
attach = Command("attach", "Show a running container's output until it stops (input is not attached)",
                 _configure_attach, _run_attach)
update = Command("update", "Change the restart policy and limits of containers", _configure_update, _run_update)
