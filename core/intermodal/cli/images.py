"""`imod images`, `image inspect`, `history`, `tag`, `rmi`, `image prune`."""

from __future__ import annotations

import argparse
import time

from intermodal.cli.base import Command, Context, human_ago, human_size, inspect_command, print_table
from intermodal.errors import IntermodalError


def _configure_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", nargs="?", help="only images whose name matches REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="show all images (default hides none)")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("-f", "--filter", action="append", default=[], help="dangling=true|false, reference=PATTERN")
    p.add_argument("--format", help="'table', 'json' or a Go-style template such as '{{.Repository}}:{{.Tag}}'")


def _run_list(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.images.listing import image_rows

    rows = image_rows(ctx.engine.images.list(), reference=args.reference, filters=args.filter,
                      no_trunc=args.no_trunc, now=time.time())
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        print("\n".join(seen)) if seen else None
        return 0
    if args.format and args.format != "table":
        from intermodal.cli.format import render

        render(args.format, rows)
        return 0
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    print_table(headers, (
        [r["Repository"], r["Tag"], *([r["Digest"]] if args.digests else []), r["ID"], r["CreatedSince"], r["Size"]]
        for r in rows
    ))
    return 0


list_images = Command("images", "List images", _configure_list, _run_list)


inspect = inspect_command("image inspect", "Show the details of images", "IMAGE", lambda e: e.images.inspect)


def _configure_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-H", "--human", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--format", help="'json' or a Go-style template")


def _run_history(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.timefmt import parse_rfc3339 as parse_time

    now = time.time()
    rows = []
    for entry in ctx.engine.images.history(args.image):
        created = parse_time(entry["Created"])
        image_id = entry["Id"]
        if not args.no_trunc and image_id.startswith("sha256:"):
            image_id = image_id[7:19]
        created_by = entry["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append({
            "ID": image_id,
            "CreatedSince": human_ago(now - created) if created else "",
            "CreatedAt": entry["Created"],
            "CreatedBy": created_by,
            "Size": human_size(entry["Size"]) if args.human else str(entry["Size"]),
            "Comment": entry["Comment"],
        })
    if args.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    if args.format:
        from intermodal.cli.format import render

        render(args.format, rows)
        return 0
    print_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                ([r["ID"], r["CreatedSince"], r["CreatedBy"], r["Size"], r["Comment"]] for r in rows))
    return 0


history = Command("history", "Show the history of an image", _configure_history, _run_history)


def _configure_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def _run_tag(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine.images.tag(args.source, args.target)
    return 0


tag = Command("tag", "Give an image another name", _configure_tag, _run_tag)


def _configure_remove(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove even if tagged several times or in use")
    p.add_argument("--no-prune", action="store_true", help="keep the image's blobs and layers for now")


def _run_remove(ctx: Context, args: argparse.Namespace) -> int:
    import sys

    code = 0
    for name in args.images:
        try:
            events = ctx.engine.images.remove(name, force=args.force, prune=not args.no_prune)
        except IntermodalError as err:
            print(f"Error response from engine: {err}", file=sys.stderr)
            code = 1
            continue
        for event in events:
            for key, value in event.items():
                print(f"{key}: {value}")
    return code


remove = Command("rmi", "Remove images", _configure_remove, _run_remove)


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="remove all images no container uses, not just untagged")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for Docker compatibility)")


def _run_prune(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.engine.images.prune(all=args.all)
    if result["ImagesDeleted"]:
        print("Deleted Images:")
        for event in result["ImagesDeleted"]:
            for key, value in event.items():
                print(f"{key.lower()}: {value}")
        print()
    print(f"Total reclaimed space: {human_size(result['SpaceReclaimed'])}")
    return 0


prune = Command("image prune", "Remove unused images, blobs and layers", _configure_prune, _run_prune)
