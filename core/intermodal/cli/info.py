"""`imod version` and `imod info`."""

from __future__ import annotations

import argparse
import platform
import sys

from intermodal.cli.base import Command, Context, print_json


def _run_version(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal import __version__

    info = {"Version": __version__, "Python": platform.python_version(), "Os": "linux",
            "Arch": platform.machine(), "Kernel": platform.release()}
    if args.format == "json":
        print_json(info)
    else:
        print(f"intermodal version {__version__} (Python {info['Python']}, {info['Os']}/{info['Arch']})")
    return 0


def _configure_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


version = Command("version", "Show the version", _configure_version, _run_version)


def _run_info(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.engine_info import engine_info

    data = engine_info(ctx.engine)
    if args.format == "json":
        print_json(data)
        return 0
    for key, value in data.items():
        sys.stdout.write(f"{key}: {value}\n")
    return 0


info = Command("info", "Show engine-wide information", _configure_version, _run_info)
