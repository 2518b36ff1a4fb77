"""`imod`'s own start-up and exit: what the run path's modules import, argparse's parser, the fast exit.

The exit tests run `imod version` as its own process (a real interpreter), since the fast exit ends
the process it runs in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import intermodal
from intermodal.cli import main as cli_main
from intermodal.cli import parser as cli_parser
from tests.support.processes import module_imports

# What `imod run` imports of cli/, containers/ and the engine's small modules (not the monitor's).
RUN_PATH = ["cli/main.py", "cli/base.py", "cli/containers.py", "containers/spec.py", "containers/restart.py",
            "containers/config.py", "containers/manager.py", "containers/store.py", "containers/create.py",
            "containers/net.py", "containers/devices.py", "containers/status.py", "containers/prepare.py",
            "containers/removal.py", "containers/runtime_client.py", "containers/logs.py", "engine.py", "paths.py",
            "errors.py", "fsutil.py", "locking.py", "records.py", "containers/launch.py", "images/store.py", "cjson.py",
            "cli/lean_imports.py", "cli/quick_parser.py"]
HEAVY = {"dataclasses", "typing", "signal", "shutil", "threading", "subprocess", "hashlib", "contextlib", "inspect",
         "re", "ipaddress", "tempfile", "json", "random", "importlib"}


@pytest.mark.parametrize("name", RUN_PATH)
def test_run_path_modules_import_nothing_heavy(name: str) -> None:
    for module in module_imports(Path(intermodal.__file__).parent / name):
        assert module.split(".")[0] not in HEAVY, f"{name} imports {module} at import time"


def test_the_parser_checks_metavars_and_helps_as_argparse() -> None:
    import argparse

    ours, theirs = cli_parser.Parser(prog="imod x"), argparse.ArgumentParser(prog="imod x")
    for parser in (ours, theirs):
        parser.add_argument("names", nargs="+", metavar="NAME")
        parser.add_argument("--pair", nargs=2, metavar=("A", "B"), help="two values")
        with pytest.raises(ValueError, match="length of metavar tuple does not match nargs"):
            parser.add_argument("--bad", nargs=3, metavar=("A", "B"))
    assert ours.format_help() == theirs.format_help()
    assert ours.parse_args(["a", "--pair", "1", "2"]) == theirs.parse_args(["a", "--pair", "1", "2"])


def _imod(code_before: str, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    """`imod ARGS` as its own process, after *code_before* ran in it."""
    code = f"import sys\n{code_before}\nsys.argv = ['imod', *sys.argv[1:]]\nfrom intermodal.cli.main import main\n" \
           "sys.exit(main())\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code, *args], stdout=stdout, stderr=subprocess.PIPE, env=env,
                          timeout=60, check=False)


class_with_teardown = """
class Teardown:
    def __del__(self):
        sys.stderr.write("teardown ran\\n")
kept = Teardown()
"""


def test_imod_ends_without_the_interpreter_teardown() -> None:
    proc = _imod(class_with_teardown, "version")
    assert proc.returncode == 0
    assert proc.stdout.startswith(b"intermodal version ")  # flushed before the exit
    assert b"teardown ran" not in proc.stderr


def test_an_atexit_callback_gets_the_normal_exit() -> None:
    proc = _imod(class_with_teardown + "import atexit\natexit.register(lambda: print('atexit ran'))", "version")
    assert proc.returncode == 0
    assert b"atexit ran" in proc.stdout
    assert b"teardown ran" in proc.stderr


def test_a_live_thread_gets_the_normal_exit() -> None:
    thread = ("import threading, time\n"
              "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True))).start()")
    proc = _imod(thread, "version")
    assert proc.returncode == 0
    assert b"thread done" in proc.stdout  # the interpreter waited for it, as before


def test_the_exit_code_of_a_failed_command_is_kept() -> None:
    proc = _imod(class_with_teardown, "--root", "/nonexistent-imod-root", "rm", "no-such-container")
    assert proc.returncode == 1
    assert b"no such container" in proc.stderr and b"teardown ran" not in proc.stderr


def test_a_closed_stdout_fails_as_without_the_fast_exit() -> None:
    """EPIPE on the final flush: the interpreter reports it and exits 120, with or without us."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = _imod("", "version", stdout=write)
    finally:
        os.close(write)
    assert proc.returncode == 120
    assert b"BrokenPipeError" in proc.stderr


def test_the_imod_process_collects_garbage_less_often_a_caller_of_main_as_before(capsys) -> None:
    import gc

    proc = _imod("import atexit, gc\natexit.register(lambda: print('threshold', gc.get_threshold()[0]))", "version")
    assert proc.returncode == 0
    assert b"threshold 20000" in proc.stdout
    before = gc.get_threshold()
    assert cli_main.main(["version"]) == 0  # returns: only `imod` itself ends at once
    assert gc.get_threshold() == before
    assert capsys.readouterr().out.startswith("intermodal version ")


@pytest.mark.parametrize(("words", "code"), [(["bogus"], 125), (["image", "bogus"], 125), (["bogus", "--help"], 125),
                                             (["image"], 0), (["image", "--help"], 0)])
def test_an_unknown_command_fails_and_a_groups_usage_does_not(words: list[str], code: int, capsys) -> None:
    assert cli_main.main(words) == code
    if code:
        assert "unknown command" in capsys.readouterr().err
    else:
        assert "Commands:" in capsys.readouterr().out


@pytest.mark.parametrize("words", [["ps", "--bogus"], ["rm"], ["stop", "-t", "soon", "x"], ["logs", "--tail"]])
def test_a_usage_error_exits_125_as_in_docker_never_2(words: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(words)
    assert exited.value.code == 125
    assert "error:" in capsys.readouterr().err


def test_imod_run_s_usage_error_is_125_not_a_container_s_exit_code() -> None:
    proc = _imod("", "run", "--rm", "--bogus", "busybox", "sh", "-c", "exit 2")
    assert proc.returncode == 125
    assert b"unrecognized arguments: --bogus" in proc.stderr


def test_pathlib_comes_without_urllib_and_re_and_what_needs_them_still_works() -> None:
    code = ("import sys\nfrom intermodal.cli.lean_imports import lean_pathlib\nlean_pathlib()\n"
            "assert 'pathlib' in sys.modules\n"
            "print(sorted(m for m in ('urllib.parse', 'ipaddress', 're', 'enum', 'fnmatch') if m in sys.modules))\n"
            "import pathlib\nprint(pathlib.PurePosixPath('/a b').as_uri())\n"
            "print(pathlib.PurePosixPath('/x/y.txt').match('*.txt'),"
            " sorted(pathlib.Path('/proc/self').glob('statu*')))\n"
            "import re, urllib.parse\nprint(urllib.parse.urlsplit('http://h/p').netloc, re.fullmatch('a+', 'aa')[0])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[]", "file:///a%20b", "True [PosixPath('/proc/self/status')]", "h aa"]


def test_imod_run_parses_and_creates_without_argparse_and_re(tmp_path: Path) -> None:
    """As far as the create (here: an image that is not there, and not to be pulled)."""
    modules = ("argparse", "re", "enum", "gettext", "locale", "urllib.parse", "ipaddress", "typing")
    report = f"import atexit\natexit.register(lambda: print([m for m in {modules!r} if m in sys.modules]))"
    proc = _imod(report, "--root", str(tmp_path), "run", "--rm", "--pull", "never", "-e", "A=1", "--name", "n1",
                 "nosuchimage", "true")
    assert proc.returncode == 125
    assert b"nosuchimage" in proc.stderr
    assert proc.stdout.splitlines() == [b"[]"], proc.stdout


def test_dns_without_servers_needs_no_ipaddress() -> None:
    from intermodal.containers.spec import parse_dns

    assert parse_dns([]) == ()
    assert parse_dns(["192.0.2.53", "2001:db8::1", "192.0.2.53"]) == ("192.0.2.53", "2001:db8::1")
