"""`imod`: the command line, shaped like `docker` and `podman`.

Start-up is a hot path: this module imports only what parsing needs, then
the one module that holds the command being run.
"""

from __future__ import annotations

import gc
import os
import sys

# command word -> "module:attribute" of a Command, or a group of them.
COMMANDS: dict[str, str | dict[str, str]] = {
    "images": "images:list_images",
    "image": {
        "ls": "images:list_images",
        "list": "images:list_images",
        "inspect": "images:inspect",
        "history": "images:history",
        "tag": "images:tag",
        "rm": "images:remove",
        "prune": "images:prune",
        "import": "importer:import_rootfs",
        "pull": "registry:pull",
        "push": "registry:push",
        "save": "archive:save",
        "load": "archive:load",
        "build": "build:build",
    },
    "history": "images:history",
    "tag": "images:tag",
    "rmi": "images:remove",
    "import": "importer:import_rootfs",
    "pull": "registry:pull",
    "push": "registry:push",
    "login": "registry:login",
    "logout": "registry:logout",
    "save": "archive:save",
    "load": "archive:load",
    "build": "build:build",
    "network": {
        "create": "networks:create",
        "ls": "networks:list_networks",
        "list": "networks:list_networks",
        "inspect": "networks:inspect",
        "rm": "networks:remove",
        "prune": "networks:prune",
        "connect": "networks:connect",
        "disconnect": "networks:disconnect",
    },
    "version": "info:version",
    "info": "info:info",
    "run": "containers:run",
    "create": "containers:create",
    "start": "containers:start",
    "stop": "containers:stop",
    "restart": "containers:restart",
    "kill": "containers:kill",
    "rm": "containers:remove",
    "ps": "container_info:ps",
    "logs": "container_info:logs",
    "wait": "container_info:wait",
    "exec": "container_info:exec_",
    "pause": "containers:pause",
    "unpause": "containers:unpause",
    "rename": "containers:rename",
    "update": "containers:update",
    "attach": "containers:attach",
    "top": "container_info:top",
    "cp": "container_info:cp",
    "commit": "container_info:commit",
    "inspect": "container_info:inspect_any",
    "port": "networks:port",
    "container": {
        "run": "containers:run",
        "create": "containers:create",
        "start": "containers:start",
        "stop": "containers:stop",
        "restart": "containers:restart",
        "kill": "containers:kill",
        "rm": "containers:remove",
        "ls": "container_info:ps",
        "list": "container_info:ps",
        "ps": "container_info:ps",
        "inspect": "container_info:inspect",
        "logs": "container_info:logs",
        "wait": "container_info:wait",
        "exec": "container_info:exec_",
        "pause": "containers:pause",
        "unpause": "containers:unpause",
        "rename": "containers:rename",
        "update": "containers:update",
        "attach": "containers:attach",
        "top": "container_info:top",
        "cp": "container_info:cp",
        "commit": "container_info:commit",
        "prune": "container_info:prune",
        "port": "networks:port",
    },
    "volume": {
        "create": "volumes:create",
        "ls": "volumes:ls",
        "list": "volumes:ls",
        "inspect": "volumes:inspect",
        "rm": "volumes:remove",
        "prune": "volumes:prune",
    },
}

GROUP_HELP = {"image": "Manage images", "container": "Manage containers", "volume": "Manage volumes"}
GROUP_HELP["network"] = "Manage networks"
GLOBAL_WITH_VALUE = {"--root", "--run-root", "--log-level"}


def main(argv: list[str] | None = None) -> int:
    """`imod ARG...`; *argv* None means this process is `imod` itself (sys.argv): it then ends at once when
    the command returns (see `_exit_now`), while a caller that passes *argv* gets the exit code back."""
    as_command = argv is None
    if as_command:
        # imod is short-lived, and what it allocates mostly lives to its end (modules, classes): at the
        # default pace (a collection every 700 allocations) the collector scans it ~20 times in an
        # `imod run`, ~3 ms. Collections stay, rarer, for long commands (`logs -f`, an attached run).
        gc.set_threshold(20_000, 10, 10)
    argv = list(sys.argv[1:] if argv is None else argv)
    ctx_args, rest = _split_global(argv)
    if not rest or rest[0] in ("-h", "--help", "help"):
        _print_usage()
        return 0
    if rest[0] in ("-v", "--version"):
        rest = ["version"]
    target, words, rest = _find(rest)
    if target is None:
        return 0 if rest is not None else 125  # a group's usage asked for, or an unknown command
    if target == "containers:run":  # its monitor starts now, while we import and parse (launch.prespawn)
        from intermodal.containers.launch import prespawn

        prespawn(rest, fork=as_command)  # forked only from `imod` itself: never a caller of main()
    if as_command:  # after the prespawn: the monitor starts first
        from intermodal.cli.lean_imports import lean_pathlib

        lean_pathlib()
    from intermodal.cli.base import Context
    from intermodal.cli.quick_parser import QuickParser  # argparse only where it is needed

    ctx = Context(root=ctx_args.get("--root"), run_root=ctx_args.get("--run-root"), debug="--debug" in ctx_args)
    module_name, attribute = target.split(":")
    __import__(f"intermodal.cli.{module_name}")  # not importlib: it brings warnings, for nothing here
    cmd = getattr(sys.modules[f"intermodal.cli.{module_name}"], attribute)
    parser = QuickParser(prog="imod " + " ".join(words), description=cmd.help)
    cmd.configure(parser)
    args = parser.parse_args(rest)
    code = _run(cmd, ctx, args)
    if as_command:
        _exit_now(code)
    return code


def _run(cmd, ctx, args) -> int:
    from intermodal.errors import IntermodalError

    try:
        code = cmd.run(ctx, args)
    except IntermodalError as err:
        if ctx.debug:
            raise
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `imod images | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(code or 0)


def _exit_now(code: int) -> None:
    """End the process with *code* now, skipping the interpreter's teardown of every module (~7 ms of
    `imod run`), when nothing is left for that teardown to do: no other thread, no atexit callback, and
    our output flushed. Otherwise (or if the flush fails, e.g. EPIPE) it returns, and the normal exit
    runs and reports as it always did."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    import atexit  # built in

    if atexit._ncallbacks():
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # EPIPE, or closed: the interpreter's own exit reports it, as without us
        return
    os._exit(code)


def _split_global(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        word = argv[i]
        name, eq, value = word.partition("=")
        if name in GLOBAL_WITH_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    break
                value = argv[i]
            values[name] = value
        elif word == "--debug":
            values["--debug"] = "1"
        else:
            break
        i += 1
    return values, argv[i:]


def _find(rest: list[str]) -> tuple[str | None, list[str], list[str] | None]:
    """The command's "module:attribute", its words and its arguments; no command: None, [], [] after a
    group's usage was printed, None, [], None for an unknown command (said on stderr)."""
    word = rest[0]
    entry = COMMANDS.get(word)
    if entry is None:
        print(f"Error: unknown command {word!r}; see `imod --help`", file=sys.stderr)
        return None, [], None
    if isinstance(entry, str):
        return entry, [word], rest[1:]
    if len(rest) < 2 or rest[1] in ("-h", "--help"):
        print(f"usage: imod {word} COMMAND\n\n{GROUP_HELP.get(word, '')}\n\nCommands:")
        for sub in entry:
            print(f"  {sub}")
        return None, [], []
    sub = entry.get(rest[1])
    if sub is None:
        print(f"Error: unknown command 'imod {word} {rest[1]}'; see `imod {word} --help`", file=sys.stderr)
        return None, [], None
    return sub, [word, rest[1]], rest[2:]


def _print_usage() -> None:
    print("usage: imod [--root DIR] [--run-root DIR] [--debug] COMMAND [ARG...]\n")
    print("A daemonless container engine.\n\nCommands:")
    for word, entry in COMMANDS.items():
        print(f"  {word}" + (f"  ({GROUP_HELP.get(word, '')})" if isinstance(entry, dict) else ""))


if __name__ == "__main__":
    sys.exit(main())
