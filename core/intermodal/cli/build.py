"""`imod build [-t NAME:TAG]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [--pull]
[--label K=V]... [-q] CONTEXT`."""

from __future__ import annotations

import argparse
import os

from intermodal.cli.base import Command, Context


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("context", metavar="CONTEXT", help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="tag the image; repeatable")
    p.add_argument("-f", "--file", metavar="FILE", help="the Dockerfile (default: CONTEXT/Containerfile or Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY[=VALUE]",
                   help="a build argument (KEY alone takes the value from the environment); repeatable")
    p.add_argument("--target", metavar="STAGE", help="build up to this stage")
    p.add_argument("--no-cache", action="store_true", help="do not reuse cached steps")
    p.add_argument("--pull", action="store_true", help="pull base images even when they are here")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="add a label; repeatable")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("--tls-verify", default="true", choices=("true", "false"), metavar="BOOL",
                   help="verify the registry's TLS certificate when pulling a base image (default true)")


def _pairs(values: list[str], what: str, from_env: bool) -> dict[str, str]:
    from intermodal.errors import InvalidArgument

    out = {}
    for value in values:
        name, eq, rest = value.partition("=")
        if not name:
            raise InvalidArgument(f"{what} {value!r} has no name; give KEY=VALUE")
        if not eq:
            if not from_env:
                raise InvalidArgument(f"{what} {value!r} has no value; give KEY=VALUE")
            if name not in os.environ:
                continue  # Docker: a bare --build-arg NAME not set in the environment is skipped
            rest = os.environ[name]
        out[name] = rest
    return out


def _run(ctx: Context, args: argparse.Namespace) -> int:
    record = ctx.engine.images.build(
        args.context, dockerfile=args.file, tags=tuple(args.tag),
        build_args=_pairs(args.build_arg, "--build-arg", True), target=args.target, no_cache=args.no_cache,
        pull=args.pull, labels=_pairs(args.label, "--label", False), quiet=args.quiet,
        tls_verify=args.tls_verify == "true")
    print(record.id.split(":", 1)[1])  # the full id last, as podman prints it
    return 0


build = Command("build", "Build an image from a Dockerfile", _configure, _run)
