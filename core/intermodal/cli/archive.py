"""`imod save` and `imod load`."""

from __future__ import annotations

import argparse

from intermodal.cli.base import Command, Context

FORMATS = ("docker-archive", "oci-archive", "oci-dir")


def _configure_save(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE (a directory for oci-dir) instead of STDOUT")
    parser.add_argument("--format", choices=FORMATS, default="docker-archive",
                        help="archive format (default docker-archive, as `docker save` writes)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image name, name:tag or id")


def _run_save(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine.images.save(args.images, args.output or "-", format=args.format)
    return 0


def _configure_load(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", metavar="FILE",
                        help="read from FILE (an archive, or an OCI layout directory) instead of STDIN")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")


def _run_load(ctx: Context, args: argparse.Namespace) -> int:
    records = ctx.engine.images.load(args.input or "-")
    if not args.quiet:
        for line in loaded_lines(records):
            print(line)
    return 0


def loaded_lines(records: list) -> list[str]:
    """What `docker load` prints: one line per tag, the id for an untagged image."""
    from intermodal.images import reference as refs

    lines = []
    for record in records:
        if record.tags:
            lines.extend(f"Loaded image: {refs.parse(tag).familiar}" for tag in record.tags)
        else:
            lines.append(f"Loaded image ID: {record.id}")
    return lines


save = Command("save", "Save one or more images to a tar archive (streamed to STDOUT by default)",
               _configure_save, _run_save)
load = Command("load", "Load images from a tar archive or an OCI layout (STDIN by default)",
               _configure_load, _run_load)
