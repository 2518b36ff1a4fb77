"""`imod volume create/ls/inspect/rm/prune`."""

from __future__ import annotations

import argparse
import sys

from intermodal.cli.base import Command, Context, human_size, inspect_command, print_table
from intermodal.errors import IntermodalError


def _configure_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="VOLUME")
    p.add_argument("-l", "--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("-d", "--driver", default="local", help="only 'local'")


def _run_create(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.containers.spec import parse_labels
    from intermodal.errors import InvalidArgument

    if args.driver != "local":
        raise InvalidArgument(f"volume driver {args.driver!r} is not available: intermodal has 'local'")
    volume = ctx.engine.volumes.create(args.name, labels=dict(parse_labels(args.label)))
    print(volume["Name"])
    return 0


def _configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[], help="name=, label=, dangling=true|false")
    p.add_argument("--format", help="'json' or a Go-style template such as '{{.Name}}'")


def _run_ls(ctx: Context, args: argparse.Namespace) -> int:
    filters: dict[str, list[str]] = {}
    for f in args.filter:
        key, _, value = f.partition("=")
        filters.setdefault(key, []).append(value)
    volumes = ctx.engine.volumes.list(filters)
    if args.quiet:
        for v in volumes:
            print(v["Name"])
        return 0
    if args.format and args.format != "table":
        from intermodal.cli.format import render

        render(args.format, volumes)
        return 0
    print_table(["DRIVER", "VOLUME NAME"], ([v["Driver"], v["Name"]] for v in volumes))
    return 0


def _configure_names(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="VOLUME")


def _configure_rm(p: argparse.ArgumentParser) -> None:
    _configure_names(p)
    p.add_argument("-f", "--force", action="store_true", help="remove even if containers use it")


def _run_rm(ctx: Context, args: argparse.Namespace) -> int:
    code = 0
    for name in args.names:
        try:
            ctx.engine.volumes.remove(name, force=args.force)
            print(name)
        except IntermodalError as err:
            print(f"Error: {err}", file=sys.stderr)
            code = 1
    return code


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="also named volumes, not only anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (intermodal never asks)")


def _run_prune(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.engine.volumes.prune(all=args.all)
    if result["VolumesDeleted"]:
        print("Deleted Volumes:")
        for name in result["VolumesDeleted"]:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(result['SpaceReclaimed'])}")
    return 0


create = Command("volume create", "Create a volume", _configure_create, _run_create)
ls = Command("volume ls", "List volumes", _configure_ls, _run_ls)
inspect = inspect_command("volume inspect", "Show the details of volumes", "VOLUME", lambda e: e.volumes.inspect,
                          "{{.Mountpoint}}")
remove = Command("volume rm", "Remove volumes", _configure_rm, _run_rm)
prune = Command("volume prune", "Remove unused volumes", _configure_prune, _run_prune)
