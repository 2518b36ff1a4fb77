"""The named checks of validate.py, as a table: a config change and the JSON path it must name."""

from __future__ import annotations

import copy

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.spec import default_config, parse
from intermodal.runtime.validate import validate


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _ns(config, entry):
    config["linux"]["namespaces"].append(entry)


CASES = [
    ("2.0.0 version", lambda c: c.update(ociVersion="2.0.0"), "ociVersion"),
    ("no root path", lambda c: c["root"].update(path=""), "root.path"),
    ("missing rootfs", lambda c: c["root"].update(path="nope"), "root.path"),
    ("no process", lambda c: c.pop("process"), "process"),
    ("empty args", lambda c: c["process"].update(args=[]), "process.args"),
    ("relative cwd", lambda c: c["process"].update(cwd="tmp"), "process.cwd"),
    ("bad rlimit", lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_X", "soft": 1, "hard": 1}),
     r"process.rlimits\[1\].type"),
    ("soft above hard", lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_CORE", "soft": 2, "hard": 1}),
     r"process.rlimits\[1\]"),
    ("env without =", lambda c: c["process"]["env"].append("JUNK"), r"process.env\[2\]"),
    ("unknown namespace", lambda c: _ns(c, {"type": "bogus"}), r"linux.namespaces\[6\].type"),
    ("duplicate namespace", lambda c: _ns(c, {"type": "pid"}), r"linux.namespaces\[6\].type"),
    ("missing ns path", lambda c: _ns(c, {"type": "user", "path": "/no/such/ns"}), r"linux.namespaces\[6\].path"),
    ("user ns without maps", lambda c: _ns(c, {"type": "user"}), "linux.uidMappings"),
    ("maps without user ns", lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "linux.uidMappings"),
    ("hostname without uts", lambda c: c["linux"].update(namespaces=[{"type": "mount"}]), "hostname"),
    ("relative mount", lambda c: c["mounts"].append({"destination": "mnt", "type": "tmpfs"}), r"mounts\[7\]"),
    ("dotdot mount", lambda c: c["mounts"].append({"destination": "/a/../b", "type": "tmpfs"}), r"mounts\[7\]"),
    ("bind without source", lambda c: c["mounts"].append({"destination": "/b", "type": "bind"}),
     r"mounts\[7\].source"),
    ("bad propagation", lambda c: c["linux"].update(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
    ("bad device", lambda c: c["linux"].update(devices=[{"path": "/dev/x", "type": "z"}]),
     r"linux.devices\[0\].type"),
    ("device outside /dev", lambda c: c["linux"].update(devices=[{"path": "/x", "type": "c"}]),
     r"linux.devices\[0\].path"),
    ("relative hook", lambda c: c.update(hooks={"createRuntime": [{"path": "hook"}]}),
     r"hooks.createRuntime\[0\].path"),
    ("zero hook timeout", lambda c: c.update(hooks={"poststop": [{"path": "/h", "timeout": 0}]}),
     r"hooks.poststop\[0\].timeout"),
]


@pytest.mark.parametrize(("name", "change", "path"), CASES, ids=[c[0] for c in CASES])
def test_invalid_configs_name_their_json_path(bundle, name, change, path):
    config = copy.deepcopy(default_config())
    change(config)
    with pytest.raises(InvalidSpec, match=f"^{path}"):
        validate(parse(config), bundle)


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2", "1.1.0", "1.2.0-rc.1"])
def test_any_1x_version_is_accepted(bundle, version):
    config = default_config()
    config["ociVersion"] = version
    assert validate(parse(config), bundle) == []


def test_unsupported_lsm_settings_are_warnings(bundle):
    config = default_config()
    config["process"]["apparmorProfile"] = "docker-default"
    assert validate(parse(config), bundle) == ["process.apparmorProfile: AppArmor is not supported; "
                                               "the profile is ignored"]


def test_ambient_caps_the_kernel_refuses_are_a_warning_not_an_error(bundle):
    """`runc spec` lists ambient caps without inheritable ones; runc runs it and warns."""
    config = default_config()
    caps = config["process"]["capabilities"]
    caps["ambient"] = ["CAP_KILL"]
    [warning] = validate(parse(config), bundle)
    assert warning.startswith("process.capabilities.ambient: can't raise CAP_KILL (not in inheritable)")
    caps["inheritable"] = ["CAP_KILL"]
    assert validate(parse(config), bundle) == []
