"""argparse's parser as `imod` uses it: for help, errors and what `QuickParser` leaves to argparse."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

USAGE_EXIT = 125  # as Docker and Podman: `imod run`'s own failures never look like a container's exit code


class Parser(argparse.ArgumentParser):
    """argparse's parser without one cost: each ``add_argument`` makes a HelpFormatter, which asks for the
    terminal's size (importing shutil), only to check a metavar tuple against nargs; for `run`'s ~60
    arguments that is ~4 ms. The check uses one formatter of a fixed width instead (it does not depend
    on the width); help and usage are formatted as before."""

    _adding = False
    _check_formatter: argparse.HelpFormatter | None = None
    _conflict_handler = "error"

    @property
    def conflict_handler(self) -> str:
        return self._conflict_handler

    @conflict_handler.setter
    def conflict_handler(self, value: str) -> None:
        """Set on the parser, it applies to its groups of arguments too (argparse copies it into each group
        as the group is made): `run`'s -h is --hostname, help stays at --help."""
        self._conflict_handler = value
        for group in getattr(self, "_action_groups", ()):
            group.conflict_handler = value

    def add_argument(self, *args, **kwargs):
        self._adding = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._adding = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        if not self._adding:
            return super()._get_formatter()
        if self._check_formatter is None:
            self._check_formatter = self.formatter_class(prog=self.prog, width=80)
        return self._check_formatter

    def error(self, message: str) -> NoReturn:
        """argparse's usage and message, with Docker's exit code for the engine's own errors (not 2, which
        `imod run` could also get from the container)."""
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message}\n")
