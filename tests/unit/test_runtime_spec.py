"""config.json parsing into frozen dataclasses (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.spec import default_config, parse, parse_process


def test_default_config_parses():
    spec = parse(default_config(["echo", "hi"], terminal=False))
    assert spec.oci_version.startswith("1.")
    assert spec.process.args == ("echo", "hi") and spec.process.terminal is False
    assert spec.root.path == "rootfs" and spec.root.readonly is True
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert spec.linux.namespace("pid").path is None and spec.linux.namespace("user") is None
    assert "/proc/kcore" in spec.linux.masked_paths and "/proc/sysrq-trigger" in spec.linux.readonly_paths
    assert spec.mounts[0].destination == "/proc" and spec.mounts[1].options[0] == "nosuid"


def test_parsed_spec_is_frozen():
    spec = parse(default_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hostname = "x"  # type: ignore[misc]


def test_process_fields():
    p = parse_process({"args": ["sh"], "user": {"uid": 5, "gid": 6, "umask": 18, "additionalGids": [7]},
                       "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}], "oomScoreAdj": -5,
                       "consoleSize": {"height": 10, "width": 20}, "noNewPrivileges": True})
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids) == (5, 6, 18, (7,))
    assert p.rlimits[0].type == "RLIMIT_NOFILE" and (p.rlimits[0].soft, p.rlimits[0].hard) == (1, 2)
    assert p.oom_score_adj == -5 and p.console_size == (10, 20) and p.no_new_privileges
    assert p.cwd == "/" and p.env == ()


def test_linux_sections():
    spec = parse({"ociVersion": "1.1.0", "root": {"path": "r"}, "linux": {
        "namespaces": [{"type": "user"}, {"type": "network", "path": "/proc/1/ns/net"}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
        "resources": {"pids": {"limit": 5}}, "cgroupsPath": "/a/b", "sysctl": {"kernel.msgmax": "1"}}})
    linux = spec.linux
    assert linux.namespace("network").path == "/proc/1/ns/net"
    assert linux.uid_mappings[0].host_id == 1000 and linux.gid_mappings == ()
    assert linux.devices[0].major == 10 and linux.resources == {"pids": {"limit": 5}}
    assert linux.cgroups_path == "/a/b" and linux.sysctl == {"kernel.msgmax": "1"}


@pytest.mark.parametrize("data", [[], {"root": {"path": "r"}, "mounts": [{"type": "tmpfs"}]},
                                  {"root": {"path": "r"}, "process": {"user": {"uid": "x"}}}])
def test_malformed_configs_raise_invalid_spec(data):
    with pytest.raises(InvalidSpec, match=r"config\.json"):
        parse(data)


def test_to_rootless_makes_runc_spec_rootless_changes():
    from intermodal.runtime.spec import to_rootless

    config = to_rootless(default_config(), 1000, 1001)
    linux = config["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 1001, "size": 1}]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "user"]
    assert "resources" not in linux
    sys_mount = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {"destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert not any(o.startswith(("uid=", "gid=")) for m in config["mounts"] for o in m.get("options", []))
