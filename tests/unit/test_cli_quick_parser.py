"""cli/quick_parser.py against argparse: for every `imod` command, the same namespace or a hand-over.

Every command's ``configure`` runs on a QuickParser; argument lists made from
the command's own options (fixed seed) go through both parsers. Where the
quick parse gives a namespace, argparse must give the same one; where
argparse fails (an error, --help), the quick parse must have handed over.
"""

from __future__ import annotations

import random
import sys

import pytest

from intermodal.cli import main as cli_main
from intermodal.cli.quick_parser import QuickParser

CASES_PER_COMMAND = 600
VALUES = ["x", "a=b", "", "5", "-1", "true", "a b", "=v", "-x", "busybox", "1.5", "no"]


def _targets() -> list[str]:
    found = set()
    for entry in cli_main.COMMANDS.values():
        found.update(entry.values() if isinstance(entry, dict) else [entry])
    return sorted(found)


def _command(target: str):
    module_name, attribute = target.split(":")
    __import__(f"intermodal.cli.{module_name}")
    return getattr(sys.modules[f"intermodal.cli.{module_name}"], attribute)


def _parsers(target: str) -> tuple[QuickParser, object]:
    cmd = _command(target)
    quick = QuickParser(prog=f"imod {target}", description=cmd.help)
    cmd.configure(quick)
    return quick, quick.argparse()


def _words(quick: QuickParser, rng: random.Random) -> list[str]:
    names = [name for names, _ in quick._calls for name in names if name.startswith("-")]
    shorts = [n[1] for n in names if len(n) == 2]
    longs = [n for n in names if n.startswith("--")]
    words: list[str] = []
    for _ in range(rng.randint(0, 7)):
        kind = rng.random()
        if kind < 0.35 and names:
            words.append(rng.choice(names))
        elif kind < 0.45 and shorts:
            words.append("-" + "".join(rng.choice(shorts) for _ in range(rng.randint(2, 3))))
        elif kind < 0.55 and shorts:
            words.append("-" + rng.choice(shorts) + rng.choice(VALUES))
        elif kind < 0.65 and longs:
            words.append(rng.choice(longs) + "=" + rng.choice(VALUES))
        elif kind < 0.70 and longs:
            name = rng.choice(longs)
            words.append(name[: rng.randint(3, len(name))])  # abbreviated, or whole
        elif kind < 0.73:
            words.append(rng.choice(["--", "-h", "--help", "-"]))
        else:
            words.append(rng.choice(VALUES))
    return words


def _argparse_result(parser, argv: list[str]) -> dict | None:
    try:
        return vars(parser.parse_args(argv))
    except SystemExit:
        return None


@pytest.mark.parametrize("target", _targets())
def test_the_quick_parse_is_argparse_s_or_hands_over(target: str, capsys) -> None:
    quick, theirs = _parsers(target)
    rng = random.Random(f"quick-parser {target}")
    for _ in range(CASES_PER_COMMAND):
        argv = _words(quick, rng)
        got = quick._parse(argv) if quick._quick else None
        want = _argparse_result(theirs, argv)
        if got is not None:
            assert want is not None, f"{target} {argv}: argparse fails, the quick parse gave {got}"
            assert vars(got) == want, f"{target} {argv}"
    capsys.readouterr()  # argparse's errors and help, printed on the way


RUN = ["--rm", "--network", "none", "--name=web", "-dit", "-eA=1", "-e", "B=2", "-p", "8080:80", "--pids-limit",
       "50", "-h", "host", "-v", "/a:/b:ro", "busybox", "sh", "-c", "echo --rm -e x"]


def test_run_s_usual_arguments_are_parsed_quickly_as_argparse_parses_them() -> None:
    quick, theirs = _parsers("containers:run")
    assert quick._quick
    for argv in (RUN, ["busybox"], ["--rm", "busybox", "true"], ["-it", "busybox"], ["busybox", "--rm", "-d"]):
        got = quick._parse(argv)
        assert got is not None, argv
        assert vars(got) == vars(theirs.parse_args(argv))
    args = quick.parse_args(RUN)
    assert (args.name, args.detach, args.interactive, args.tty, args.hostname) == ("web", True, True, True, "host")
    assert args.env == ["A=1", "B=2"] and args.pids_limit == 50 and args.network == ["none"]
    assert args.command == ["sh", "-c", "echo --rm -e x"]


@pytest.mark.parametrize("argv", [["--netw", "none", "busybox"], ["--rm"], ["--pids-limit", "many", "busybox"],
                                  ["--pull", "sometimes", "busybox"], ["--help"], ["--rm=yes", "busybox"]])
def test_what_argparse_must_decide_it_decides(argv: list[str], capsys) -> None:
    """An ambiguous abbreviation, a missing image, a bad number or choice, help, a flag with a value."""
    quick, theirs = _parsers("containers:run")
    assert quick._parse(argv) is None
    with pytest.raises(SystemExit) as quick_exit:
        quick.parse_args(argv)
    quick_out = capsys.readouterr()
    with pytest.raises(SystemExit) as argparse_exit:
        theirs.parse_args(argv)
    assert quick_exit.value.code == argparse_exit.value.code
    assert quick_out == capsys.readouterr()


def test_an_abbreviation_argparse_accepts_is_accepted() -> None:
    quick, theirs = _parsers("containers:run")
    argv = ["--priv", "--entry", "", "busybox"]
    assert quick._parse(argv) is None
    assert vars(quick.parse_args(argv)) == vars(theirs.parse_args(argv))
    assert quick.parse_args(argv).privileged is True


def test_a_string_default_goes_through_its_type_as_in_argparse() -> None:
    quick = QuickParser("imod x")
    quick.add_argument("--count", type=int, default="3")
    quick.add_argument("--tags", action="append", type=str.upper)
    assert vars(quick._parse(["--tags", "a", "--tags=b"])) == {"count": 3, "tags": ["A", "B"]}
    assert vars(quick._parse([])) == vars(quick.argparse().parse_args([]))


def test_shapes_it_does_not_know_go_to_argparse_whole() -> None:
    quick = QuickParser("imod x")
    quick.add_argument("names", nargs="+")
    quick.add_argument("-f", action="store_true")
    assert not quick._quick
    assert vars(quick.parse_args(["a", "b", "-f"])) == {"names": ["a", "b"], "f": True}


def test_an_option_added_twice_is_left_to_argparse_s_conflict_handling() -> None:
    quick = QuickParser("imod x")
    quick.conflict_handler = "resolve"
    quick.add_argument("-n", "--name")
    quick.add_argument("-n", "--number", type=int)
    assert not quick._quick
    assert vars(quick.parse_args(["--name", "a", "-n", "5"])) == {"name": "a", "number": 5}
