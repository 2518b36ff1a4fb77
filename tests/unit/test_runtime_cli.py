"""imod-runtime's argument parsing, as podman/conmon call it (pure)."""

from __future__ import annotations

import signal

import pytest

from intermodal.errors import InvalidArgument
from intermodal.runtime.cli import _parser, main
from intermodal.runtime.container import parse_signal


def parse(*argv: str):
    return _parser().parse_args(list(argv))


def test_conmon_create_command_line():
    args = parse("--root", "/run/x", "--log", "/tmp/log", "--log-format", "json", "--systemd-cgroup",
                 "create", "--bundle", "/b", "--pid-file", "/p", "--no-new-keyring", "--console-socket", "/s",
                 "--preserve-fds", "2", "abc")
    assert (args.root, args.log, args.log_format, args.systemd_cgroup) == ("/run/x", "/tmp/log", "json", True)
    assert (args.bundle, args.pid_file, args.console_socket, args.preserve_fds, args.id) == ("/b", "/p", "/s", 2, "abc")
    assert args.func.__name__ == "cmd_create"


def test_exec_keeps_the_command_flags_for_the_command():
    args = parse("exec", "--tty", "--env", "A=1", "ctr", "sh", "-c", "echo -n x")
    assert args.id == "ctr" and args.args == ["sh", "-c", "echo -n x"] and args.tty and args.env == ["A=1"]


def test_kill_all_and_default_signal():
    args = parse("kill", "--all", "ctr", "KILL")
    assert (args.all, args.id, args.signal) == (True, "ctr", "KILL")
    assert parse("kill", "ctr").signal == "SIGTERM"


@pytest.mark.parametrize(("text", "number"), [("TERM", 15), ("SIGKILL", 9), ("9", 9), ("hup", 1), (2, 2)])
def test_parse_signal(text, number):
    assert parse_signal(text) == number == int(signal.Signals(number))


def test_unknown_signal_is_refused():
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal("NOPE")


def test_errors_exit_1_with_a_message(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "state", "missing"]) == 1
    assert "missing does not exist" in capsys.readouterr().err


def test_features_lists_what_is_supported(capsys):
    import json

    assert main(["features"]) == 0
    features = json.loads(capsys.readouterr().out)
    assert features["ociVersionMax"].startswith("1.") and "createContainer" in features["hooks"]
    assert "user" in features["linux"]["namespaces"] and "rbind" in features["mountOptions"]
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]


@pytest.mark.parametrize(("argv", "verb"), [
    (["--root", "/r", "--log", "l", "create", "--bundle", "b", "id"], "create"),
    (["--log-format=json", "--systemd-cgroup", "state", "x"], "state"),
    (["--debug"], None), (["exec", "x", "sh"], "exec"),
])
def test_the_verb_is_found_past_the_global_flags(argv, verb):
    from intermodal.runtime.cli import _verb_in

    assert _verb_in(argv) == verb


def test_a_parser_for_one_verb_parses_like_the_full_one():
    argv = ["--root", "/r", "kill", "--all", "ctr", "KILL"]
    assert vars(_parser("kill").parse_args(argv)) == vars(_parser().parse_args(argv))
