"""What every `imod` command shares: the context, the command shape, output.

A command is a module-level ``Command`` whose ``configure`` adds its
arguments and whose ``run`` does the work; ``cli.main`` imports only the
module of the command being run.
"""

from __future__ import annotations

import sys

from intermodal.records import Frozen

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any


class Context:
    """Global options, and the engine made on first use."""

    __slots__ = ("_engine", "debug", "root", "run_root")

    def __init__(self, root: str | None = None, run_root: str | None = None, debug: bool = False) -> None:
        self.root, self.run_root, self.debug = root, run_root, debug
        self._engine: Any = None

    def __repr__(self) -> str:
        return f"Context(root={self.root!r}, run_root={self.run_root!r}, debug={self.debug!r})"

    @property
    def engine(self):
        if self._engine is None:
            from intermodal.engine import Engine

            self._engine = Engine(root=self.root, run_root=self.run_root)
        return self._engine


class Command(Frozen):
    """``images = Command("images", "List images", configure, run)`` in a command module."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context, argparse.Namespace], int | None]


def inspect_command(name: str, help: str, metavar: str, lookup: Callable[[Any], Callable[[str], dict]],
                    example: str = "{{.Id}}") -> Command:
    """`X inspect NAME...`: one JSON array (or a --format line per object); exit 1 if any is missing."""

    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("names", nargs="+", metavar=metavar)
        p.add_argument("-f", "--format", help=f"a Go-style template, e.g. '{example}'")

    def run(ctx: Context, args: argparse.Namespace) -> int:
        from intermodal.errors import IntermodalError

        inspect = lookup(ctx.engine)
        found, code = [], 0
        for item in args.names:
            try:
                found.append(inspect(item))
            except IntermodalError as err:
                print(f"Error: {err}", file=sys.stderr)
                code = 1
        print_found(found, args.format)
        return code

    return Command(name, help, configure, run)


def print_found(found: list[dict], template: str | None) -> None:
    if template:
        from intermodal.cli.format import render

        render(template, found)
    else:
        print_json(found)


def print_json(value: Any) -> None:
    import json

    json.dump(value, sys.stdout, indent=4, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Left-aligned columns separated by three spaces, like Docker's tables."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    out = []
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line, widths, strict=True)]
        out.append("   ".join(cells).rstrip())
    sys.stdout.write("\n".join(out) + "\n")


def human_size(n: float) -> str:
    """Decimal units as Docker prints them (4.26MB, 1.2GB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def human_ago(seconds: float) -> str:
    """'5 minutes ago', 'About an hour ago' as Docker's go-units prints them."""
    s = int(max(seconds, 0))
    if s < 1:
        return "Less than a second ago"
    if s < 60:
        return f"{s} seconds ago"
    minutes = s // 60
    if minutes == 1:
        return "About a minute ago"
    if minutes < 60:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    if hours == 1:
        return "About an hour ago"
    if hours < 48:
        return f"{hours} hours ago"
    days = hours // 24
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"
