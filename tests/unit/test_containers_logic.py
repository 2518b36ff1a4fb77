"""Pure container logic: restart policy, spec normalisers, Docker's process semantics, users, status words."""

from __future__ import annotations

import pytest

from intermodal.containers import restart
from intermodal.containers import spec as specs
from intermodal.containers import status as st
from intermodal.containers.config import capabilities, resolve_process, resolve_user
from intermodal.containers.spec import ContainerSpec, Mount
from intermodal.errors import InvalidArgument

# -- restart policy -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "retries"), [
    ("", "no", 0), ("no", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
    ("on-failure", "on-failure", 0), ("on-failure:3", "on-failure", 3),
])
def test_parse_restart(text, name, retries):
    assert restart.parse(text) == restart.RestartPolicy(name, retries)


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_parse_restart_refuses(text):
    with pytest.raises(ValueError, match="restart policy"):
        restart.parse(text)


@pytest.mark.parametrize(("policy", "code", "count", "stopped", "expected"), [
    ("no", 1, 0, False, False),
    ("always", 0, 5, False, True),
    ("always", 1, 0, True, False),  # stopped by the user: never again
    ("unless-stopped", 0, 0, False, True),
    ("on-failure", 0, 0, False, False),
    ("on-failure", 1, 100, False, True),  # no maximum
    ("on-failure:2", 1, 0, False, True),
    ("on-failure:2", 1, 1, False, True),
    ("on-failure:2", 1, 2, False, False),  # two restarts done
])
def test_should_restart(policy, code, count, stopped, expected):
    assert restart.should_restart(restart.parse(policy), code, count, stopped) is expected


@pytest.mark.parametrize(("previous", "ran", "expected"), [
    (0.0, 0.0, 0.1), (0.1, 1.0, 0.2), (0.4, 1.0, 0.8), (40.0, 1.0, 60.0), (60.0, 1.0, 60.0), (60.0, 11.0, 0.1),
])
def test_backoff(previous, ran, expected):
    assert restart.next_delay(previous, ran) == pytest.approx(expected)


@pytest.mark.parametrize(("policy", "stopped", "expected"), [
    ("always", True, True), ("unless-stopped", False, True), ("unless-stopped", True, False),
    ("on-failure", False, False), ("no", False, False),
])
def test_restart_at_boot(policy, stopped, expected):
    assert restart.restart_at_boot(restart.parse(policy), stopped) is expected


# -- spec normalisers ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [("SIGTERM", 15), ("term", 15), ("KILL", 9), ("10", 10), (2, 2)])
def test_parse_signal(text, number):
    assert specs.parse_signal(text) == number


@pytest.mark.parametrize("text", ["SIGNOPE", "0", "99", "SIG_IGN"])
def test_parse_signal_refuses(text):
    with pytest.raises(InvalidArgument):
        specs.parse_signal(text)


@pytest.mark.parametrize(("text", "size"), [
    ("10", 10), ("10b", 10), ("1k", 1024), ("1kb", 1024), ("64m", 64 << 20), ("1.5g", 3 << 29), ("2G", 2 << 30),
])
def test_parse_size(text, size):
    assert specs.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "ten", "-5m", "5x"])
def test_parse_size_refuses(text):
    with pytest.raises(InvalidArgument):
        specs.parse_size(text)


@pytest.mark.parametrize(("text", "mount"), [
    ("/data", Mount("volume", "/data")),
    ("db:/var/lib/db", Mount("volume", "/var/lib/db", "db")),
    ("db:/var/lib/db:ro", Mount("volume", "/var/lib/db", "db", True)),
    ("/srv:/srv:ro,rshared", Mount("bind", "/srv", "/srv", True, ("rshared",))),
])
def test_parse_volume(text, mount):
    assert specs.parse_volume(text) == mount


@pytest.mark.parametrize("text", ["relative", "a:b:c:d", "bad name!:/y", "x:/"])
def test_parse_volume_refuses(text):
    with pytest.raises(InvalidArgument):
        specs.parse_volume(text)


def test_parse_mount_and_tmpfs():
    assert specs.parse_mount("type=volume,source=v,target=/v,readonly") == Mount("volume", "/v", "v", True)
    assert specs.parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m") == Mount("tmpfs", "/t", "", False, ("size=1048576",))
    assert specs.parse_tmpfs("/run:size=64k,mode=1777") == Mount("tmpfs", "/run", "", False,
                                                                ("size=65536", "mode=1777"))
    with pytest.raises(InvalidArgument, match="unknown key"):
        specs.parse_mount("type=bind,source=/a,target=/b,colour=red")


def test_env_from_list_and_our_environment(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    assert specs.parse_env(["A=1", "B=x=y", "FROM_HOST", "UNSET_ONE", "A=2"]) == (
        ("A", "2"), ("B", "x=y"), ("FROM_HOST", "yes"))
    with pytest.raises(InvalidArgument):
        specs.parse_env(["=oops"])


def test_spec_build_normalises_and_round_trips():
    spec = ContainerSpec.build("busybox", name="web", command="sh -c 'exit 3'", env=["A=1"], labels=["k=v"],
                               restart="on-failure:2", stop_signal="SIGINT", memory="64m", cap_add=["net_admin"],
                               mounts=["data:/data"])
    assert spec.command == ("sh", "-c", "exit 3")
    assert spec.restart == restart.RestartPolicy("on-failure", 2)
    assert (spec.stop_signal, spec.memory, spec.cap_add) == (2, 64 << 20, ("CAP_NET_ADMIN",))
    assert ContainerSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(("options", "message"), [
    ({"network": "bad name!"}, "invalid network name"),
    ({"ports": ["80"], "network": "none"}, "need a network"),
    ({"network": "bridge", "ports": ["http"]}, "port"),
    ({"name": "../x"}, "invalid container name"),
    ({"auto_remove": True, "restart": "always"}, "cannot be combined"),
    ({"mounts": ["/a", "v:/a"]}, "duplicate mount point"),
    ({"colour": "red"}, "unknown container option"),
])
def test_spec_refuses(options, message):
    with pytest.raises(InvalidArgument, match=message):
        ContainerSpec.build("busybox", **options)


# -- Docker's process semantics ---------------------------------------------------------

IMAGE = {"config": {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/img/bin", "A=image"],
                    "WorkingDir": "/app", "User": "daemon"}}


@pytest.mark.parametrize(("options", "args"), [
    ({}, ("/entry", "default")),
    ({"command": ["x", "y"]}, ("/entry", "x", "y")),
    ({"entrypoint": "/other"}, ("/other",)),  # --entrypoint drops the image's CMD
    ({"entrypoint": "/other", "command": ["z"]}, ("/other", "z")),
    ({"entrypoint": "", "command": ["only"]}, ("only",)),
])
def test_entrypoint_and_cmd(options, args):
    assert resolve_process(ContainerSpec.build("img", **options), IMAGE, "host").args == args


def test_env_workdir_user_defaults_and_overrides():
    proc = resolve_process(ContainerSpec.build("img"), IMAGE, "h1")
    assert proc.env == ("PATH=/img/bin", "HOSTNAME=h1", "A=image")
    assert (proc.cwd, proc.user) == ("/app", "daemon")
    proc = resolve_process(ContainerSpec.build("img", env=["A=mine"], workdir="/w", user="0"), IMAGE, "h1")
    assert "A=mine" in proc.env and (proc.cwd, proc.user) == ("/w", "0")
    bare = resolve_process(ContainerSpec.build("img", command=["x"]), {}, "h")
    assert bare.env[0].startswith("PATH=/usr/local/sbin")


def test_no_command_at_all_is_refused():
    with pytest.raises(InvalidArgument, match="no command"):
        resolve_process(ContainerSpec.build("img"), {"config": {}}, "h")


def test_capabilities_as_docker():
    default = capabilities(ContainerSpec.build("img"))
    assert "CAP_NET_RAW" in default and "CAP_SYS_ADMIN" not in default and len(default) == 14
    changed = capabilities(ContainerSpec.build("img", cap_add=["SYS_ADMIN"], cap_drop=["NET_RAW"]))
    assert "CAP_SYS_ADMIN" in changed and "CAP_NET_RAW" not in changed
    assert capabilities(ContainerSpec.build("img", cap_drop=["ALL"], cap_add=["CHOWN"])) == ["CAP_CHOWN"]
    with pytest.raises(InvalidArgument, match="unknown capability"):
        capabilities(ContainerSpec.build("img", cap_add=["FLY"]))


def test_resolve_user_from_the_rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nweb:x:33:\nextra:x:500:web,other\n")
    assert resolve_user(str(tmp_path), "web") == _user(33, 33, (500,), "/var/www")
    assert resolve_user(str(tmp_path), "web:root") == _user(33, 0, (500,), "/var/www")
    assert resolve_user(str(tmp_path), "1000:7") == _user(1000, 7, (), "/")
    assert resolve_user(str(tmp_path), "") == _user(0, 0, (), "/root")
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user(str(tmp_path), "ghost")


def test_resolve_user_does_not_follow_links_out_of_the_rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd")  # the host's: must not be read
    with pytest.raises(InvalidArgument):
        resolve_user(str(tmp_path), "root")


def _user(uid, gid, extra, home):
    from intermodal.containers.config import ResolvedUser

    return ResolvedUser(uid, gid, extra, home)


# -- status ---------------------------------------------------------------------------------


def test_effective_state_when_monitor_is_gone():
    state = {"Status": "running", "MonitorPid": 999999, "MonitorStart": 1, "Pid": 999998, "PidStart": 1}
    fixed = st.effective(state)
    assert (fixed["Status"], fixed["ExitCode"]) == ("exited", 255)
    assert st.effective({"Status": "exited", "ExitCode": 3}) == {"Status": "exited", "ExitCode": 3}


@pytest.mark.parametrize(("state", "text"), [
    ({"Status": "created"}, "Created"),
    ({"Status": "running", "StartedAt": "2024-01-01T00:00:00.000000000Z"}, "Up 5 seconds"),
    ({"Status": "paused", "StartedAt": "2024-01-01T00:00:00.000000000Z"}, "Up 5 seconds (Paused)"),
    ({"Status": "exited", "ExitCode": 3, "FinishedAt": "2024-01-01T00:00:00Z"}, "Exited (3) 5 seconds ago"),
])
def test_describe(state, text):
    assert st.describe(state, now=1704067205.0) == text


# -- healthchecks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ns"), [
    ("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1h", 3600 * 10**9), ("0.5s", 5 * 10**8),
    ("2", 2 * 10**9), (1.5, 15 * 10**8),
])
def test_parse_duration(text, ns):
    assert specs.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "10x", "5s3"])
def test_parse_duration_refuses(text):
    with pytest.raises(InvalidArgument, match="invalid duration"):
        specs.parse_duration(text)


IMAGE_HEALTH = {"config": {"Healthcheck": {"Test": ["CMD-SHELL", "check"], "Interval": 5 * 10**9}}}


@pytest.mark.parametrize(("options", "expected"), [
    ({}, {"Test": ["CMD-SHELL", "check"], "Interval": 5 * 10**9, "Timeout": 30 * 10**9, "StartPeriod": 0,
          "Retries": 3}),
    ({"healthcheck": {"cmd": "mine", "retries": 1}},
     {"Test": ["CMD-SHELL", "mine"], "Interval": 5 * 10**9, "Timeout": 30 * 10**9, "StartPeriod": 0, "Retries": 1}),
    ({"healthcheck": {"cmd": ["probe", "-q"], "interval": "1s"}},
     {"Test": ["CMD", "probe", "-q"], "Interval": 10**9, "Timeout": 30 * 10**9, "StartPeriod": 0, "Retries": 3}),
    ({"healthcheck": {"disable": True}}, None),
])
def test_resolve_healthcheck(options, expected):
    from intermodal.containers.config import resolve_healthcheck

    assert resolve_healthcheck(ContainerSpec.build("img", **options), IMAGE_HEALTH) == expected
    assert resolve_healthcheck(ContainerSpec.build("img"), {"config": {}}) is None


def test_healthcheck_spec_round_trips():
    spec = ContainerSpec.build("img", healthcheck={"cmd": "x", "timeout": "2s"})
    assert ContainerSpec.from_json(spec.to_json()) == spec
