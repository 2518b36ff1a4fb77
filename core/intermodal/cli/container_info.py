"""`imod ps`, `inspect`, `logs`, `wait`, `exec`, `top`, `cp`, `commit`, `container prune`: reading and using
containers (creating and their lifecycle are in containers.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from intermodal.cli.base import Command, Context, human_ago, inspect_command, print_found, print_table
from intermodal.cli.containers import parse_bool, terminal_size
from intermodal.errors import IntermodalError, InvalidArgument


def _configure_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running ones)")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[], help="name=, label=, status=, id=, ancestor=")
    p.add_argument("--format", help="'json' or a Go-style template such as '{{.Names}}'")


def _run_ps(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.inspect import ps_row

    now = time.time()
    filters = [f.partition("=")[::2] for f in args.filter]
    containers = [c for c in ctx.engine.containers.list(all=args.all or any(k == "status" for k, _ in filters))
                  if _filtered(c, filters)]
    rows = [ps_row(c, no_trunc=args.no_trunc, now=now) for c in containers]
    if args.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    if args.format and args.format != "table":
        from intermodal.cli.format import render

        render(args.format, rows)
        return 0
    print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], (
        [r["ID"], r["Image"], r["Command"], _created(r["CreatedAt"], now), r["Status"], r["Ports"], r["Names"]]
        for r in rows))
    return 0


def _filtered(c, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        if key == "name" and value.lstrip("/") not in c.name:
            return False
        if key == "id" and not c.id.startswith(value):
            return False
        if key == "status" and c.status != value:
            return False
        if key == "label":
            k, eq, v = value.partition("=")
            labels = dict(c.spec.labels)
            if k not in labels or (eq and labels[k] != v):
                return False
        if key == "ancestor" and value not in (c.record.get("ImageName"), c.record.get("Image")):
            return False
        if key not in ("name", "id", "status", "label", "ancestor"):
            raise InvalidArgument(f"unknown filter {key!r}: use name, id, status, label or ancestor")
    return True


def _created(text: str, now: float) -> str:
    from intermodal.containers.logs import parse_time

    try:
        return human_ago(now - parse_time(text) / 1e9)
    except InvalidArgument:
        return ""


def _configure_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all", help="number of lines from the end, or 'all'")
    p.add_argument("--since", help="RFC 3339 time or Unix timestamp")
    p.add_argument("--until", help="RFC 3339 time or Unix timestamp")
    p.add_argument("-t", "--timestamps", action="store_true")


def _run_logs(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.logs import parse_time

    tail = None if args.tail == "all" else int(args.tail)
    records = ctx.engine.containers.logs(args.container, follow=args.follow, tail=tail,
                                         since_ns=parse_time(args.since) if args.since else None,
                                         until_ns=parse_time(args.until) if args.until else None)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for r in records:
        text = (f"{r['time']} " if args.timestamps else "") + r["log"]
        target = err if r.get("stream") == "stderr" else out
        target.write(text.encode())
        if args.follow:
            target.flush()
    out.flush()
    return 0


def _configure_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _run_wait(ctx: Context, args: argparse.Namespace) -> int:
    code = 0
    for name in args.containers:
        try:
            print(ctx.engine.containers.wait(name), flush=True)
        except IntermodalError as err:
            print(f"Error: {err}", file=sys.stderr)
            code = 1
    return code


def _configure_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-e", "--env", action="append", default=[])


def _run_exec(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.spec import parse_env

    if not args.command:
        raise InvalidArgument("exec needs a command to run: imod exec CONTAINER COMMAND [ARG...]")
    if args.tty and not args.detach and not os.isatty(0):
        raise InvalidArgument("exec -t needs a terminal on standard input: run it from a terminal, or drop -t")
    if not args.interactive and not args.tty:
        # Without -i the process gets no input, as in Docker.
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    return ctx.engine.containers.exec(args.container, args.command, env=parse_env(args.env), workdir=args.workdir,
                                      user=args.user, tty=args.tty, detach=args.detach,
                                      console_size=terminal_size() if args.tty else None)


ps = Command("ps", "List containers", _configure_ps, _run_ps)
inspect = inspect_command("container inspect", "Show the details of containers", "CONTAINER",
                          lambda e: e.containers.inspect, "{{.State.Status}}")
logs = Command("logs", "Show a container's output", _configure_logs, _run_logs)
wait = Command("wait", "Wait for containers to stop and print their exit codes", _configure_wait, _run_wait)
exec_ = Command("exec", "Run a command in a running container", _configure_exec, _run_exec)


def _configure_top(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS-OPTIONS", help="options for ps (default -ef)")


def _run_top(ctx: Context, args: argparse.Namespace) -> int:
    sys.stdout.write(ctx.engine.containers.top(args.container, args.ps_args or None))
    return 0


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not ask (intermodal never asks)")


def _run_prune(ctx: Context, args: argparse.Namespace) -> int:
    removed = ctx.engine.containers.prune()
    if removed:
        print("Deleted Containers:")
        print("\n".join(removed))
        print()
    print(f"Total reclaimed containers: {len(removed)}")
    return 0


top = Command("top", "Show the processes of a running container", _configure_top, _run_top)
prune = Command("container prune", "Remove all stopped containers", _configure_prune, _run_prune)


def _configure_cp(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="CONTAINER:PATH or a host path ('-': a tar on stdin)")
    p.add_argument("dest", metavar="DEST", help="CONTAINER:PATH or a host path ('-': a tar on stdout)")
    p.add_argument("-a", "--archive", action="store_true", help="keep owners (always done)")


def _run_cp(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine.containers.copy(args.src, args.dest, stdin=sys.stdin.buffer, stdout=sys.stdout.buffer)
    return 0


cp = Command("cp", "Copy files between a container and the host", _configure_cp, _run_cp)


def _configure_commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[], help="a Dockerfile instruction, e.g. 'CMD [\"sh\"]'")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-p", "--pause", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="pause the container while committing (default true)")


def _run_commit(ctx: Context, args: argparse.Namespace) -> int:
    record = ctx.engine.containers.commit(args.container, args.reference, changes=args.change,
                                         message=args.message, author=args.author, pause=args.pause)
    print(record.id)
    return 0


commit = Command("commit", "Create a new image from a container's changes", _configure_commit, _run_commit)


def _configure_inspect_any(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p.add_argument("-f", "--format", help="a Go-style template, e.g. '{{.Id}}'")
    p.add_argument("--type", choices=("container", "image", "volume"), help="look only for this kind of object")


def _run_inspect_any(ctx: Context, args: argparse.Namespace) -> int:
    """Docker's `inspect`: a container of that name first, then an image, then a volume."""
    from intermodal.errors import NotFound

    engine = ctx.engine
    lookups = {"container": engine.containers.inspect, "image": engine.images.inspect,
               "volume": engine.volumes.inspect}
    kinds = [args.type] if args.type else ["container", "image", "volume"]
    found, code = [], 0
    for name in args.names:
        for kind in kinds:
            try:
                found.append(lookups[kind](name))
                break
            except (NotFound, InvalidArgument):
                continue
        else:
            print(f"Error: no such object: {name}", file=sys.stderr)
            code = 1
    print_found(found, args.format)
    return code


inspect_any = Command("inspect", "Show the details of containers, images or volumes", _configure_inspect_any,
                      _run_inspect_any)
