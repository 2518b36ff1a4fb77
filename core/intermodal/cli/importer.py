"""`imod import [-c CHANGE]... [-m MSG] FILE|- [REPOSITORY[:TAG]]`."""

from __future__ import annotations

import argparse

from intermodal.cli.base import Command, Context


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE|-", help="a root filesystem tar (plain, gzip, zstd, bzip2, xz), - for stdin")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]", help="tag the new image")
    p.add_argument("-c", "--change", action="append", default=[], metavar="CHANGE",
                   help="apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, "
                        "LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable")
    p.add_argument("-m", "--message", default="", help="commit message for the image's history")


def _run(ctx: Context, args: argparse.Namespace) -> int:
    record = ctx.engine.images.import_rootfs(args.file, args.reference, changes=args.change, message=args.message)
    print(record.id)  # the full id, as `docker import` prints it
    return 0


import_rootfs = Command("import", "Import a root filesystem tar as a one-layer image", _configure, _run)
