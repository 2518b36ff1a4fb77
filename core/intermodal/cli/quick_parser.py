"""A command's arguments parsed without argparse where they can be: `imod run` is a hot path.

argparse costs every `imod run` ~5 ms of CPU before the container is even
created: its import (with gettext, locale and re, whose enum is the largest
part), ~60 ``add_argument`` calls and the parse. `QuickParser` takes the
same ``add_argument`` calls (a command's ``configure`` does not know which
parser it has), records them, and parses the plain shapes itself: long
options (``--name VALUE``, ``--name=VALUE``), short ones (``-e VALUE``,
``-eVALUE``, clusters of flags such as ``-dit``), single positionals and a
last REMAINDER one (everything after the image is the command, as argparse
does). Anything else goes to argparse, built from the same calls
(`cli.parser.Parser`): ``--help``, every error, an abbreviated option, ``--``,
a value that starts with '-', a repeated or unknown keyword. So help, errors
and corner cases stay argparse's own; the tests check that both parsers
give the same namespace for what this one accepts.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`: imported by every `imod` command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from intermodal.cli.parser import Parser

REMAINDER = "..."  # argparse.REMAINDER, without importing argparse
_ACTIONS = (None, "store", "store_true", "append")
_KEYWORDS = {"action", "default", "type", "choices", "help", "metavar", "dest", "nargs", "const"}


class Namespace:
    """argparse.Namespace's behaviour: the parsed values as attributes, compared by value."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __repr__(self) -> str:
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


class _Argument:
    __slots__ = ("choices", "default", "dest", "flag", "kind", "nargs", "type")

    def __init__(self, dest: str, kwargs: dict[str, Any], positional: bool) -> None:
        action = kwargs.get("action")
        self.dest = dest
        self.flag = action == "store_true"
        self.default = kwargs.get("default", False if self.flag else None)
        self.type: Callable[[str], Any] | None = kwargs.get("type")
        self.choices = kwargs.get("choices")
        self.nargs = kwargs.get("nargs")
        # what one occurrence does: "flag", "store", "append"; None: argparse's (`--tls-verify[=BOOL]`)
        self.kind: str | None = "append" if action == "append" else ("flag" if self.flag else "store")
        if self.nargs is not None and not positional:
            self.kind = None


class QuickParser:
    """Records ``add_argument``; `parse_args` parses the plain shapes, else hands everything to argparse."""

    def __init__(self, prog: str, description: str | None = None) -> None:
        self.prog, self.description = prog, description
        self.conflict_handler = "error"  # `run` resolves: its -h is --hostname (help stays at --help)
        self._calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self._options: dict[str, _Argument] = {}
        self._positionals: list[_Argument] = []
        self._order: list[_Argument] = []  # defaults are set in the order arguments were added
        self._quick = True

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        self._calls.append((names, kwargs))
        if not self._quick:
            return
        if set(kwargs) - _KEYWORDS or kwargs.get("action") not in _ACTIONS or not names:
            self._quick = False
            return
        if names[0].startswith("-"):
            if any(len(n) > 2 and not n.startswith("--") for n in names):
                self._quick = False  # a long option with one dash (-foo): argparse's prefix matching
                return
            longs = [n for n in names if n.startswith("--")]
            dest = kwargs.get("dest") or (longs or names)[0].lstrip("-").replace("-", "_")
            argument = _Argument(dest, kwargs, positional=False)
            if any(name in self._options for name in names):
                self._quick = False  # argparse resolves it (or refuses it) by its own rules
                return
            for name in names:
                self._options[name] = argument
        else:
            argument = _Argument(names[0], kwargs, positional=True)
            nargs = kwargs.get("nargs")
            if (nargs not in (None, REMAINDER) or len(names) > 1
                    or (self._positionals and self._positionals[-1].nargs == REMAINDER)):
                self._quick = False  # argparse's matching of optional and variadic positionals
                return
            self._positionals.append(argument)
        self._order.append(argument)

    def parse_args(self, argv: list[str]) -> Any:
        args = self._parse(argv) if self._quick else None
        return args if args is not None else self.argparse().parse_args(argv)

    def argparse(self) -> Parser:
        """argparse's parser, with every argument added so far."""
        from intermodal.cli.parser import Parser

        parser = Parser(prog=self.prog, description=self.description, conflict_handler=self.conflict_handler)
        for names, kwargs in self._calls:
            parser.add_argument(*names, **kwargs)
        return parser

    # -- the plain shapes ----------------------------------------------------------------------------

    def _parse(self, argv: list[str]) -> Namespace | None:
        """The namespace argparse would give, or None where argparse must decide."""
        if "--" in argv or self._ambiguous(argv):
            return None
        values: dict[str, Any] = {}
        for argument in self._order:
            if argument.dest not in values:
                values[argument.dest] = argument.default
        waiting = list(self._positionals)
        i = 0
        while i < len(argv):
            word = argv[i]
            if word.startswith("-") and word != "-":
                i = self._option(argv, i, values)
                if i < 0:
                    return None
                continue
            if not waiting:
                return None  # more words than positionals: argparse's error
            positional = waiting.pop(0)
            if positional.nargs != REMAINDER:
                values[positional.dest] = word
                i += 1
                if not (waiting and waiting[0].nargs == REMAINDER):
                    continue
                positional = waiting.pop(0)  # argparse matches it at once: it takes the rest, options too
            values[positional.dest] = argv[i:]
            i = len(argv)
        for positional in waiting:
            if positional.nargs != REMAINDER:
                return None  # a missing positional: argparse's error
            values[positional.dest] = []
        for argument in self._order:  # a string default not overridden goes through its type, as in argparse
            if isinstance(argument.default, str) and argument.type and values[argument.dest] is argument.default:
                try:
                    values[argument.dest] = argument.type(argument.default)
                except Exception:
                    return None
        return Namespace(**values)

    def _ambiguous(self, argv: list[str]) -> bool:
        """A word that abbreviates several long options: argparse rejects it wherever it is, even in
        the command after the image (it classifies every word first)."""
        longs = None
        for word in argv:
            name = word.partition("=")[0]
            if name.startswith("--") and name not in self._options:
                longs = longs or [n for n in (*self._options, "--help") if n.startswith("--")]
                if sum(n.startswith(name) for n in longs) > 1:
                    return True
        return False

    def _option(self, argv: list[str], i: int, values: dict[str, Any]) -> int:
        """Parse the option at argv[i] into *values*; the index after it, or -1 for argparse."""
        word = argv[i]
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            argument = self._options.get(name)
            if argument is None or (eq and argument.flag):
                return -1  # unknown, abbreviated, --help; or a flag given a value
            if argument.flag:
                return i + 1 if _set(argument, None, values) else -1
            return _take(argument, value if eq else None, argv, i, values)
        for at in range(1, len(word)):  # -x, -xVALUE, -xyz
            argument = self._options.get("-" + word[at])
            if argument is None:
                return -1
            if argument.flag:
                if not _set(argument, None, values):
                    return -1
                continue
            value = word[at + 1:]
            if value.startswith("="):
                return -1
            return _take(argument, value or None, argv, i, values)
        return i + 1


def _take(argument: _Argument, value: str | None, argv: list[str], i: int, values: dict[str, Any]) -> int:
    """Store the value of the option at argv[i]: *value* when the word held it, else the next word;
    the index after it, or -1 for argparse (no next word, or one that may be an option)."""
    if value is None:
        i += 1
        if i == len(argv) or argv[i].startswith("-"):
            return -1
        value = argv[i]
    return i + 1 if _set(argument, value, values) else -1


def _set(argument: _Argument, text: str | None, values: dict[str, Any]) -> bool:
    """Store one occurrence; False where argparse must decide (its conversion or choice errors)."""
    if argument.kind is None:
        return False
    if argument.flag:
        values[argument.dest] = True
        return True
    value: Any = text
    if argument.type is not None:
        try:
            value = argument.type(text)
        except Exception:
            return False
    if argument.choices is not None and value not in argument.choices:
        return False
    if argument.kind == "append":
        values[argument.dest] = [*(values[argument.dest] or ()), value]
    else:
        values[argument.dest] = value
    return True
